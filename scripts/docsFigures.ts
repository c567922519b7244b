// `make docs-figures`: rewrites the generated tables of README.md and docs/*.md from the named runs they cite
// (docs/results/<run>/), and saves a finished run there.
//
//   node --import tsx scripts/docsFigures.ts                  rebuild every marked table from the run it cites
//   node --import tsx scripts/docsFigures.ts --cite NAME      the same, every marker now citing docs/results/NAME
//   node --import tsx scripts/docsFigures.ts --check          exit 1 naming each table that disagrees with its run
//   node --import tsx scripts/docsFigures.ts --save NAME [--bench DIR] [--chaos DIR] [--load "TEXT"]
//       copy a bench run (default results/bench/latest) and a chaos run (default results/chaos/latest) into
//       docs/results/NAME/ with a record of the machine, the versions and the date (README.md there)

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join, relative } from 'node:path';
import { checkDocument, rebuildDocument, type RunFiles } from '../src/bench/docsFigures.ts';
import { projectRoot } from '../src/projectRoot.ts';

const root = projectRoot();
const resultsRoot = join(root, 'docs', 'results');

/** The documents that may hold generated tables. */
function documents(): string[] {
  const docs = join(root, 'docs');
  return [join(root, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f))];
}

function loadRun(run: string): RunFiles {
  const dir = join(resultsRoot, run);
  if (!existsSync(dir)) throw new Error(`no run "${run}" in docs/results/: save one with scripts/docsFigures.ts --save ${run}`);
  const read = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : undefined);
  return { benchCsv: read('bench/results.csv'), chaosCsv: read('chaos/results.csv'), drainKillCsv: read('chaos/drain-kill.csv') };
}

// What a saved run keeps of each results directory: the data and the charts, not the PNG copies or the page.
// Two timelines stand for the rest (every case has one: half a megabyte in all): an exactly-once case and a control.
const KEEP = /^(results\.csv|options\.json|engines\.txt|medians\.csv|drain-kill\.csv|drain\.svg|end-to-end\.svg|timeline-eo-offset-b1000\.svg|timeline-ctl-before-commit\.svg)$/;

function save(name: string, benchDir: string, chaosDir: string, load: string | undefined): void {
  const dir = join(resultsRoot, name);
  const copied: string[] = [];
  for (const [part, from] of [['bench', benchDir], ['chaos', chaosDir]] as const) {
    if (!existsSync(join(from, 'results.csv'))) continue;
    mkdirSync(join(dir, part), { recursive: true });
    for (const f of readdirSync(from).filter((f) => KEEP.test(f))) {
      copyFileSync(join(from, f), join(dir, part, f));
      copied.push(`${part}/${f}`);
    }
  }
  if (copied.length === 0) throw new Error(`neither ${benchDir} nor ${chaosDir} holds a results.csv: run make bench / make chaos first`);
  const started = existsSync(chaosDir) ? basename(realpathSync(chaosDir)) : undefined;
  writeFileSync(join(dir, 'README.md'), record(name, dir, load, started));
  console.log(`saved ${copied.length} files into ${relative(root, dir)}: ${copied.join(', ')}`);
}

interface RunOptions {
  startedAt?: string;
  finishedAt?: string;
  duration_s?: number;
  profile?: string;
  sweep?: { profile?: string };
  engines?: string[];
  databases?: Record<string, { version?: string; settings?: Record<string, unknown> }>;
  database_versions?: string[];
  versions?: { node?: string; platform?: string; cpus?: number; gitCommit?: string; gitDirty?: boolean; packages?: Record<string, string> };
}

function options(dir: string, part: string): RunOptions | undefined {
  const file = join(dir, part, 'options.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as RunOptions) : undefined;
}

/** `chaosStarted`: the chaos run's directory name, its start time (its options do not carry one). */
function record(name: string, dir: string, load: string | undefined, chaosStarted: string | undefined): string {
  const bench = options(dir, 'bench');
  const chaos = options(dir, 'chaos');
  const v = bench?.versions ?? chaos?.versions;
  const lines = [
    `# Run \`${name}\``,
    '',
    'The figures of the README and docs that cite this run are rebuilt from the files here by `make docs-figures`;',
    '`test/docsFigures.test.ts` fails when one disagrees with them.',
    '',
    '| | |',
    '|---|---|',
  ];
  const row = (k: string, val: string | undefined) => { if (val !== undefined && val !== '') lines.push(`| ${k} | ${val} |`); };
  row('bench', bench === undefined ? undefined : `\`make bench PROFILE=${bench.sweep?.profile ?? '?'} ENGINE=${(bench.engines ?? []).length > 1 ? 'all' : (bench.engines ?? ['?'])[0]}\`, ${bench.startedAt} to ${bench.finishedAt}`);
  row('chaos', chaos === undefined ? undefined : `\`make chaos PROFILE=${chaos.profile ?? '?'}${chaos.engines && chaos.engines.length > 1 ? ' ENGINE=all' : ''}\`, started ${chaos.startedAt ?? chaosStarted ?? '?'}${chaos.duration_s === undefined ? '' : `, ${Math.round(chaos.duration_s)} s`}`);
  row('machine', `${v?.cpus ?? cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${v?.platform ?? '?'}`);
  row('load average', load);
  row('node', v?.node);
  for (const [engine, db] of Object.entries(bench?.databases ?? {})) {
    row(engine, `${db.version ?? '?'}${db.settings === undefined ? '' : ` (${Object.entries(db.settings).map(([k, s]) => `${k}=${String(s)}`).join(', ')})`}`);
  }
  if (bench?.databases === undefined) row('databases', (chaos?.database_versions ?? []).join(', '));
  row('npm packages', v?.packages === undefined ? undefined : Object.entries(v.packages).map(([p, ver]) => `${p} ${ver}`).join(', '));
  const source = (o: RunOptions | undefined) => o?.versions?.gitCommit === undefined ? undefined : `commit ${o.versions.gitCommit}${o.versions.gitDirty ? ' (with uncommitted changes)' : ''}`;
  if (source(bench) === source(chaos) || bench === undefined || chaos === undefined) row('source', source(bench) ?? source(chaos));
  else {
    row('source of the bench', source(bench));
    row('source of the chaos run', source(chaos));
  }
  return `${lines.join('\n')}\n`;
}

function main(argv: string[]): number {
  const arg = (flag: string) => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : argv[i + 1];
  };
  const saveName = arg('--save');
  if (saveName !== undefined) {
    save(saveName, arg('--bench') ?? join(root, 'results', 'bench', 'latest'), arg('--chaos') ?? join(root, 'results', 'chaos', 'latest'), arg('--load'));
    return 0;
  }
  const check = argv.includes('--check');
  const cite = arg('--cite');
  let bad = 0;
  for (const file of documents()) {
    const text = readFileSync(file, 'utf8');
    if (check) {
      for (const m of checkDocument(text, loadRun)) {
        bad++;
        console.error(`${relative(root, file)}: the table "${m.name}" disagrees with docs/results/${m.run}: run make docs-figures`);
      }
    } else {
      const rebuilt = rebuildDocument(text, loadRun, cite);
      if (rebuilt !== text) {
        writeFileSync(file, rebuilt);
        console.log(`rebuilt ${relative(root, file)}`);
      }
    }
  }
  return bad === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
