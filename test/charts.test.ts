// The charts and the CSV reader on literal fixtures (test/fixtures/chartFixtures.ts): what each chart must
// show so a person reads it without the CSV (the rendered SVG is searched for it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TopLevelSpec } from 'vega-lite';
import { drainChartSpec, drainChartsSpec, endToEndChartSpec, lineSegments, renderSvg, svgToPng, SQL_CEILING_SERIES } from '../src/bench/chart.ts';
import { chartRules, drainChartData, endToEndChartData } from '../src/bench/report.ts';
import { parseCsv, toCsv } from '../src/bench/csv.ts';
import { phaseBands, timelineChartSpec } from '../src/scenarios/chaos/timelineChart.ts';
import { BENCH_ROWS, lossyChaosCase } from './fixtures/chartFixtures.ts';

interface Layer {
  data?: { values: Record<string, unknown>[] };
  mark: string | { type: string };
  encoding?: Record<string, { field?: string; scale?: { domain?: unknown[] }; axis?: { values?: number[] } }>;
}
const layers = (spec: TopLevelSpec) => (spec as unknown as { layer: Layer[] }).layer;
const markType = (l: Layer) => (typeof l.mark === 'string' ? l.mark : l.mark.type);

async function look(spec: TopLevelSpec, _name: string): Promise<string> {
  const svg = await renderSvg(spec);
  assert.ok(svgToPng(svg).length > 1000, 'renders to a PNG');
  return svg;
}

test('drain chart: msgs/s series only, measured points marked, no line across an unmeasured batch, flags, tight x axis', async () => {
  const rules = chartRules(BENCH_ROWS, 154);
  assert.deepEqual(rules.drain.map((r) => r.label), ['published baseline 154 msg/s'], 'no req/s rule on the msgs/s axis');
  const { points, ceiling } = drainChartData(BENCH_ROWS);
  const spec = drainChartSpec(points, ceiling, rules.drain);
  const line = layers(spec).find((l) => markType(l) === 'line')!;
  const marks = layers(spec).find((l) => markType(l) === 'point')!;
  assert.equal(line.encoding!.detail!.field, 'segment', 'lines are drawn per segment');
  const watermill = line.data!.values.filter((v) => String(v.series).includes('watermill'));
  assert.equal(new Set(watermill.map((v) => v.segment)).size, 2, 'watermill (1 and 100, not 10) is two segments: no line over batch 10');
  const flagged = (s: string) => marks.data!.values.filter((v) => String(v.status).startsWith(s)).map((v) => `${v.series} ${v.batch_size}`);
  assert.deepEqual(flagged('not drained'), ['offset SERIALIZABLE batched 5000']);
  assert.deepEqual(flagged('NOT valid'), ['offset READ COMMITTED batched before-commit 100']);
  assert.ok(marks.data!.values.some((v) => v.series === SQL_CEILING_SERIES), 'the SQL ceiling is drawn');
  const x = marks.encoding!.x!;
  assert.deepEqual(x.axis!.values, [1, 10, 100, 1000, 5000], 'a tick at each batch measured');
  const [lo, hi] = x.scale!.domain as number[];
  assert.ok(lo! > 0.5 && hi! < 10_000, `x axis ends near the largest batch measured (5,000), not at ${hi}`);
  const svg = await look(spec, 'drain');
  assert.doesNotMatch(svg, /HTTP ceiling/);
  assert.match(svg, /not drained in time/);
});

test('drain chart of two engines: a panel each, its own colours, its ceiling black and dashed, the same axes', async () => {
  const rules = chartRules(BENCH_ROWS, 154);
  const mariadb = drainChartData(BENCH_ROWS);
  const slower = (p: (typeof mariadb.points)[number]) => ({ ...p, drain_msgs_per_s: p.drain_msgs_per_s / 3 });
  const postgres = { points: mariadb.points.map(slower), ceiling: mariadb.ceiling.map(slower) };
  const spec = drainChartsSpec([{ engine: 'mariadb', ...mariadb }, { engine: 'postgres', ...postgres }], rules.drain);
  assert.deepEqual(drainChartsSpec([{ engine: 'mariadb', ...mariadb }], rules.drain), drainChartSpec(mariadb.points, mariadb.ceiling, rules.drain), 'one engine: the one-panel chart');
  const panels = (spec as unknown as { vconcat: { title: { text: string }; layer: Layer[] }[] }).vconcat;
  assert.deepEqual(panels.map((p) => p.title.text), ['mariadb', 'postgres']);
  const domains = panels.map((panel) => {
    const marks = panel.layer.find((l) => markType(l) === 'point')!;
    const color = marks.encoding!.color as unknown as { scale: { domain: string[]; range: string[] } };
    assert.equal(color.scale.domain.at(-1), SQL_CEILING_SERIES, "the ceiling is the legend's last entry");
    assert.equal(color.scale.range.at(-1), '#000000', 'and black');
    assert.equal(new Set(color.scale.range).size, color.scale.range.length, `no colour stands for two series in one panel: ${color.scale.range.join(' ')}`);
    assert.ok(marks.data!.values.some((v) => v.series === SQL_CEILING_SERIES), 'each panel draws its ceiling');
    return { x: marks.encoding!.x!.scale!.domain, y: marks.encoding!.y!.scale!.domain, ticks: marks.encoding!.x!.axis!.values };
  });
  assert.deepEqual(domains[0], domains[1], 'both panels have the same axes');
  const svg = await look(spec, 'drain-engines');
  assert.match(svg, /postgres/);
});

test('lineSegments: consecutive grid batch sizes share a segment, a skipped one starts a new segment', () => {
  const p = (series: string, batch_size: number) => ({ series, batch_size, drain_msgs_per_s: 1, drained: true, valid: true });
  const segs = lineSegments([p('a', 1), p('a', 10), p('a', 1000), p('b', 100), p('b', 1), p('b', 10)]);
  assert.deepEqual(segs.map((s) => `${s.series}${s.batch_size}:${s.segment}`), ['a1:a #0', 'a10:a #0', 'a1000:a #1', 'b1:b #0', 'b10:b #0', 'b100:b #0']);
});

test('end-to-end chart: human legend names, full row labels, latency and lag, no empty band', async () => {
  const rules = chartRules(BENCH_ROWS, 154);
  assert.deepEqual(rules.endToEnd.map((r) => r.label), ['HTTP ceiling 36,863 req/s']);
  const data = endToEndChartData(BENCH_ROWS);
  assert.deepEqual(data.map((d) => d.point), [
    'offset batch 1000 READ COMMITTED coalesce', 'offset batch 1000 READ COMMITTED no-coalesce', 'queue x1 batch 1000 coalesce', 'queue x1 batch 1000 no-coalesce',
  ]);
  const spec = endToEndChartSpec(data, rules.endToEnd);
  const svg = await look(spec, 'end-to-end');
  for (const text of ['published (HTTP 2xx req/s)', 'drained (msgs/s)', 'request latency p99', 'lag p99 (publish to ack)', 'offset batch 1000 READ COMMITTED no-coalesce', 'milliseconds']) {
    assert.ok(svg.includes(text), `the chart shows "${text}"`);
  }
  assert.doesNotMatch(svg, /publish_req_per_s|drain_msgs_per_s|…/, 'no raw column names, no cut labels');
  const resolve = (spec as unknown as { resolve: { scale: Record<string, string> } }).resolve.scale;
  assert.equal(resolve.yOffset, 'independent', 'each panel has bands only for its own bars (a shared one left an empty third)');
});

test('chaos timeline: counter total beside the acked messages, phases and faults marked', async () => {
  const r = lossyChaosCase();
  const spec = timelineChartSpec(r);
  const series = new Set(layers(spec).flatMap((l) => (l.data?.values ?? []).map((v) => v.series)).filter((s) => s !== undefined));
  assert.ok(series.has('counter total (effects applied; red dots: readings)') && series.has('messages acked (= the expected counter total)'), [...series].join(', '));
  const last = r.timeline[r.timeline.length - 1]!;
  assert.equal(last.acked - last.counterTotal!, 100, 'the fixture loses 100: the chart data carries the gap');
  assert.deepEqual(phaseBands(r).map((b) => b.phase), ['warm-up', 'load + faults', 'recovery', 'drain']);
  assert.deepEqual(phaseBands(r)[2], { phase: 'recovery', start_s: 11, end_s: 11.4 }, 'heal and ready are one band');
  const svg = await look(spec, 'timeline-ctl-before-commit');
  for (const text of ['counter total 950', 'lost 100', 'worker-kill', 'load + faults', 'drain']) assert.ok(svg.includes(text), `the chart shows "${text}"`);
});

test('parseCsv reads back what toCsv wrote', () => {
  const rows = [{ point: 'a, "quoted"', n: 1.5, ok: true, empty: undefined, note: 'two\nlines' }, { point: 'b', n: -2, ok: false, empty: undefined, note: '10.11.19-MariaDB' }];
  assert.deepEqual(parseCsv(toCsv(['point', 'n', 'ok', 'empty', 'note'], rows)), rows);
});
