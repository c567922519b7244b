// The layer rule of src/: each folder imports only from layers below its own (docs/ARCHITECTURE.md, "Layers").
// Parses every relative import of src/**/*.ts (static, dynamic and type-only) and fails naming the file, the
// import and both layers when one points upward or sideways between bench/ and harness/.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/**
 * Rank of each layer: a module may import a module of a lower rank, or of its own folder. bench/ (measuring
 * parts) and harness/ (what starts and stops things) share a rank and may not import each other: a scenario is
 * what joins a measurement to a running system.
 */
const RANK: Record<string, number> = {
  base: 0, // src/config.ts, src/validate.ts, src/projectRoot.ts: no project imports of their own
  system: 1,
  harness: 2,
  bench: 2,
  scenarios: 3,
  commands: 4,
  cli: 5,
};

/** The layer a file under src/ belongs to. */
function layerOf(relativePath: string): string {
  const parts = relativePath.split(path.sep).join('/').split('/');
  if (parts.length === 1) return parts[0] === 'cli.ts' ? 'cli' : 'base';
  const folder = parts[0]!;
  if (!(folder in RANK)) throw new Error(`src/${relativePath}: folder ${folder}/ has no layer; add it to RANK in test/layers.test.ts`);
  return folder;
}

/** Relative import specifiers of a module's source: `from '...'`, `import('...')` and bare `import '...'`. */
function relativeImports(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(match[1]!);
  }
  return found;
}

/** The upward (or bench <-> harness) imports among `files` (paths relative to src/ with their sources). */
function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    for (const specifier of relativeImports(source)) {
      const target = path.relative(SRC, path.resolve(SRC, path.dirname(file), specifier));
      if (target.startsWith('..')) {
        violations.push(`src/${file} imports ${specifier}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (to === from) continue;
      if (RANK[to]! >= RANK[from]!) {
        violations.push(`src/${file} (${from}) imports ${specifier} (${to}): ${from} may import only layers below it`);
      }
    }
  }
  return violations;
}

function sourcesUnder(dir: string, prefix = ''): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) for (const [f, s] of sourcesUnder(path.join(dir, entry.name), relative)) files.set(f, s);
    else if (entry.name.endsWith('.ts')) files.set(relative, readFileSync(path.join(dir, entry.name), 'utf8'));
  }
  return files;
}

test('every module of src/ imports only from layers below its own', () => {
  const files = sourcesUnder(SRC);
  assert.ok(files.size > 50, `expected the whole of src/, found ${files.size} files`);
  assert.deepEqual(layerViolations(files), []);
});

test('the check catches an upward import, a bench <-> harness import and a type-only one', () => {
  const files = new Map([
    ['system/worker.ts', "import { runSweep } from '../scenarios/bench/sweep.ts';"],
    ['harness/childService.ts', "import { processCpuSeconds } from '../bench/processCpu.ts';"],
    ['bench/sampler.ts', "import type { SystemUnderTest } from '../harness/systemUnderTest.ts';"],
    ['scenarios/chaos/chaos.ts', "const m = await import('../../commands/chaos.ts');"],
    ['scenarios/micro.ts', "import { createPool } from '../system/db/pool.ts';"],
  ]);
  assert.deepEqual(layerViolations(files), [
    'src/system/worker.ts (system) imports ../scenarios/bench/sweep.ts (scenarios): system may import only layers below it',
    'src/harness/childService.ts (harness) imports ../bench/processCpu.ts (bench): harness may import only layers below it',
    'src/bench/sampler.ts (bench) imports ../harness/systemUnderTest.ts (harness): bench may import only layers below it',
    'src/scenarios/chaos/chaos.ts (scenarios) imports ../../commands/chaos.ts (commands): scenarios may import only layers below it',
  ]);
});
