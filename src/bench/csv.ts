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

/**
 * Reads back a CSV this module wrote (to redraw charts and pages from a saved run): numbers become numbers,
 * true/false booleans, empty cells undefined, everything else stays text. Quoted cells may hold commas,
 * doubled quotes and line breaks, as csv-stringify writes them.
 */
export function parseCsv(text: string): CsvRow[] {
  const records = splitRecords(text);
  const header = records.shift() ?? [];
  return records
    .filter((cells) => cells.length > 1 || cells[0] !== '')
    .map((cells) => {
      const row: CsvRow = {};
      header.forEach((column, i) => {
        const v = cells[i] ?? '';
        if (v === '') row[column] = undefined;
        else if (v === 'true' || v === 'false') row[column] = v === 'true';
        else if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v)) row[column] = Number(v);
        else row[column] = v;
      });
      return row;
    });
}

function splitRecords(text: string): string[][] {
  const records: string[][] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      if (c === '\r') i++;
      cells.push(cell);
      records.push(cells);
      cells = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || cells.length > 0) records.push([...cells, cell]);
  return records;
}
