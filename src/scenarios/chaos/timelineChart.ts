// The timeline chart of one chaos case: what the client was told, what was published, acked and applied,
// over the case's phases and faults, so a reader sees a control's lost or duplicated messages (the applied
// total leaving the acked line) and when each fault hit, without opening the CSV.
import type { TopLevelSpec } from 'vega-lite';
import type { CaseResult } from './caseResult.ts';
import type { CasePhase } from './phases.ts';

/** The phases a reader cares about, under the names docs/chaos.md uses; the others are too short to draw. */
const SHOWN_PHASES: Partial<Record<CasePhase, string>> = {
  warmup: 'warm-up',
  load: 'load + faults',
  heal: 'recovery',
  ready: 'recovery',
  quiesce: 'drain',
};

const SERIES = [
  'requests answered ok (cumulative)',
  'messages published',
  'messages acked (= the expected counter total)',
  'counter total (effects applied; red dots: readings)',
] as const;

/** Phase bands on the case clock (heal and ready merged into one "recovery" band). */
export function phaseBands(r: CaseResult): { phase: string; start_s: number; end_s: number }[] {
  const bands: { phase: string; start_s: number; end_s: number }[] = [];
  for (const p of r.phases) {
    const name = SHOWN_PHASES[p.phase];
    if (name === undefined) continue;
    const last = bands[bands.length - 1];
    if (last !== undefined && last.phase === name) last.end_s = p.endMs / 1000;
    else bands.push({ phase: name, start_s: p.startMs / 1000, end_s: p.endMs / 1000 });
  }
  return bands;
}

export function timelineChartSpec(r: CaseResult): TopLevelSpec {
  const points = r.timeline.flatMap((s) => {
    const t_s = s.tMs / 1000;
    const rows = [
      { t_s, series: SERIES[0], count: s.requestsOk },
      { t_s, series: SERIES[1], count: s.published },
      { t_s, series: SERIES[2], count: s.acked },
    ];
    return s.counterTotal === undefined ? rows : [...rows, { t_s, series: SERIES[3], count: s.counterTotal }];
  });
  const bands = phaseBands(r);
  const faults = r.faults.map((f) => ({
    start_s: f.startMs / 1000,
    heal_s: Math.max(f.healStartMs, f.startMs) / 1000,
    fault: f.fault,
    recovery_ms: f.recoveryMs ?? -1,
    detail: f.detail,
  }));
  const end = Math.max(0, ...r.timeline.map((s) => s.tMs / 1000), ...bands.map((b) => b.end_s));
  // The axis starts at the warm-up: set-up (a fresh database, 2-7 s) has no samples to show.
  const start = Math.min(end, ...bands.map((b) => b.start_s), ...r.timeline.map((s) => s.tMs / 1000));
  const v = r.verdict;
  const subtitle =
    v === undefined
      ? `no verdict: ${r.why}`
      : `at the end: counter total ${v.total.toLocaleString('en-US')}, messages acked ${v.messages.acked.toLocaleString('en-US')}; ` +
        `lost ${v.lost}, duplicated ${v.duplicated}; verdict ${v.verdict}, expected ${r.expected}: ${r.passed ? 'PASS' : 'FAIL'}`;
  const x = { field: 't_s', type: 'quantitative', title: 'time since the case started (s)', scale: { domain: [start, end], nice: false } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `${r.case.name}: requests, messages and counter total over time`, subtitle, anchor: 'start' },
    width: 680,
    height: 320,
    layer: [
      {
        data: { values: bands },
        mark: { type: 'rect', opacity: 0.35 },
        encoding: {
          x: { field: 'start_s', type: 'quantitative', scale: { domain: [start, end], nice: false } },
          x2: { field: 'end_s' },
          fill: {
            field: 'phase',
            type: 'nominal',
            title: 'phase',
            scale: { domain: ['warm-up', 'load + faults', 'recovery', 'drain'], range: ['#e8e8e8', '#fff3cd', '#d4edda', '#d6e4f0'] },
            legend: { orient: 'bottom', direction: 'vertical' },
          },
        },
      },
      {
        // Labels only on bands wide enough to hold one; the legend names them all.
        data: { values: bands.filter((b) => b.end_s - b.start_s >= end * 0.1) },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, y: 0, fontSize: 10, color: '#555' },
        encoding: { x: { field: 'start_s', type: 'quantitative' }, text: { field: 'phase', type: 'nominal' } },
      },
      {
        data: { values: faults },
        mark: { type: 'rect', opacity: 0.25, color: '#d62728' },
        encoding: { x: { field: 'start_s', type: 'quantitative' }, x2: { field: 'heal_s' } },
      },
      {
        data: { values: faults },
        mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: {
          x: { field: 'start_s', type: 'quantitative' },
          stroke: {
            field: 'fault',
            type: 'nominal',
            title: 'fault injected (shaded red until healed)',
            scale: { range: ['#8c564b', '#9467bd', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#ff7f0e', '#000000'] },
            legend: { orient: 'bottom', direction: 'vertical', titleLimit: 0 },
          },
          tooltip: [{ field: 'fault' }, { field: 'detail' }, { field: 'recovery_ms' }],
        },
      },
      {
        data: { values: points.filter((p) => p.series !== SERIES[3]) },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x,
          y: { field: 'count', type: 'quantitative', title: 'requests / messages / counter total' },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { domain: [...SERIES], range: ['#9e9e9e', '#1f77b4', '#2ca02c', '#d62728'] },
            legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 },
          },
          // The legend names all four series; the counter total is drawn by the next layer.
          strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: [...SERIES], range: [[1, 0], [1, 0], [1, 0], [2, 3]] }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 } },
          strokeWidth: { value: 2 },
        },
      },
      {
        // The counter total, drawn last as one dot per reading: equal to the acked messages, each dot sits on the
        // green line; lost or duplicated effects put the dots below or above it. It is read less often than the
        // drain position (runCase.ts) and not at all while the database is down, so no line joins the dots: a
        // step or a straight line between readings would draw a gap that is only the sampling.
        data: { values: points.filter((p) => p.series === SERIES[3]) },
        mark: { type: 'point', filled: true, size: 36, color: '#d62728', opacity: 1 },
        encoding: { x, y: { field: 'count', type: 'quantitative' } },
      },
    ],
    resolve: { scale: { color: 'independent', fill: 'independent', stroke: 'independent', strokeDash: 'independent' } },
  } as TopLevelSpec;
}
