// Every shell block of the README and docs marked runnable (a fence opened with ```sh runnable) runs as written
// and exits 0: the walk-through against a private MariaDB it starts itself, `make demo`, the help. Each block
// runs in bash -e from the project root, in a process group of its own, bounded in time; the ports a block
// reads from DB_PORT / HTTP_PORT are free ones, and no DATABASE_URL of the caller reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { childEnvironment } from '../src/config.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { projectRoot } from '../src/projectRoot.ts';

const root = projectRoot();
/** Room for `make demo` (about 30 s on two free cores) on a loaded 2-core CI machine. */
const BLOCK_LIMIT_MS = 240_000;

interface Block {
  file: string;
  line: number;
  script: string;
}

/** The fenced blocks opened with ```sh runnable (or ```bash runnable), with the line each starts on. */
export function runnableBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash) runnable\s*$/.test(lines[i]!)) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`${file}:${i + 1}: a runnable block is not closed`);
    blocks.push({ file, line: i + 1, script: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

function documents(): string[] {
  const docs = join(root, 'docs');
  return [join(root, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f))];
}

async function run(block: Block): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const dbPort = await findFreePort();
  // The walk-through keeps its data directory, .eob/db-<port>, as a user would want; a test run does not.
  const dataDir = join(root, '.eob', `db-${dbPort}`);
  const leftBefore = existsSync(dataDir);
  const env = childEnvironment({
    DB_PORT: String(dbPort),
    HTTP_PORT: String(await findFreePort()),
    DATABASE_URL: undefined,
    MYSQL_URL: undefined,
    // The commands as written, not npm: where node_modules is an install other checkouts share, an npm ci
    // started by make would rebuild it under them. Installing is what CI's own npm ci shows.
    NO_INSTALL: '1',
  });
  const child = spawn('bash', ['-e', '-c', block.script], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The whole group: a block's background servers are in it. SIGTERM lets them stop cleanly first.
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
    setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } }, 5_000).unref();
  }, BLOCK_LIMIT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  if (!leftBefore) rmSync(dataDir, { recursive: true, force: true });
  return { code, output, timedOut };
}

test('runnable blocks are found with their lines, and only those', () => {
  const text = 'intro\n```sh runnable\necho a\necho b\n```\n```sh\nnot me\n```\n```bash runnable\ntrue\n```\n';
  assert.deepEqual(runnableBlocks('x.md', text), [
    { file: 'x.md', line: 2, script: 'echo a\necho b' },
    { file: 'x.md', line: 9, script: 'true' },
  ]);
  assert.throws(() => runnableBlocks('x.md', '```sh runnable\necho a\n'), /x\.md:1: a runnable block is not closed/);
});

test('a failing command fails its block (the control)', async () => {
  const result = await run({ file: 'control', line: 1, script: 'true\nfalse\necho never' });
  assert.notEqual(result.code, 0);
  assert.doesNotMatch(result.output, /never/);
});

/** Every line of every fenced block (runnable or not), with where it is. */
function fencedLines(file: string, text: string): { where: string; line: string }[] {
  const out: { where: string; line: string }[] = [];
  let inside = false;
  text.split('\n').forEach((line, i) => {
    if (/^ {0,3}```/.test(line)) inside = !inside;
    else if (inside) out.push({ where: `${file}:${i + 1}`, line: line.trim() });
  });
  return out;
}

/** The make invocations on a line (`make a B=1 && make c`), without the comment. */
function makeCalls(line: string): string[][] {
  const code = line.replace(/\s#.*$/, '');
  const words = (part: string) => part.trim().match(/(?:[^\s"']|"[^"]*"|'[^']*')+/g) ?? [];
  return code.split(/&&|;/).map(words).filter((w) => w[0] === 'make').map((w) => w.slice(1));
}

// The blocks too long or too heavy to run (a standard bench, a cluster) are still checked against what exists:
// every make target and variable a doc names is one the Makefile has, every eob command one the CLI has.
function unknownNames(file: string, text: string, makefile: string, cli: string): string[] {
  const targets = new Set([...makefile.matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]!));
  const variables = new Set([...makefile.matchAll(/\$\(call opt,([A-Z_]+),|\$\(([A-Z_]+)\)/g)].map((m) => m[1] ?? m[2]!));
  const commands = new Set([...cli.matchAll(/^ {2}([a-z]+): \(\) => import\(/gm)].map((m) => m[1]!));
  const wrong: string[] = [];
  for (const { where, line } of fencedLines(file, text)) {
    for (const words of makeCalls(line)) {
      for (const word of words) {
        const variable = /^([A-Z_]+)=/.exec(word)?.[1];
        if (variable !== undefined ? !variables.has(variable) : !targets.has(word)) wrong.push(`${where}: make ${word}`);
      }
    }
    for (const m of line.matchAll(/(?:node bin\/eob\.js|^eob) ([a-z]+)/g)) {
      if (!commands.has(m[1]!)) wrong.push(`${where}: eob ${m[1]}`);
    }
  }
  return wrong;
}

const makefile = readFileSync(join(root, 'Makefile'), 'utf8');
const cli = readFileSync(join(root, 'src', 'cli.ts'), 'utf8');

test('every make target and variable, and every eob command, the docs name exists', () => {
  const wrong = documents().flatMap((file) => unknownNames(relative(root, file), readFileSync(file, 'utf8'), makefile, cli));
  assert.deepEqual(wrong, []);
});

test('a target, a variable or a command that does not exist is reported (the control)', () => {
  const doc = '```\nmake bench PROFILE=quick && make nonsense\nmake chaos NOSUCH=1 ALSO_NOT="a b" PROFILE=quick   # comment make x\nnode bin/eob.js frobnicate\n```\n';
  assert.deepEqual(unknownNames('x.md', doc, makefile, cli), ['x.md:2: make nonsense', 'x.md:3: make NOSUCH=1', 'x.md:3: make ALSO_NOT="a b"', 'x.md:4: eob frobnicate']);
});

/** The make targets the Makefile documents (`target: ... ## what`) that the README's table of targets lacks. */
function targetsMissingFromReadme(makefileText: string, readme: string): string[] {
  const documented = [...makefileText.matchAll(/^([a-z][a-z-]*):.*## /gm)].map((m) => m[1]!).filter((t) => t !== 'help');
  return documented.filter((t) => !readme.includes(`| \`make ${t}\` |`));
}

test('the README lists every make target the Makefile documents', () => {
  assert.deepEqual(targetsMissingFromReadme(makefile, readFileSync(join(root, 'README.md'), 'utf8')), []);
  // The control: a target added to the Makefile and not to the README is reported.
  assert.deepEqual(targetsMissingFromReadme(`${makefile}\nnewthing: ## does a new thing\n`, readFileSync(join(root, 'README.md'), 'utf8')), ['newthing']);
});

const blocks = documents().flatMap((file) => runnableBlocks(relative(root, file), readFileSync(file, 'utf8')));

test('the README has runnable blocks, the walk-through and make demo among them', () => {
  const readme = blocks.filter((b) => b.file === 'README.md');
  assert.ok(readme.some((b) => b.script.includes('make demo')), 'make demo is runnable');
  assert.ok(readme.some((b) => b.script.includes('eob.js server')), 'the walk-through is runnable');
});

for (const block of blocks) {
  const first = block.script.split('\n')[0]!.slice(0, 60);
  test(`${block.file}:${block.line} runs: ${first}`, async () => {
    const result = await run(block);
    assert.equal(result.timedOut, false, `timed out after ${BLOCK_LIMIT_MS / 1000} s; output:\n${result.output.slice(-3000)}`);
    assert.equal(result.code, 0, `exit code ${result.code}; output:\n${result.output.slice(-3000)}`);
  });
}
