// The README's and the docs' generated tables agree with the named run each cites (docs/results/<run>/): a
// figure edited by hand, or a run replaced without `make docs-figures`, fails here. Unit test: no database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDocument, findMarkers, rebuildDocument, renderFigure, type RunFiles } from '../src/bench/docsFigures.ts';
import { projectRoot } from '../src/projectRoot.ts';

const root = projectRoot();
const docs = join(root, 'docs');
const documents = [join(root, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f))];

function loadRun(run: string): RunFiles {
  const dir = join(docs, 'results', run);
  assert.ok(existsSync(dir), `docs/results/${run} is cited but does not exist`);
  const read = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : undefined);
  return { benchCsv: read('bench/results.csv'), chaosCsv: read('chaos/results.csv'), drainKillCsv: read('chaos/drain-kill.csv') };
}

test('every generated table of the README and docs agrees with the run it cites', () => {
  let tables = 0;
  for (const file of documents) {
    const text = readFileSync(file, 'utf8');
    tables += findMarkers(text).length;
    const bad = checkDocument(text, loadRun);
    assert.deepEqual(bad.map((m) => `${file}: ${m.name} (run ${m.run})`), [], 'run make docs-figures, or cite the run the table came from');
  }
  assert.ok(tables >= 4, `expected the README and docs to hold generated tables, found ${tables}`);
});

test('every cited run records the machine, the versions and the date', () => {
  const runs = new Set(documents.flatMap((file) => findMarkers(readFileSync(file, 'utf8')).map((m) => m.run)));
  for (const run of runs) {
    const record = readFileSync(join(docs, 'results', run, 'README.md'), 'utf8');
    for (const field of ['machine', 'node', 'load average', 'bench']) assert.match(record, new RegExp(`\\| ${field} \\|`), `docs/results/${run}/README.md lacks "${field}"`);
    assert.match(record, /\d{4}-\d{2}-\d{2}T/, `docs/results/${run}/README.md lacks the date`);
  }
});

// The control: a table that no longer matches its run must be reported, and a rebuild must restore it.
test('a figure changed by hand is caught, and a rebuild restores it', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const [marker] = findMarkers(readme);
  assert.ok(marker !== undefined, 'the README has a generated table');
  const edited = readme.replace(marker.body, marker.body.replace(/\d/, (d) => String((Number(d) + 1) % 10)));
  assert.notEqual(edited, readme);
  const bad = checkDocument(edited, loadRun);
  assert.equal(bad.length, 1);
  assert.equal(bad[0]!.name, marker.name);
  assert.equal(rebuildDocument(edited, loadRun), readme);
});

test('a table follows its run: another run gives another table', () => {
  const csv = 'point,kind,engine,mode,handler_profile,batch_size,ack_mode,ratio_vs_sql_ceiling,verdict\n'
    + 'drain offset batch 1000 READ COMMITTED,drain,mariadb,offset,batched,1000,transactional,0.91,valid\n';
  const other = csv.replace('0.91', '0.52');
  assert.match(renderFigure('headline', { benchCsv: csv }), /\| 0\.91 \|/);
  assert.match(renderFigure('headline', { benchCsv: other }), /\| 0\.52 \|/);
});

test('a malformed or unknown marker is an error that says how to write one', () => {
  assert.throws(() => findMarkers('<!-- figures:bench run=x -->\nno end\n'), /not closed/);
  assert.throws(() => findMarkers('<!-- figures:nonsense run=x -->\n<!-- /figures:nonsense -->'), /unknown figure "nonsense"/);
});
