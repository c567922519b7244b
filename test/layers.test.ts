// The layer rule of src/: each folder imports only from layers below its own (docs/ARCHITECTURE.md, "Layers"),
// and inside src/system the same rule between its tiers, with each engine behind the seam. Parses every
// relative import of src/**/*.ts (static, dynamic and type-only) and fails naming the file, the import and both
// layers when one points upward, sideways between bench/ and harness/, or across the engine seam.
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

/**
 * The tiers of src/system, lowest first (docs/ARCHITECTURE.md, "The engine seam"): the shared primitives; the
 * neutral seam (sql/*.ts: the SqlEngine interface, the gap proof's probes, the rows both engines share); each
 * engine's SQL (sql/<engine>/); the connections, where an engine is chosen (db/, each engine's driver in
 * db/<engine>/); the pub/sub; the services (publish path, worker, server, retention).
 */
const SYSTEM_TIERS = ['primitives', 'seam', 'engine-sql', 'db', 'pubsub', 'service'] as const;
type SystemTier = (typeof SYSTEM_TIERS)[number];
const PRIMITIVES = new Set(['types.ts', 'messageJson.ts', 'backoff.ts', 'failpoints.ts', 'waiting.ts']);
const ENGINES = new Set(['mariadb', 'postgres']);

/** The tier of a file under src/system/ (path relative to src/system), and the engine it belongs to, if one. */
function systemTierOf(relativePath: string): { tier: SystemTier; engine: string | undefined } {
  const parts = relativePath.split(path.sep).join('/').split('/');
  const engine = parts.length > 2 && ENGINES.has(parts[1]!) ? parts[1] : undefined;
  if (parts.length === 1) return { tier: PRIMITIVES.has(parts[0]!) ? 'primitives' : 'service', engine };
  if (parts[0] === 'sql') return { tier: engine === undefined ? 'seam' : 'engine-sql', engine };
  if (parts[0] === 'db') return { tier: 'db', engine };
  if (parts[0] === 'pubsub') return { tier: 'pubsub', engine };
  return { tier: 'service', engine };
}

/**
 * Imports inside src/system that point to a higher tier, from one engine's module to another engine's, or to an
 * engine's module from anywhere but that engine and db/ (which chooses the engine): above db/, the pub/sub and
 * the services know only the SqlEngine and Database interfaces.
 */
function systemViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    if (layerOf(file) !== 'system') continue;
    const from = systemTierOf(path.relative('system', file));
    for (const specifier of relativeImports(source)) {
      const target = path.relative(SRC, path.resolve(SRC, path.dirname(file), specifier));
      if (target.startsWith('..') || layerOf(target) !== 'system') continue;
      const to = systemTierOf(path.relative('system', target));
      const where = `src/${file} (${from.engine ?? from.tier}) imports ${specifier} (${to.engine ?? to.tier})`;
      if (SYSTEM_TIERS.indexOf(to.tier) > SYSTEM_TIERS.indexOf(from.tier)) {
        violations.push(`${where}: ${from.tier} may import only tiers up to its own`);
      } else if (to.engine !== undefined && from.engine !== undefined && to.engine !== from.engine) {
        violations.push(`${where}: one engine may not import another's modules`);
      } else if (to.engine !== undefined && from.engine === undefined && from.tier !== 'db') {
        violations.push(`${where}: only db/ chooses an engine; ${from.tier} knows only the engine's interface`);
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

test('every module of src/system imports only from its own tier or below, and each engine only through the seam', () => {
  const files = sourcesUnder(SRC);
  assert.deepEqual(systemViolations(files), []);
});

test('the check catches an upward import, a bench <-> harness import and a type-only one', () => {
  const files = new Map([
    ['system/worker.ts', "import { runSweep } from '../scenarios/throughput/sweep.ts';"],
    ['harness/childService.ts', "import { processCpuSeconds } from '../bench/processCpu.ts';"],
    ['bench/sampler.ts', "import type { SystemUnderTest } from '../harness/systemUnderTest.ts';"],
    ['scenarios/chaos/chaos.ts', "const m = await import('../../commands/chaos.ts');"],
    ['scenarios/micro.ts', "import { createPool } from '../system/db/pool.ts';"],
  ]);
  assert.deepEqual(layerViolations(files), [
    'src/system/worker.ts (system) imports ../scenarios/throughput/sweep.ts (scenarios): system may import only layers below it',
    'src/harness/childService.ts (harness) imports ../bench/processCpu.ts (bench): harness may import only layers below it',
    'src/bench/sampler.ts (bench) imports ../harness/systemUnderTest.ts (harness): bench may import only layers below it',
    'src/scenarios/chaos/chaos.ts (scenarios) imports ../../commands/chaos.ts (commands): scenarios may import only layers below it',
  ]);
});

test('the system check catches an upward import, an engine importing another, and the pub/sub naming an engine', () => {
  const files = new Map([
    ['system/sql/engine.ts', "import type { GapProbes } from '../pubsub/gapTracker.ts';"],
    ['system/sql/postgres/messagesTable.ts', "import { toMessage } from '../mariadb/messagesTable.ts';"],
    ['system/db/postgres/pool.ts', "import type { Pool } from '../pool.ts';\nimport { x } from '../mariadb/pool.ts';"],
    ['system/pubsub/gapTracker.ts', "import type { OpenWriters } from '../sql/mariadb/innodbTrx.ts';"],
    ['system/server/options.ts', "import { assertTopicName } from '../sql/mariadb/identifiers.ts';"],
    ['system/types.ts', "import type { Pool } from './db/pool.ts';"],
    // Allowed: db/ chooses the engine, an engine imports the seam and the primitives, a service the pub/sub.
    ['system/db/openDatabase.ts', "import { postgresDatabase } from './postgres/database.ts';"],
    ['system/sql/mariadb/engine.ts', "import type { SqlEngine } from '../engine.ts';\nimport type { Message } from '../../types.ts';"],
    ['system/worker.ts', "import { SqlPubSub } from './pubsub/sqlPubSub.ts';"],
  ]);
  assert.deepEqual(systemViolations(files), [
    'src/system/sql/engine.ts (seam) imports ../pubsub/gapTracker.ts (pubsub): seam may import only tiers up to its own',
    'src/system/sql/postgres/messagesTable.ts (postgres) imports ../mariadb/messagesTable.ts (mariadb): one engine may not import another\'s modules',
    'src/system/db/postgres/pool.ts (postgres) imports ../mariadb/pool.ts (mariadb): one engine may not import another\'s modules',
    "src/system/pubsub/gapTracker.ts (pubsub) imports ../sql/mariadb/innodbTrx.ts (mariadb): only db/ chooses an engine; pubsub knows only the engine's interface",
    "src/system/server/options.ts (service) imports ../sql/mariadb/identifiers.ts (mariadb): only db/ chooses an engine; service knows only the engine's interface",
    'src/system/types.ts (primitives) imports ./db/pool.ts (db): primitives may import only tiers up to its own',
  ]);
});
