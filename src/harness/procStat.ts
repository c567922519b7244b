// Reading a /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat) line. Its second field, the command name in
// parentheses, may itself hold spaces and parentheses, so the fields are counted from the last ')'.

/**
 * The fields after the command name: field 3 (the state letter) at index 0, so proc(5)'s field n is at n - 3.
 * Undefined for a line that is not one.
 */
export function statFieldsAfterComm(text: string): string[] | undefined {
  const close = text.lastIndexOf(')');
  return close < 0 ? undefined : text.slice(close + 2).trim().split(/\s+/);
}
