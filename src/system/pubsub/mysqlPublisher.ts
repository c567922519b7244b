// The publisher bound to MariaDB's SQL, for callers that hold a mysql2 executor (the micro-benchmarks, tests).
// Everything else builds a SqlPublisher with its Database's engine.
import type { SqlExecutor, TopicMode } from '../types.ts';
import { SqlPublisher } from './sqlPublisher.ts';
import { mariadbEngine } from '../sql/mariadb/engine.ts';

export class MysqlPublisher extends SqlPublisher {
  constructor(db: SqlExecutor, schema: TopicMode = 'offset', autoInitializeSchema = false) {
    super(db, mariadbEngine, schema, autoInitializeSchema);
  }
}
