import { describe, expect, it } from 'vitest';
import type { HistoryPoint } from '../api/types';
import { chartColumns, clockLabel, timeTicks, windowRange } from './chart';

const now = Date.parse('2026-11-27T11:48:00Z') / 1000;

function point(iso: string, up = 1000, down = 0): HistoryPoint {
  return { time: iso, upload_bytes_per_s: up, download_bytes_per_s: down, pending_files: 0 };
}

describe('windowRange', () => {
  it('is the last hour or day ending now, with no points', () => {
    expect(windowRange(now, 3600)).toEqual([now - 3600, now]);
    expect(windowRange(now, 86400, [])).toEqual([now - 86400, now]);
  });

  it('stays the whole window with one point', () => {
    expect(windowRange(now, 3600, [point('2026-11-27T11:47:50Z')])).toEqual([now - 3600, now]);
  });

  it('moves the end to a point newer than now (the browser clock is behind)', () => {
    const later = Date.parse('2026-11-27T11:50:00Z') / 1000;
    expect(windowRange(now, 3600, [point('2026-11-27T11:50:00Z')])).toEqual([later - 3600, later]);
  });

  it('ignores unparseable times', () => {
    expect(windowRange(now, 3600, [point('not a time')])).toEqual([now - 3600, now]);
  });
});

describe('timeTicks', () => {
  it('puts hour-window ticks on round minutes, at most one per 70 px', () => {
    const [min, max] = windowRange(now, 3600);
    const ticks = timeTicks(min, max, 900);
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    expect(ticks.length).toBeLessThanOrEqual(Math.floor(900 / 70));
    const step = ticks[1]! - ticks[0]!;
    expect([300, 600]).toContain(step);
    for (const t of ticks) {
      expect(t % step).toBe(0);
      expect(t).toBeGreaterThanOrEqual(min);
      expect(t).toBeLessThanOrEqual(max);
    }
    expect(ticks.map((t) => clockLabel(t))).toContain('11:00');
  });

  it('uses whole hours over a day', () => {
    const [min, max] = windowRange(now, 86400);
    const ticks = timeTicks(min, max, 900);
    const step = ticks[1]! - ticks[0]!;
    expect(step % 3600).toBe(0);
    expect(ticks.length).toBeLessThanOrEqual(12);
    expect(ticks.every((t) => clockLabel(t).endsWith(':00'))).toBe(true);
  });

  it('falls on local hours in a time zone half an hour off UTC', () => {
    const ist = 5.5 * 3600; // UTC+5:30
    const [min, max] = windowRange(now, 86400);
    const ticks = timeTicks(min, max, 900, ist);
    expect(ticks.length).toBeGreaterThan(2);
    expect(ticks.every((t) => clockLabel(t, ist).endsWith(':00'))).toBe(true);
  });

  it('thins out on a narrow chart', () => {
    const [min, max] = windowRange(now, 3600);
    expect(timeTicks(min, max, 300).length).toBeLessThanOrEqual(4);
  });

  it('is empty for an empty range or width', () => {
    expect(timeTicks(now, now, 900)).toEqual([]);
    expect(timeTicks(now - 60, now, 0)).toEqual([]);
  });
});

describe('clockLabel', () => {
  it('reads HH:MM, in UTC or shifted to a time zone', () => {
    expect(clockLabel(now)).toBe('11:48');
    expect(clockLabel(now, 3600)).toBe('12:48');
    expect(clockLabel(now, -5 * 3600)).toBe('06:48');
  });
});

describe('chartColumns', () => {
  it('gives two empty samples at the window ends with no points', () => {
    const range = windowRange(now, 3600);
    expect(chartColumns([], range)).toEqual([[now - 3600, now], [null, null], [null, null]]);
  });

  it('keeps one point as it is', () => {
    const range = windowRange(now, 3600);
    const [x, up, down] = chartColumns([point('2026-11-27T11:47:50Z', 30000, 5)], range);
    expect(x).toEqual([now - 10]);
    expect(up).toEqual([30000]);
    expect(down).toEqual([5]);
  });

  it('sorts points and drops those outside the window', () => {
    const range = windowRange(now, 3600);
    const [x, up] = chartColumns(
      [point('2026-11-27T11:47:00Z', 2), point('2026-11-27T10:00:00Z', 9), point('2026-11-27T11:40:00Z', 1)],
      range,
    );
    expect(x).toEqual([now - 480, now - 60]);
    expect(up).toEqual([1, 2]);
  });
});
