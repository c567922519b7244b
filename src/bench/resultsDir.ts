// Where a run writes: results/<scenario>/<ISO timestamp>/ and a `latest` link beside it (moved only to a
// complete run, so an interrupted one never hides the last good one), plus what makes a
// result reproducible: the resolved options, versions of node and the packages, the database's version and
// durability settings, and the git commit.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { SqlExecutor } from '../system/pubsub/types.ts';
import { selectDurability } from '../system/sql/mariadb/observation.ts';
import { redactDatabaseUrlsDeep, redactDatabaseUrlsIn } from '../system/db/urlRedaction.ts';

export interface ResultsDir {
  path: string;
  scenario: string;
  startedAt: Date;
  /** Text has every mysql:// URL in it redacted (a Buffer, e.g. a PNG, is written as given). */
  writeText(name: string, text: string | Buffer): string;
  /** Every mysql:// URL in the value's strings is redacted: options hold the MYSQL_URL a run was given. */
  writeJson(name: string, value: unknown): string;
  /** Points `<scenario>/latest` here (for a run created with latest: false once it turns out complete). */
  markLatest(): void;
}

/** `2024-05-01T10:20:30.123Z` -> `2024-05-01T10-20-30.123Z` (colons are awkward in paths on some systems). */
export function timestampDirName(at: Date): string {
  return at.toISOString().replace(/:/g, '-');
}

/** `latest`: point <scenario>/latest at the new folder now (default); false leaves it to markLatest(). */
export function createResultsDir(root: string, scenario: string, at = new Date(), options: { latest: boolean } = { latest: true }): ResultsDir {
  if (!/^[a-z0-9-]+$/.test(scenario)) throw new Error(`resultsDir: scenario must be lowercase letters, digits, - (got "${scenario}")`);
  const scenarioDir = join(root, scenario);
  const path = join(scenarioDir, timestampDirName(at));
  mkdirSync(path, { recursive: true });
  if (options.latest) pointLatestAt(scenarioDir, path);
  return {
    path,
    scenario,
    startedAt: at,
    writeText(name, text) {
      const file = join(path, name);
      writeFileSync(file, typeof text === 'string' ? redactDatabaseUrlsIn(text) : text);
      return file;
    },
    writeJson(name, value) {
      const file = join(path, name);
      writeFileSync(file, `${JSON.stringify(redactDatabaseUrlsDeep(value), null, 2)}\n`);
      return file;
    },
    markLatest() {
      pointLatestAt(scenarioDir, path);
    },
  };
}

/** Replaces `<scenarioDir>/latest` atomically (link beside it, then rename), relative so the tree can move. */
function pointLatestAt(scenarioDir: string, target: string): void {
  const latest = join(scenarioDir, 'latest');
  const temp = join(scenarioDir, `.latest-${process.pid}`);
  if (existsSync(temp)) unlinkSync(temp);
  symlinkSync(relative(scenarioDir, target), temp);
  renameSync(temp, latest);
}

export interface Versions {
  node: string;
  packages: Record<string, string>;
  gitCommit: string | undefined;
  gitDirty: boolean | undefined;
  platform: string;
  cpus: number;
}

export interface DatabaseInfo {
  db_version: string;
  db_flush_log_at_trx_commit: number | undefined;
  db_sync_binlog: number | undefined;
  db_log_bin: boolean | undefined;
}

/** Versions of node and of this project's dependencies as installed, and the git commit of the tree. */
export async function collectVersions(projectRoot: string): Promise<Versions> {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const packages: Record<string, string> = {};
  for (const name of Object.keys(pkg.dependencies ?? {})) {
    try {
      const p = JSON.parse(readFileSync(join(projectRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
      packages[name] = p.version;
    } catch {
      packages[name] = 'not installed';
    }
  }
  const git = (args: string[]): string | undefined => {
    try {
      return execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  const os = await import('node:os');
  return {
    node: process.version,
    packages,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: status === undefined ? undefined : status !== '',
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
  };
}

/** The server's version and durability settings, recorded with every result. */
export async function collectDatabaseInfo(db: SqlExecutor): Promise<DatabaseInfo> {
  const r = await selectDurability(db);
  return {
    db_version: r.version,
    db_flush_log_at_trx_commit: r.flushLogAtTrxCommit,
    db_sync_binlog: r.syncBinlog,
    db_log_bin: r.logBin,
  };
}
