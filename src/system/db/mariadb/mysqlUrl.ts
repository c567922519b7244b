// A MariaDB URL: parsing `mysql://user:password@host:port/database` into what the driver connects with, and
// building one. Hiding its password is urlRedaction.ts's, the one redaction of every engine's URL.
import { redactDatabaseUrl } from '../urlRedaction.ts';

export interface MysqlUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  socketPath?: string;
}

/** Parses `mysql://user:pass@host:port/db[?socket=/path]`; throws an error that says what is wrong (never showing the password). */
export function parseMysqlUrl(url: string): MysqlUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `MYSQL_URL is not a URL: "${redactDatabaseUrl(url)}" (expected mysql://user:password@host:port/database; ` +
        'percent-encode @ : / ? # in the password, e.g. @ as %40)',
    );
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new Error(`MYSQL_URL must start with mysql:// (got "${parsed.protocol}//")`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || !/^[A-Za-z0-9_$]+$/.test(database)) {
    throw new Error(`MYSQL_URL must name a database made of letters, digits and _ (got "${database}" in ${redactDatabaseUrl(url)})`);
  }
  const port = parsed.port === '' ? 3306 : Number(parsed.port);
  const socketPath = parsed.searchParams.get('socket') ?? undefined;
  return {
    host: parsed.hostname === '' ? '127.0.0.1' : parsed.hostname.replace(/^\[|\]$/g, ''),
    port,
    user: decodeURIComponent(parsed.username || 'root'),
    password: decodeURIComponent(parsed.password),
    database,
    ...(socketPath === undefined ? {} : { socketPath }),
  };
}

/** `mysql://user[:password]@host:port/database`, user and password percent-encoded. */
export function formatMysqlUrl(url: { user: string; password: string; host: string; port: number; database: string }): string {
  const credentials = `${encodeURIComponent(url.user)}${url.password === '' ? '' : `:${encodeURIComponent(url.password)}`}`;
  const host = url.host.includes(':') ? `[${url.host}]` : url.host;
  return `mysql://${credentials}@${host}:${url.port}/${url.database}`;
}

/**
 * The same URL on another server: `address` (`host:port`, `[v6]:port`, as a Galera node lists its members'
 * client addresses) replaces host and port, and a socket path is dropped (the other server is reached by TCP).
 */
export function withAddress(url: string, address: string): string {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address.trim());
  if (match === null) throw new Error(`not a host:port address: ${JSON.stringify(address)}`);
  const parsed = parseMysqlUrl(url);
  return formatMysqlUrl({ ...parsed, host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) });
}
