// The upload and download throughput over time (GET /api/v1/metrics/history), drawn by uPlot
// on a canvas. The chart is made once per theme; new points only replace its data, so the
// 10-second refresh does not flicker or move the page. The x axis is always the whole window
// (lib/chart.ts): from `windowS` before `nowS` to `nowS`, with HH:MM ticks, even with no point.

import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { HistoryPoint } from '../api/types';
import { useThemeName } from '../app/theme';
import { chartColumns, clockLabel, localOffsetS, timeTicks, windowRange } from '../lib/chart';
import { formatBytes, formatRate } from '../lib/format';

const kHeight = 220;
const kYAxisPx = 78;
// Fewer points than this in view are drawn as dots too: a line needs two points.
const kDotsBelow = 40;

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function shortRate(v: number): string {
  if (v === 0) return '0';
  return formatBytes(v).replace(' ', '\u202f') + '/s';
}

export function ThroughputChart({
  points,
  windowS,
  nowS,
}: {
  points: HistoryPoint[];
  windowS: number;
  nowS: number; // the box's clock now (unix seconds): the window's right edge
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useThemeName();
  const range = windowRange(nowS, windowS, points);
  // uPlot asks for the x range whenever it redraws: it is always the window of the last data.
  const rangeRef = useRef(range);
  rangeRef.current = range;
  const latest = useRef({ points, range });
  latest.current = { points, range };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const text = cssVar('--text-muted', '#5b6770');
    const grid = cssVar('--border', '#dde3e8');
    const up = cssVar('--chart-up', '#0f6f8a');
    const down = cssVar('--chart-down', '#b85c00');
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height: kHeight,
      scales: {
        x: { time: true, range: () => rangeRef.current },
        y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1024) * 1.1] },
      },
      series: [
        {},
        {
          label: 'Upload',
          stroke: up,
          width: 2,
          fill: up + '22',
          points: { show: (_u, _si, i0, i1) => i1 - i0 + 1 < kDotsBelow, size: 6 },
          value: (_u, v) => (v === null || v === undefined ? '—' : formatRate(v)),
        },
        {
          label: 'Download',
          stroke: down,
          width: 2,
          points: { show: (_u, _si, i0, i1) => i1 - i0 + 1 < kDotsBelow, size: 6 },
          value: (_u, v) => (v === null || v === undefined ? '—' : formatRate(v)),
        },
      ],
      axes: [
        {
          stroke: text,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          // Round local clock times, HH:MM (uPlot's own ticks add dates that crowd the axis).
          splits: (u, _axis, min, max) => timeTicks(min, max, u.width - kYAxisPx, localOffsetS(max)),
          values: (_u, splits) => splits.map((t) => clockLabel(t, localOffsetS(t))),
        },
        {
          stroke: text,
          size: kYAxisPx,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: (_u, splits) => splits.map(shortRate),
        },
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    };
    const u = new uPlot(opts, chartColumns(latest.current.points, latest.current.range) as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 200);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height: kHeight });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [theme]);

  const [min, max] = range;
  useEffect(() => {
    plot.current?.setData(chartColumns(latest.current.points, [min, max]) as uPlot.AlignedData);
  }, [points, min, max]);

  return (
    <div class="chart-wrap">
      <div class="chart" ref={box} role="img" aria-label="Throughput chart" />
      {points.length === 0 ? <p class="chart-empty">No data yet: the box samples every 10 s</p> : null}
    </div>
  );
}
