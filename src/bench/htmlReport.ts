// One static page per run, results/<scenario>/<run>/index.html: the outcome, the verdicts, the summary table,
// the charts, the configuration and the machine, and links to the raw files. Everything is inline or beside
// the page (charts and CSV linked relatively), no script and no network access, so the folder can be copied
// anywhere and opened from disk.
import os from 'node:os';
import type { CsvRow } from './csv.ts';
import { formatCell } from './csv.ts';
import type { ResultsDir } from './resultsDir.ts';

export type RowStatus = 'good' | 'bad' | 'neutral';

export interface ReportTable {
  caption: string;
  columns: string[];
  rows: { cells: string[]; status: RowStatus }[];
}

export interface HtmlReport {
  /** e.g. "bench, quick profile". */
  title: string;
  /** The one-line answer at the top: did the run show what it must. */
  outcome: { ok: boolean; text: string };
  /** One line per finding a reader must not miss (best figures, each failed or flagged point or case). */
  verdicts: { ok: boolean; text: string }[];
  tables: ReportTable[];
  /** PNG files in the run folder, with what each shows, and a table to read beside it. */
  charts: { file: string; caption: string; table?: ReportTable }[];
  /** Configuration and machine, as label / value pairs. */
  facts: [string, string][];
  /** Files of the run folder worth opening. */
  files: { file: string; label: string }[];
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** A relative link to a file beside the page; anything else (a path out of the folder, a URL) is refused. */
function localHref(file: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file)) throw new Error(`htmlReport: "${file}" is not a file name in the run folder`);
  return encodeURIComponent(file);
}

/**
 * Picks the columns of `rows` that have a value in at least one row, in the order of `columns`, and formats
 * numbers with thousands separators (ratios with two decimals).
 */
export function tableFromRows(caption: string, rows: readonly CsvRow[], columns: readonly [string, string][], status: (r: CsvRow) => RowStatus): ReportTable {
  const shown = columns.filter(([key]) => rows.some((r) => r[key] !== undefined && r[key] !== ''));
  const cell = (key: string, v: CsvRow[string]): string => {
    if (typeof v !== 'number') return formatCell(v);
    if (key.startsWith('ratio')) return v.toFixed(2);
    return Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toLocaleString('en-US') : String(v);
  };
  return {
    caption,
    columns: shown.map(([, header]) => header),
    rows: rows.map((r) => ({ cells: shown.map(([key]) => cell(key, r[key])), status: status(r) })),
  };
}

/** The machine a run was made on, for the facts list. */
export function machineFacts(): [string, string][] {
  const cpus = os.cpus();
  return [
    ['machine', `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`],
    ['system', `${os.type()} ${os.release()} ${os.arch()}`],
    ['node', process.version],
  ];
}

const STYLE = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1280px;padding:0 16px;color:#222}
h1{font-size:1.5em;margin:0 0 8px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ddd}
.outcome{font-size:1.25em;font-weight:600;padding:10px 14px;border-radius:6px;margin:12px 0}
.ok{background:#e3f4e6;color:#14532d}.bad{background:#fde2e1;color:#7f1d1d}
ul.verdicts{list-style:none;padding:0}ul.verdicts li{padding:3px 8px;margin:2px 0;border-left:5px solid #2e7d32}
ul.verdicts li.bad{border-left-color:#c62828;background:#fdf0ef}
table{border-collapse:collapse;font-size:13px;margin:8px 0}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}tr.bad td{background:#fdecea}tr.good td:first-child{border-left:4px solid #2e7d32}
tr.bad td:first-child{border-left:4px solid #c62828}
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:13px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{color:#555}dd{margin:0;font-family:ui-monospace,monospace;font-size:13px}
.scroll{overflow-x:auto}.beside{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.beside figure{flex:1 1 560px}`;

/** The page, as one string of HTML. */
export function renderHtmlReport(r: HtmlReport): string {
  const e = escapeHtml;
  const table = (t: ReportTable) =>
    `<div class="scroll"><table><caption>${e(t.caption)}</caption><thead><tr>${t.columns.map((c) => `<th>${e(c)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((row) => `<tr class="${row.status}">${row.cells.map((c) => `<td>${e(c)}</td>`).join('')}</tr>`).join('\n') +
    `</tbody></table></div>`;
  const chart = (c: HtmlReport['charts'][number]) => {
    const figure = `<figure><img src="${localHref(c.file)}" alt="${e(c.caption)}"><figcaption>${e(c.caption)} (<a href="${localHref(c.file)}">${e(c.file)}</a>)</figcaption></figure>`;
    return c.table === undefined ? figure : `<div class="beside">${figure}${table(c.table)}</div>`;
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${e(r.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${e(r.title)}</h1>
<div class="outcome ${r.outcome.ok ? 'ok' : 'bad'}" id="outcome">${e(r.outcome.text)}</div>
<h2>Verdicts</h2>
<ul class="verdicts" id="verdicts">${r.verdicts.map((v) => `<li class="${v.ok ? 'ok' : 'bad'}">${e(v.text)}</li>`).join('\n')}</ul>
<h2>Results</h2>
${r.tables.map(table).join('\n')}
<h2>Charts</h2>
${r.charts.length === 0 ? '<p>No chart was written for this run.</p>' : r.charts.map(chart).join('\n')}
<h2>Configuration and machine</h2>
<dl>${r.facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('')}</dl>
<h2>Files</h2>
<ul>${r.files.map((f) => `<li><a href="${localHref(f.file)}">${e(f.file)}</a>: ${e(f.label)}</li>`).join('')}</ul>
</body></html>
`;
}

/** Writes index.html into the run folder (mysql:// URLs redacted like every other text file there). */
export function writeHtmlReport(dir: ResultsDir, report: HtmlReport): string {
  return dir.writeText('index.html', renderHtmlReport(report));
}
