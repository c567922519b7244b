// Charts of a bench run: Vega-Lite specs (pure, testable) rendered to SVG with vega, and to PNG with resvg.
// Each chart is meant to be read without the CSV: human names in legends, measured points marked, the
// status of each point (drained, valid) visible, and axes that end where the data ends.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';

export interface DrainPoint {
  /** The line this point belongs to, e.g. "offset SERIALIZABLE batched". */
  series: string;
  batch_size: number;
  drain_msgs_per_s: number;
  /** The backlog was drained within the time limit; when false the rate is over the part that was. */
  drained: boolean;
  /** The counter check passed (false: lost or duplicated messages). */
  valid: boolean;
}

export interface Reference {
  label: string;
  value: number;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
export const SQL_CEILING_SERIES = 'SQL ceiling (raw consume loop)';
const STATUS = ['drained, valid', 'not drained in time (rate of the part drained)', 'NOT valid (lost or duplicated)'] as const;
// Colours for the configurations; the SQL ceiling is always black and dashed.
const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#9d755d', '#eeca3b', '#ff9da6', '#bab0ac'];

function status(p: DrainPoint): (typeof STATUS)[number] {
  if (!p.valid) return STATUS[2];
  return p.drained ? STATUS[0] : STATUS[1];
}

/**
 * Splits each series into runs of consecutive batch sizes of the run's grid, so a line never joins two points
 * across a batch size that series did not measure (that would draw a value nobody measured).
 */
export function lineSegments(points: readonly DrainPoint[]): (DrainPoint & { segment: string })[] {
  const grid = [...new Set(points.map((p) => p.batch_size))].sort((a, b) => a - b);
  const bySeries = new Map<string, DrainPoint[]>();
  for (const p of points) bySeries.set(p.series, [...(bySeries.get(p.series) ?? []), p]);
  const out: (DrainPoint & { segment: string })[] = [];
  for (const [series, list] of bySeries) {
    let segment = 0;
    let previous: number | undefined;
    for (const p of [...list].sort((a, b) => a.batch_size - b.batch_size)) {
      const index = grid.indexOf(p.batch_size);
      if (previous !== undefined && index !== previous + 1) segment += 1;
      previous = index;
      out.push({ ...p, segment: `${series} #${segment}` });
    }
  }
  return out;
}

/**
 * Drain msgs/s against batch size (both log scales: the grid spans 1..5000 and the rates three decades).
 * One colour per configuration with its measured points marked (shape = drained / not drained / NOT valid);
 * the raw-SQL loop per batch size in black, dashed; `rules` (msgs/s references only, e.g. the published
 * 154 msg/s) as labelled horizontal rules. The x axis runs from the smallest to the largest batch measured,
 * with a tick at each. With `sharedAxes` (every panel's points, drainChartsSpec) both axes span those instead, so
 * panels drawn side by side have the same axes.
 */
export function drainChartSpec(points: readonly DrainPoint[], ceilingLine: readonly DrainPoint[], rules: readonly Reference[], sharedAxes?: readonly DrainPoint[]): TopLevelSpec {
  const all = [...points, ...ceilingLine.map((p) => ({ ...p, series: SQL_CEILING_SERIES }))];
  // Flagged points last, so they are drawn on top of a line or marker at the same place.
  const values = lineSegments(all)
    .map((p) => ({ ...p, status: status(p), line: p.series === SQL_CEILING_SERIES ? 'SQL ceiling' : 'configuration' }))
    .sort((a, b) => STATUS.indexOf(a.status) - STATUS.indexOf(b.status));
  const batches = [...new Set((sharedAxes ?? all).map((p) => p.batch_size))].sort((a, b) => a - b);
  const lo = batches[0] ?? 1;
  const hi = batches[batches.length - 1] ?? 1;
  // A little room either side (a fifth of a decade) so the edge markers are not cut in half.
  const domain = [lo / 1.6, hi * 1.6];
  const series = [...new Set(points.map((p) => p.series))];
  const x = {
    field: 'batch_size',
    type: 'quantitative',
    scale: { type: 'log', domain, nice: false },
    axis: { values: batches, format: ',d', grid: false },
    title: 'batch size (messages per transaction)',
  } as const;
  const y = { field: 'drain_msgs_per_s', type: 'quantitative', scale: sharedAxes === undefined ? { type: 'log' } : { type: 'log', domain: rateDomain(sharedAxes, rules), nice: false }, title: 'drain (msgs/s)' } as const;
  const color = {
    field: 'series',
    type: 'nominal',
    title: 'configuration',
    scale: { domain: [...series, SQL_CEILING_SERIES], range: [...series.map((_, i) => PALETTE[i % PALETTE.length]!), '#000000'] },
    legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' },
  } as const;
  return {
    $schema: SCHEMA,
    title: { text: 'Drain rate against batch size', subtitle: 'a backlog published beforehand, then drained; each marker is a measured point' },
    width: 560,
    height: 340,
    layer: [
      {
        data: { values: rules.map((r) => ({ ...r })) },
        mark: { type: 'rule', strokeDash: [2, 2], color: 'gray' },
        encoding: { y: { field: 'value', type: 'quantitative' } },
      },
      {
        data: { values: rules.map((r) => ({ ...r })) },
        mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: 'gray' },
        encoding: { y: { field: 'value', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label', type: 'nominal' } },
      },
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x,
          y,
          color,
          detail: { field: 'segment', type: 'nominal' },
          strokeDash: { field: 'line', type: 'nominal', scale: { domain: ['configuration', 'SQL ceiling'], range: [[1, 0], [6, 3]] }, legend: null },
        },
      },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 80, opacity: 1 },
        encoding: {
          x,
          y,
          color,
          size: { field: 'status', type: 'ordinal', title: 'point', scale: { domain: [...STATUS], range: [80, 150, 220] }, legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' } },
          shape: { field: 'status', type: 'nominal', title: 'point', scale: { domain: [...STATUS], range: ['circle', 'triangle-down', 'cross'] }, legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' } },
        },
      },
    ],
  } as TopLevelSpec;
}

/** A log-scale rate axis over `points` and the rules, with the same room either side as the batch axis. */
function rateDomain(points: readonly DrainPoint[], rules: readonly Reference[]): [number, number] {
  const rates = points.map((p) => p.drain_msgs_per_s).filter((r) => r > 0);
  return [Math.min(...rates, ...rules.map((r) => r.value)) / 1.6, Math.max(...rates) * 1.6];
}

/** One engine's drain series and its own SQL ceiling, for drainChartsSpec. */
export interface EngineDrain {
  engine: string;
  points: readonly DrainPoint[];
  ceiling: readonly DrainPoint[];
}

/**
 * The drain chart of a run: one engine, drainChartSpec; several, one panel each, stacked, with the same axes.
 * In one panel the engines' configurations would share the ten colours (an ENGINE=all run has 14 series) and
 * each engine's ceiling would need a colour of its own, so the black dashed line could not be "the" ceiling.
 */
export function drainChartsSpec(engines: readonly EngineDrain[], rules: readonly Reference[]): TopLevelSpec {
  const [only] = engines;
  if (engines.length === 1 && only !== undefined) return drainChartSpec(only.points, only.ceiling, rules);
  const all = engines.flatMap((e) => [...e.points, ...e.ceiling]);
  const panels = engines.map((e) => {
    const { $schema: _schema, title: _title, ...panel } = drainChartSpec(e.points, e.ceiling, rules, all) as unknown as Record<string, unknown>;
    return { ...panel, title: { text: e.engine, anchor: 'start' } };
  });
  return {
    $schema: SCHEMA,
    title: { text: 'Drain rate against batch size', subtitle: 'a backlog published beforehand, then drained; each marker is a measured point; one panel per engine, same axes' },
    vconcat: panels,
    // Each panel its own colours and legend (the same configuration names recur with other figures).
    resolve: { scale: { color: 'independent', size: 'independent', shape: 'independent' }, legend: { color: 'independent', size: 'independent', shape: 'independent' } },
    config: { concat: { spacing: 40 } },
  } as unknown as TopLevelSpec;
}

/** One end-to-end point: its rates, request latency and lag (ms), any of which may be missing. */
export interface EndToEndPoint {
  point: string;
  publish_req_per_s?: number | undefined;
  drain_msgs_per_s?: number | undefined;
  latency_p50_ms?: number | undefined;
  latency_p99_ms?: number | undefined;
  lag_p50_ms?: number | undefined;
  lag_p99_ms?: number | undefined;
  valid: boolean;
}

const RATE_NAMES: [keyof EndToEndPoint, string][] = [
  ['publish_req_per_s', 'published (HTTP 2xx req/s)'],
  ['drain_msgs_per_s', 'drained (msgs/s)'],
];
const TIME_NAMES: [keyof EndToEndPoint, string][] = [
  ['latency_p50_ms', 'request latency p50'],
  ['latency_p99_ms', 'request latency p99'],
  ['lag_p50_ms', 'lag p50 (publish to ack)'],
  ['lag_p99_ms', 'lag p99 (publish to ack)'],
];

/**
 * End to end, one row per point: on the left the publish and drain rates side by side with the HTTP ceiling
 * as a rule; on the right the request latency and the lag (p50 and p99, ms). A NOT valid point says so in
 * its row label.
 */
export function endToEndChartSpec(points: readonly EndToEndPoint[], rules: readonly Reference[]): TopLevelSpec {
  const label = (p: EndToEndPoint) => `${p.point}${p.valid ? '' : ' (NOT valid)'}`;
  const order = points.map(label);
  const fold = (names: [keyof EndToEndPoint, string][]) =>
    points.flatMap((p) =>
      names.flatMap(([key, name]) => {
        const v = p[key];
        return typeof v === 'number' && Number.isFinite(v) ? [{ point: label(p), metric: name, value: v }] : [];
      }),
    );
  // Both panels share the rows: the same height per point, whatever the number of bars in it.
  const height = Math.max(1, points.length) * 84;
  const y = (labels: boolean) => ({ field: 'point', type: 'nominal', title: null, sort: order, scale: { paddingInner: 0.25, paddingOuter: 0.1 }, axis: labels ? { labelLimit: 0 } : { labels: false, ticks: false } });
  const yOffset = (names: [keyof EndToEndPoint, string][]) => ({ field: 'metric', type: 'nominal', sort: names.map(([, n]) => n) });
  return {
    $schema: SCHEMA,
    title: { text: 'End to end: published over HTTP and drained at the same time', anchor: 'start' },
    spacing: 24,
    hconcat: [
      {
        width: 360,
        height,
        layer: [
          {
            data: { values: fold(RATE_NAMES) },
            mark: 'bar',
            encoding: {
              y: y(true),
              yOffset: yOffset(RATE_NAMES),
              x: { field: 'value', type: 'quantitative', title: ['per second', ...rules.map((r) => `dotted line: ${r.label}`)] },
              color: { field: 'metric', type: 'nominal', title: 'rate', sort: RATE_NAMES.map(([, n]) => n), scale: { range: ['#4c78a8', '#72b7b2'] }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 } },
            },
          },
          {
            data: { values: fold(RATE_NAMES) },
            mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 },
            encoding: { y: y(true), yOffset: yOffset(RATE_NAMES), x: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.0f' } },
          },
          {
            data: { values: rules.map((r) => ({ ...r })) },
            mark: { type: 'rule', strokeDash: [3, 3], color: 'black' },
            encoding: { x: { field: 'value', type: 'quantitative' } },
          },
        ],
      },
      {
        width: 300,
        height,
        layer: [
          {
            data: { values: fold(TIME_NAMES) },
            mark: 'bar',
            encoding: {
              y: y(false),
              yOffset: yOffset(TIME_NAMES),
              x: { field: 'value', type: 'quantitative', title: 'milliseconds' },
              color: { field: 'metric', type: 'nominal', title: 'time', sort: TIME_NAMES.map(([, n]) => n), scale: { range: ['#f2cf5b', '#f58518', '#bab0ac', '#79706e'] }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 } },
            },
          },
          {
            data: { values: fold(TIME_NAMES) },
            mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 },
            encoding: { y: y(false), yOffset: yOffset(TIME_NAMES), x: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.0f' } },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'independent', yOffset: 'independent' }, legend: { color: 'independent' } },
  } as TopLevelSpec;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string): Buffer {
  const resvg = new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true } });
  return resvg.render().asPng();
}
