// CSV output of the bench: one row per configuration point and repetition, fixed column order, units in the
// column names, empty cells for figures that do not apply to a row's kind.
import { stringify } from 'csv-stringify/sync';

export type Cell = string | number | boolean | undefined;
export type CsvRow = Record<string, Cell>;

/** Renders rows with exactly `columns`, in that order; a key not in `columns` is an error (a typo, not data). */
export function toCsv(columns: readonly string[], rows: readonly CsvRow[]): string {
  const known = new Set(columns);
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!known.has(key)) throw new Error(`csv: row has column "${key}" which is not in the column list`);
    }
  }
  return stringify(
    rows.map((row) => columns.map((c) => formatCell(row[c]))),
    { header: true, columns: [...columns] },
  );
}

export function formatCell(value: Cell): string {
  if (value === undefined) return '';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return '';
    return Number.isInteger(value) ? String(value) : String(Math.round(value * 1000) / 1000);
  }
  return String(value);
}
