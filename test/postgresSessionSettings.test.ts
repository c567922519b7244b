// What every PostgreSQL session this project opens pins at connect, whatever the role or database defaults say:
// synchronous_commit=on (a role or database set to `local` or `off` would answer a publish before its standby,
// or its own disk, has it). The control: a plain connection of the same role gets the lowered setting.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { createPgPool, type PgPool } from '../src/system/db/postgres/pool.ts';

describe('PostgreSQL session settings', () => {
  const server = usePrivatePostgres();
  const pools: PgPool[] = [];
  after(async () => {
    for (const p of pools) await p.end().catch(() => undefined);
  });

  test('synchronous_commit stays on when the role and the database lower it', async () => {
    const admin = createPgPool({ url: server().url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'test' });
    pools.push(admin);
    const [{ db, usr }] = (await admin.query('SELECT current_database() AS db, current_user AS usr')).rows as { db: string; usr: string }[] as [{ db: string; usr: string }];
    await admin.query(`ALTER DATABASE "${db}" SET synchronous_commit = off`);
    await admin.query(`ALTER ROLE "${usr}" SET synchronous_commit = local`);
    try {
      const plain = new pg.Client({ connectionString: server().url });
      await plain.connect();
      const lowered = (await plain.query('SHOW synchronous_commit')).rows[0] as { synchronous_commit: string };
      await plain.end();
      assert.equal(lowered.synchronous_commit, 'local', 'the control: a plain session takes the role setting');
      const pool = createPgPool({ url: server().url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'server' });
      pools.push(pool);
      const pinned = (await pool.query('SHOW synchronous_commit')).rows[0] as { synchronous_commit: string };
      assert.equal(pinned.synchronous_commit, 'on');
    } finally {
      await admin.query(`ALTER DATABASE "${db}" RESET synchronous_commit`);
      await admin.query(`ALTER ROLE "${usr}" RESET synchronous_commit`);
    }
  });
});
