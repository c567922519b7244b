// The run pages (index.html) built from literal fixtures, opened in headless Chromium: the outcome, the
// verdicts, every table row and the charts (loaded: natural width > 0) are on the page, and nothing in it
// points off the machine. Without Chromium the test fails under CI (it must run there) and is skipped elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readEnvironment } from '../src/config.ts';
import { drainChartSpec, endToEndChartSpec, renderSvg, svgToPng } from '../src/bench/chart.ts';
import { chartRules, drainChartData, endToEndChartData } from '../src/bench/report.ts';
import { renderHtmlReport, tableFromRows } from '../src/bench/htmlReport.ts';
import { toCsv } from '../src/bench/csv.ts';
import { benchPage } from '../src/scenarios/throughput/benchPage.ts';
import { profileOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { chaosPage } from '../src/scenarios/chaos/chaosPage.ts';
import { csvRow } from '../src/scenarios/chaos/chaosReport.ts';
import { timelineChartSpec } from '../src/scenarios/chaos/timelineChart.ts';
import { BENCH_ROWS, lossyChaosCase } from './fixtures/chartFixtures.ts';
import { findChromium, openInChromium } from './support/headlessChromium.ts';

const chromium = findChromium();
const missing = 'chromium is not installed: `apt-get install -y chromium` (Debian; .ci/run installs it)';
const skip = chromium === undefined && !readEnvironment().ci ? missing : false;

function requireChromium(): string {
  if (chromium === undefined) assert.fail(`${missing}; under CI the page test must run`);
  return chromium;
}

const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/\s+/g, ' ');

test('bench page: outcome, verdicts, a row per point, both charts loaded, no network', { skip, timeout: 120_000 }, async () => {
  const binary = requireChromium();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eob-page-test-'));
  try {
    const rules = chartRules(BENCH_ROWS, 154);
    const drain = drainChartData(BENCH_ROWS);
    writeFileSync(path.join(dir, 'drain.png'), svgToPng(await renderSvg(drainChartSpec(drain.points, drain.ceiling, rules.drain))));
    writeFileSync(path.join(dir, 'end-to-end.png'), svgToPng(await renderSvg(endToEndChartSpec(endToEndChartData(BENCH_ROWS), rules.endToEnd))));
    writeFileSync(path.join(dir, 'results.csv'), 'point\n');
    const page = benchPage({
      rows: BENCH_ROWS, medians: false, sweep: profileOptions('standard'), startedAt: new Date('2026-11-27T16:00:00Z'), finishedAt: new Date('2026-11-27T16:04:22Z'),
      interrupted: false, database: { db_version: '10.11.19-MariaDB', db_flush_log_at_trx_commit: 1 }, gitCommit: 'abc123', files: ['drain.png', 'end-to-end.png', 'results.csv', 'options.json'],
    });
    const html = renderHtmlReport(page);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing on the page is fetched from the network');
    writeFileSync(path.join(dir, 'index.html'), html);
    const opened = openInChromium(binary, path.join(dir, 'index.html'));
    const shown = text(opened.dom);
    assert.match(shown, /All \d+ checked point\(s\) as expected/);
    assert.match(shown, /best drain: drain offset batch 5000 READ COMMITTED: 360,464 msgs\/s/);
    assert.match(shown, /control caught: drain offset batch 100 READ COMMITTED before-commit/);
    assert.match(shown, /not drained in time \(1 point\(s\); each rate is over the part drained, a lower bound\): offset batch 5000 SERIALIZABLE/);
    for (const r of BENCH_ROWS) assert.ok(shown.includes(` ${String(r.point)} `), `the table has a row for ${r.point}`);
    assert.equal((opened.dom.match(/<tr class=/g) ?? []).length, BENCH_ROWS.length);
    assert.deepEqual(opened.images.map((i) => i.src), ['drain.png', 'end-to-end.png']);
    for (const i of opened.images) assert.ok(i.width > 100, `${i.src} loaded (natural width ${i.width})`);
    assert.match(shown, /results\.csv\s*: every point/, 'the CSV is linked');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chaos page: FAIL outcome and the failed case first-class, timeline loaded; a missing chart shows as not loaded', { skip, timeout: 120_000 }, async () => {
  const binary = requireChromium();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eob-page-test-'));
  try {
    const lossy = lossyChaosCase();
    const clean = { ...lossyChaosCase(), case: { ...lossy.case, name: 'eo-offset-b1000' }, expected: 'valid' as const, passed: false, why: 'invalid: lost 100' };
    writeFileSync(path.join(dir, 'timeline-ctl-before-commit.png'), svgToPng(await renderSvg(timelineChartSpec(lossy))));
    const results = [lossy, clean];
    const rows = results.map((r) => csvRow(r, 'quick'));
    writeFileSync(path.join(dir, 'results.csv'), toCsv(Object.keys(rows[0]!), rows));
    // The second case's timeline is listed but not there: the probe must report it as not loaded.
    const page = chaosPage({ profile: 'quick', passed: false, results, rows, facts: [['git commit', 'abc123']], files: ['results.csv', 'timeline-ctl-before-commit.png', 'timeline-eo-offset-b1000.png'] });
    writeFileSync(path.join(dir, 'index.html'), renderHtmlReport(page));
    const opened = openInChromium(binary, path.join(dir, 'index.html'));
    const shown = text(opened.dom);
    assert.match(shown, /FAIL: 1 of 2 case\(s\) not as expected/);
    assert.match(shown, /PASS ctl-before-commit: expected never-counted, got invalid: detected 100 lost/);
    assert.match(shown, /FAIL eo-offset-b1000: expected valid/);
    assert.equal((opened.dom.match(/<tr class="bad">/g) ?? []).length, 1, 'the failed case is marked');
    const widths = Object.fromEntries(opened.images.map((i) => [i.src, i.width]));
    assert.ok(widths['timeline-ctl-before-commit.png']! > 100, 'the timeline loaded');
    assert.equal(widths['timeline-eo-offset-b1000.png'], 0, 'a missing image is seen as missing (the probe can fail)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tableFromRows leaves out columns empty in every row and escapes cells', () => {
  const t = tableFromRows('c', [{ a: 1234.5, b: undefined, c: '<x>' }], [['a', 'A'], ['b', 'B'], ['c', 'C']], () => 'neutral');
  assert.deepEqual(t.columns, ['A', 'C']);
  assert.deepEqual(t.rows[0]!.cells, ['1,235', '<x>']);
  const html = renderHtmlReport({ title: 't', outcome: { ok: true, text: 'ok' }, verdicts: [], tables: [t], charts: [], facts: [], files: [] });
  assert.match(html, /&lt;x&gt;/);
  assert.throws(() => renderHtmlReport({ title: 't', outcome: { ok: true, text: 'ok' }, verdicts: [], tables: [], charts: [{ file: '../x.png', caption: '' }], facts: [], files: [] }), /not a file name in the run folder/);
});

test('bench page: a point that could not be checked keeps the outcome from reading as a pass', () => {
  const rows = [...BENCH_ROWS, { point: 'drain offset batch 10 SERIALIZABLE', kind: 'drain', batch_size: 10, ack_mode: 'transactional', verdict: 'unknown', note: 'worker did not stop' }];
  const page = benchPage({
    rows, medians: false, sweep: profileOptions('standard'), startedAt: new Date(0), finishedAt: new Date(1000), interrupted: false,
    database: { db_version: 'x', db_flush_log_at_trx_commit: 1 }, gitCommit: undefined, files: [],
  });
  assert.equal(page.outcome.ok, false);
  assert.match(page.outcome.text, /but 1 could not be checked \(verdict unknown\)/);
  assert.ok(page.verdicts.some((v) => !v.ok && v.text.startsWith('not checked: drain offset batch 10 SERIALIZABLE')));
});
