// The upload and download throughput over time (GET /api/v1/metrics/history), drawn by uPlot
// on a canvas. The chart is made once per theme and size; new points only replace its data,
// so the 10-second refresh does not flicker or move the page.

import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { HistoryPoint } from '../api/types';
import { useThemeName } from '../app/theme';
import { formatBytes, formatRate } from '../lib/format';

const kHeight = 220;

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function toData(points: HistoryPoint[], windowS: number): uPlot.AlignedData {
  if (points.length === 0) {
    const now = Math.floor(Date.now() / 1000);
    return [[now - windowS, now], [null, null], [null, null]] as unknown as uPlot.AlignedData;
  }
  return [
    points.map((p) => Math.floor(Date.parse(p.time) / 1000)),
    points.map((p) => p.upload_bytes_per_s),
    points.map((p) => p.download_bytes_per_s),
  ];
}

function clock(unixS: number, seconds: boolean): string {
  const d = new Date(unixS * 1000);
  const pad = (n: number) => (n < 10 ? `0${n}` : String(n));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? ':' + pad(d.getSeconds()) : ''}`;
}

function shortRate(v: number): string {
  if (v === 0) return '0';
  return formatBytes(v).replace(' ', '\u202f') + '/s';
}

export function ThroughputChart({ points, windowS }: { points: HistoryPoint[]; windowS: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useThemeName();
  const latest = useRef({ points, windowS });
  latest.current = { points, windowS };

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
        x: { time: true },
        y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1024) * 1.1] },
      },
      series: [
        {},
        {
          label: 'Upload',
          stroke: up,
          width: 2,
          fill: up + '22',
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? '—' : formatRate(v)),
        },
        {
          label: 'Download',
          stroke: down,
          width: 2,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? '—' : formatRate(v)),
        },
      ],
      axes: [
        {
          stroke: text,
          space: 70,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          // Local HH:MM on every tick (uPlot's default adds dates that crowd a narrow chart).
          values: (_u, splits) => {
            const step = splits.length > 1 ? splits[1]! - splits[0]! : 60;
            return splits.map((t) => clock(t, step < 60));
          },
        },
        {
          stroke: text,
          size: 78,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: (_u, splits) => splits.map(shortRate),
        },
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    };
    const u = new uPlot(opts, toData(latest.current.points, latest.current.windowS), el);
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

  useEffect(() => {
    plot.current?.setData(toData(points, windowS));
  }, [points, windowS]);

  return (
    <div class="chart-wrap">
      <div class="chart" ref={box} role="img" aria-label="Throughput chart" />
      {points.length === 0 ? (
        <p class="chart-empty">No throughput recorded yet: the box keeps it in memory since it started.</p>
      ) : null}
    </div>
  );
}
