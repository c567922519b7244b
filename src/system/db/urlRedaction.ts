// The one function that hides a database URL's password wherever a URL is shown (logs, errors, results files),
// for every engine: mysql://, mariadb://, postgres:// and postgresql:// URLs share the authority syntax.
//
// A password may hold characters a URL reserves (`@`, `:`, `/`); people paste them unencoded. The URL parser
// takes the last `@` of the authority as the end of the credentials and the first `:` as the end of the user,
// so redaction does the same, and where the string is too broken to parse it hides everything up to the last
// `@`: hiding too much is harmless, showing a password is not.

const SCHEMES = /^(mysql|mariadb|postgres|postgresql):\/\//i;

/**
 * The URL with its password replaced by `***`, for everything a person or a file may see. A URL without a
 * password, or a string that is not a mysql:// or postgres:// URL, comes back unchanged.
 */
export function redactDatabaseUrl(url: string): string {
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

/** Every database URL inside `text` (a log line, an error message, a CSV) redacted. */
export function redactDatabaseUrlsIn(text: string): string {
  // A URL runs to the next whitespace; redactDatabaseUrl then hides up to its last @, so a password holding
  // quotes or commas is hidden along with whatever follows it on that line.
  return text.replace(/(mysql|mariadb|postgresql|postgres):\/\/\S*/gi, (match) => redactDatabaseUrl(match));
}

/** A copy of `value` (options, results) with every database URL in its strings redacted, for files on disk. */
export function redactDatabaseUrlsDeep<T>(value: T): T {
  if (typeof value === 'string') return redactDatabaseUrlsIn(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDatabaseUrlsDeep(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDatabaseUrlsDeep(v)])) as T;
  }
  return value;
}
