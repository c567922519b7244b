// Charts of a bench run: Vega-Lite specs (pure, testable) rendered to SVG with vega, and to PNG with resvg.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';

export interface DrainPoint {
  /** The line this point belongs to, e.g. "offset SERIALIZABLE batched". */
  series: string;
  batch_size: number;
  drain_msgs_per_s: number;
}

export interface Reference {
  label: string;
  value: number;
}

/**
 * Drain msgs/s against batch size (both log scales: the grid spans 1..5000 and the rates three decades), one
 * line per series; `ceilingLine` (the raw-SQL loop per batch size) as a dashed line; `rules` (the published
 * 154 msg/s, the HTTP ceiling) as labelled horizontal rules.
 */
export function drainChartSpec(points: readonly DrainPoint[], ceilingLine: readonly DrainPoint[], rules: readonly Reference[]): TopLevelSpec {
  const x = { field: 'batch_size', type: 'quantitative', scale: { type: 'log' }, title: 'batch size (messages)' } as const;
  const y = { field: 'drain_msgs_per_s', type: 'quantitative', scale: { type: 'log' }, title: 'drain (msgs/s)' } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Drain rate against batch size',
    width: 560,
    height: 340,
    layer: [
      {
        data: { values: points.map((p) => ({ ...p })) },
        mark: { type: 'line', point: true },
        encoding: { x, y, color: { field: 'series', type: 'nominal', title: 'configuration', legend: { labelLimit: 400 } } },
      },
      {
        data: { values: ceilingLine.map((p) => ({ ...p })) },
        mark: { type: 'line', strokeDash: [6, 3], color: 'black', point: true },
        encoding: { x, y },
      },
      {
        data: { values: rules.map((r) => ({ ...r })) },
        mark: { type: 'rule', strokeDash: [2, 2], color: 'gray' },
        encoding: { y: { field: 'value', type: 'quantitative' } },
      },
      {
        data: { values: [...rules.map((r) => ({ ...r })), ...ceilingTextRow(ceilingLine)] },
        mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: 'gray' },
        encoding: {
          y: { field: 'value', type: 'quantitative' },
          x: { value: 0 },
          text: { field: 'label', type: 'nominal' },
        },
      },
    ],
  } as TopLevelSpec;
}

function ceilingTextRow(ceilingLine: readonly DrainPoint[]): Reference[] {
  const top = [...ceilingLine].sort((a, b) => b.drain_msgs_per_s - a.drain_msgs_per_s)[0];
  return top === undefined ? [] : [{ label: 'SQL ceiling (raw consume loop, dashed)', value: top.drain_msgs_per_s }];
}

export interface EndToEndBar {
  point: string;
  metric: 'publish_req_per_s' | 'drain_msgs_per_s';
  value: number;
}

/** End-to-end publish and drain rates per point, side by side, with the HTTP ceiling as a rule. */
export function endToEndChartSpec(bars: readonly EndToEndBar[], rules: readonly Reference[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'End to end: published over HTTP and drained at the same time',
    width: 560,
    height: 300,
    layer: [
      {
        data: { values: bars.map((b) => ({ ...b })) },
        mark: 'bar',
        encoding: {
          y: { field: 'point', type: 'nominal', title: null, axis: { labelLimit: 400 } },
          x: { field: 'value', type: 'quantitative', title: 'per second' },
          yOffset: { field: 'metric' },
          color: { field: 'metric', type: 'nominal', title: 'rate' },
        },
      },
      {
        data: { values: rules.map((r) => ({ ...r })) },
        mark: { type: 'rule', strokeDash: [2, 2], color: 'gray' },
        encoding: { x: { field: 'value', type: 'quantitative' } },
      },
      {
        data: { values: rules.map((r) => ({ ...r })) },
        mark: { type: 'text', align: 'right', dx: -4, color: 'gray' },
        encoding: { x: { field: 'value', type: 'quantitative' }, y: { value: 8 }, text: { field: 'label', type: 'nominal' } },
      },
    ],
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
