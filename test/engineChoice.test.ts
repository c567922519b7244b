// The --engine choice of db, bench and chaos: what each value selects, and that a bad one is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineOfUrl, parseEngineChoice, resolveRunEngines } from '../src/harness/engines.ts';
import { OptionsError } from '../src/validate.ts';
import { defaultDataDirectory } from '../src/commands/db.ts';

test('each engine alone, and all = MariaDB then PostgreSQL', () => {
  assert.deepEqual(parseEngineChoice('bench', 'mariadb'), ['mariadb']);
  assert.deepEqual(parseEngineChoice('bench', 'postgres'), ['postgres']);
  assert.deepEqual(parseEngineChoice('bench', 'all'), ['mariadb', 'postgres']);
  assert.deepEqual(parseEngineChoice('bench', ' Postgres '), ['postgres'], 'case and spaces from a Makefile variable are forgiven');
});

test('a bad engine is an OptionsError naming the flag, the value and the accepted ones', () => {
  assert.throws(() => parseEngineChoice('chaos', 'mysql'), (e: Error) => e instanceof OptionsError && /chaos: --engine must be one of mariadb, postgres, all \(got "mysql"\)/.test(e.message));
  assert.throws(() => parseEngineChoice('chaos', ''), OptionsError);
  assert.throws(() => parseEngineChoice('chaos', undefined), OptionsError);
});

test('one server at a time: db start refuses all', () => {
  assert.throws(() => parseEngineChoice('db start', 'all', false), /db start: --engine must be one of mariadb, postgres \(got "all"\)/);
});

test('the engine a URL speaks', () => {
  assert.equal(engineOfUrl('mysql://root@127.0.0.1:3307/eob'), 'mariadb');
  assert.equal(engineOfUrl('postgres://postgres:x@127.0.0.1:5433/eob'), 'postgres');
  assert.equal(engineOfUrl('postgresql://u@h/db'), 'postgres');
  assert.equal(engineOfUrl('http://h/'), undefined);
  assert.equal(engineOfUrl('127.0.0.1:3306'), undefined);
});

test('each engine keeps its own default data directory, so both can run side by side', () => {
  assert.equal(defaultDataDirectory('mariadb', 3307), '.eob/db-3307');
  assert.equal(defaultDataDirectory('postgres', 5433), '.eob/pg-5433');
});

test('a run without --engine takes the given URL\'s engine; a contradiction or all with one server is refused', () => {
  assert.deepEqual(resolveRunEngines('bench', undefined, undefined), ['mariadb']);
  assert.deepEqual(resolveRunEngines('bench', undefined, 'postgres://u:p@127.0.0.1:5433/eob'), ['postgres']);
  assert.deepEqual(resolveRunEngines('bench', 'all', undefined), ['mariadb', 'postgres']);
  assert.deepEqual(resolveRunEngines('bench', 'postgres', 'postgres://u:p@127.0.0.1:5433/eob'), ['postgres']);
  assert.throws(() => resolveRunEngines('bench', 'postgres', 'mysql://root@127.0.0.1:3307/eob'), /bench: --engine postgres but the given database URL is a mariadb URL/);
  assert.throws(() => resolveRunEngines('chaos', 'all', 'mysql://root@127.0.0.1:3307/eob'), /chaos: --engine all starts a private server of each engine/);
});
