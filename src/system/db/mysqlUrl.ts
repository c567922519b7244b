// MYSQL_URL: parsing `mysql://user:password@host:port/database`, building one, and the one function that hides
// its password wherever a URL is shown (logs, errors, results files).
//
// A password may hold characters a URL reserves (`@`, `:`, `/`); people paste them unencoded. The URL parser
// takes the last `@` of the authority as the end of the credentials and the first `:` as the end of the user,
// so redaction does the same, and where the string is too broken to parse it hides everything up to the last
// `@`: hiding too much is harmless, showing a password is not.

export interface MysqlUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  socketPath?: string;
}

// postgres:// and postgresql:// URLs have the same authority syntax, so they are redacted by the same rule.
const SCHEMES = /^(mysql|mariadb|postgres|postgresql):\/\//i;

/** Parses `mysql://user:pass@host:port/db[?socket=/path]`; throws an error that says what is wrong (never showing the password). */
export function parseMysqlUrl(url: string): MysqlUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `MYSQL_URL is not a URL: "${redactMysqlUrl(url)}" (expected mysql://user:password@host:port/database; ` +
        'percent-encode @ : / ? # in the password, e.g. @ as %40)',
    );
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new Error(`MYSQL_URL must start with mysql:// (got "${parsed.protocol}//")`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || !/^[A-Za-z0-9_$]+$/.test(database)) {
    throw new Error(`MYSQL_URL must name a database made of letters, digits and _ (got "${database}" in ${redactMysqlUrl(url)})`);
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
 * The URL with its password replaced by `***`, for everything a person or a file may see. A URL without a
 * password, or a string that is not a mysql:// (or postgres://) URL, comes back unchanged.
 */
export function redactMysqlUrl(url: string): string {
  const scheme = SCHEMES.exec(url);
  if (scheme === null) return url;
  const rest = url.slice(scheme[0].length);
  // The authority ends at the first / ? #; the credentials at its last @. A password holding an unencoded
  // / ? or # makes the authority end inside it, so then the last @ of the whole string counts instead.
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  let at = authority.lastIndexOf('@');
  if (at === -1 || !authority.slice(0, at).includes(':')) {
    const lastAt = rest.lastIndexOf('@');
    if (lastAt === -1 || !rest.slice(0, lastAt).includes(':')) return url;
    at = lastAt;
  }
  const user = rest.slice(0, rest.indexOf(':'));
  return `${scheme[0]}${user}:***${rest.slice(at)}`;
}

/** Every mysql:// URL inside `text` (a log line, an error message, a CSV) redacted. */
export function redactMysqlUrlsIn(text: string): string {
  // A URL runs to the next whitespace; redactMysqlUrl then hides up to its last @, so a password holding
  // quotes or commas is hidden along with whatever follows it on that line.
  return text.replace(/(mysql|mariadb|postgresql|postgres):\/\/\S*/gi, (match) => redactMysqlUrl(match));
}

/** A copy of `value` (options, results) with every mysql:// URL in its strings redacted, for files on disk. */
export function redactMysqlUrlsDeep<T>(value: T): T {
  if (typeof value === 'string') return redactMysqlUrlsIn(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactMysqlUrlsDeep(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactMysqlUrlsDeep(v)])) as T;
  }
  return value;
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
