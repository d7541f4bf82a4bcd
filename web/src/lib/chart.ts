// The throughput chart's time axis, as pure functions (tested in chart.test.ts).
//
// The x axis always shows the whole window the user picked (the last hour or day, ending now),
// whatever the points: left to itself uPlot fits the axis to the data, so a box with one or two
// samples got an axis of years ("Jan 2027 … Jul 2029"). Ticks fall on round clock times of the
// browser's time zone (every 5 min, 10 min, 1 h, 3 h …) and read HH:MM.

import type { HistoryPoint } from '../api/types';

// Tick steps in seconds, smallest first; the first that keeps ticks `minSpacingPx` apart wins.
export const kTickStepsS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// The x range [min, max] in unix seconds: the `windowS` seconds that end now. `nowS` is the
// box's clock when known (the browser's may be off); a point newer than it moves the end to it,
// so the newest sample is never cut off.
export function windowRange(nowS: number, windowS: number, points: HistoryPoint[] = []): [number, number] {
  let end = nowS;
  for (const p of points) {
    const t = Date.parse(p.time) / 1000;
    if (Number.isFinite(t) && t > end) end = t;
  }
  end = Math.ceil(end);
  return [end - windowS, end];
}

// Tick positions (unix seconds) inside [min, max] on a round step of local time, at least
// `minSpacingPx` apart on a `widthPx` wide plot. `tzOffsetS` is the local time's offset from
// UTC (east positive: +3600 for UTC+1), so that hours fall on local hours, not UTC ones.
export function timeTicks(min: number, max: number, widthPx: number, tzOffsetS = 0, minSpacingPx = 70): number[] {
  if (!(max > min) || !(widthPx > 0)) return [];
  const span = max - min;
  const maxTicks = Math.max(2, Math.floor(widthPx / minSpacingPx));
  const step = kTickStepsS.find((s) => span / s <= maxTicks) ?? kTickStepsS[kTickStepsS.length - 1]!;
  const first = Math.ceil((min + tzOffsetS) / step) * step - tzOffsetS;
  const ticks: number[] = [];
  for (let t = first; t <= max; t += step) ticks.push(t);
  return ticks;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

// "HH:MM" of a unix time in the time zone `tzOffsetS` east of UTC.
export function clockLabel(unixS: number, tzOffsetS = 0): string {
  const d = new Date((unixS + tzOffsetS) * 1000);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

// The browser's offset from UTC at `unixS`, in seconds east (what timeTicks and clockLabel take).
export function localOffsetS(unixS: number): number {
  return -new Date(unixS * 1000).getTimezoneOffset() * 60;
}

// uPlot's columns [times, upload, download] for the points inside [min, max], oldest first.
// With no point inside, two empty samples at the window's ends: uPlot needs an x value, and
// nulls draw nothing.
export function chartColumns(
  points: HistoryPoint[],
  [min, max]: [number, number],
): [number[], Array<number | null>, Array<number | null>] {
  const inside = points
    .map((p) => ({ t: Math.floor(Date.parse(p.time) / 1000), p }))
    .filter(({ t }) => Number.isFinite(t) && t >= min && t <= max)
    .sort((a, b) => a.t - b.t);
  if (inside.length === 0) return [[min, max], [null, null], [null, null]];
  return [
    inside.map(({ t }) => t),
    inside.map(({ p }) => p.upload_bytes_per_s),
    inside.map(({ p }) => p.download_bytes_per_s),
  ];
}
