// Start-up of a process whose database may be restarting (a chaos fault, a compose service still booting):
// retry the connection for a bounded time, then fail with an error that says where and what to do.
import { redactMysqlUrl } from './pool.ts';
import { classifyError, describeError } from './errors.ts';
import { classifyPgError, describePgError } from './postgres/errors.ts';
import { checkDatabaseUrl } from './databaseUrl.ts';
import { ensureDatabaseExists } from './openDatabase.ts';
import { Backoff } from '../pubsub/backoff.ts';

export async function waitForDatabase(url: string, timeoutMs: number, log: (line: string) => void): Promise<void> {
  const postgres = checkDatabaseUrl(url) === 'postgres';
  const classify = postgres ? classifyPgError : classifyError;
  const describe = postgres ? describePgError : describeError;
  const deadline = Date.now() + timeoutMs;
  const backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
  for (;;) {
    try {
      await ensureDatabaseExists(url);
      return;
    } catch (error) {
      const kind = classify(error);
      if (kind === 'fatal' || Date.now() >= deadline) {
        throw new Error(
          `cannot use the database at ${redactMysqlUrl(url)}: ${describe(error)}` +
            (kind === 'fatal' ? '' : ` (still failing after ${timeoutMs} ms: is the server running? start a private one with \`eob db start\`)`),
          { cause: error },
        );
      }
      const pause = backoff.next();
      log(`database not reachable yet (${describe(error)}); retry in ${pause} ms`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
