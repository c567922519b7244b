// Reading a /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat) line: the command name and the fields after it.
// The name, in parentheses, may itself hold spaces and parentheses (the pid before it holds neither), so it runs
// from the first '(' to the last ')', and the fields are counted from that last ')'.

/** The command name (field 2, /proc/<pid>/comm) without its parentheses; undefined for a line that is not one. */
export function statCommand(text: string): string | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  return open < 0 || close < open ? undefined : text.slice(open + 1, close);
}

/**
 * The fields after the command name: field 3 (the state letter) at index 0, so proc(5)'s field n is at n - 3.
 * Undefined for a line that is not one.
 */
export function statFieldsAfterComm(text: string): string[] | undefined {
  const close = text.lastIndexOf(')');
  return close < 0 ? undefined : text.slice(close + 2).trim().split(/\s+/);
}
