import { describe, expect, it } from 'vitest';
import {
  DAYS,
  HOURS,
  UNLIMITED,
  describeRate,
  emptyGrid,
  gridToTimetable,
  isValidRate,
  legendOf,
  normalizeRate,
  parseTimetable,
  rateBytes,
  timetableToGrid,
  type Grid,
} from './timetable';

function grid(text: string): Grid {
  const r = timetableToGrid(text);
  if (!r.ok) throw new Error(r.error);
  return r.grid;
}

// A small deterministic generator (mulberry32), so a failure names its seed.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseTimetable', () => {
  it('reads an empty timetable as unlimited', () => {
    expect(parseTimetable('')).toEqual({ ok: true, entries: [], single: null });
    expect(parseTimetable('   ')).toEqual({ ok: true, entries: [], single: null });
  });

  it('reads a single rate without a time', () => {
    expect(parseTimetable('10M')).toEqual({ ok: true, entries: [{ day: -1, minute: 0, rate: '10M' }], single: '10M' });
    expect(parseTimetable('512k:10M').ok).toBe(true);
  });

  it('reads daily and day entries', () => {
    const r = parseTimetable('08:00,512k Sat-00:00,off  18:30,10M:1M');
    expect(r).toEqual({
      ok: true,
      single: null,
      entries: [
        { day: -1, minute: 480, rate: '512k' },
        { day: 5, minute: 0, rate: 'off' },
        { day: -1, minute: 1110, rate: '10M:1M' },
      ],
    });
  });

  it('reads a lone "HH:MM" as the box does: a rate up:down in KiB', () => {
    expect(parseTimetable('08:00')).toEqual({ ok: true, entries: [{ day: -1, minute: 0, rate: '08:00' }], single: '08:00' });
  });

  it('refuses what the box refuses', () => {
    for (const bad of ['08:00 1M', 'Mon-8:00,1M', 'mon-08:00,1M', 'Xyz-08:00,1M', '24:00,1M', '08:60,1M', '08:00,1Q', '08:00,', 'fast', '08:00,1M:2M:3M', '08:00,.k']) {
      expect(parseTimetable(bad).ok, bad).toBe(false);
    }
  });
});

describe('timetableToGrid', () => {
  it('fills the week with unlimited for an empty timetable', () => {
    expect(grid('')).toEqual(emptyGrid(UNLIMITED));
  });

  it('fills the week with a single rate', () => {
    expect(grid('10M').flat().every((r) => r === '10M')).toBe(true);
  });

  it('holds a rate until the next entry and wraps around the week', () => {
    const g = grid('08:00,512k 18:00,off');
    expect(g[0]![7]).toBe('off'); // Monday 07:00: from Sunday 18:00, wrapped
    expect(g[0]![8]).toBe('512k');
    expect(g[0]![17]).toBe('512k');
    expect(g[0]![18]).toBe('off');
    expect(g[6]![23]).toBe('off');
  });

  it('lets day entries override daily ones from their time on', () => {
    const g = grid('08:00,1M Sat-00:00,0 Mon-00:00,2M');
    expect(g[5]![3]).toBe('0'); // Saturday night: paused
    expect(g[5]![8]).toBe('1M'); // the daily 08:00 entry takes over
    expect(g[0]![0]).toBe('2M');
    expect(g[0]![8]).toBe('1M');
  });

  it('lets the later entry win at the same minute, as the box does', () => {
    expect(grid('Mon-08:00,1M 08:00,2M')[0]![8]).toBe('2M');
    expect(grid('08:00,2M Mon-08:00,1M')[0]![8]).toBe('1M');
  });

  it('says when entries are off the hour', () => {
    const r = timetableToGrid('08:30,1M 18:00,off');
    expect(r.ok && r.exact).toBe(false);
    if (r.ok) expect(r.grid[0]![8]).toBe('off'); // 08:00 is before 08:30
    const e = timetableToGrid('08:00,1M');
    expect(e.ok && e.exact).toBe(true);
  });

  it('reports an unreadable timetable with an empty grid', () => {
    const r = timetableToGrid('Funday-08:00,1M');
    expect(r.ok).toBe(false);
    expect(r.grid).toEqual(emptyGrid());
  });
});

describe('gridToTimetable', () => {
  it('writes nothing for an all-unlimited week', () => {
    expect(gridToTimetable(emptyGrid())).toBe('');
  });

  it('writes one rate for a uniform week', () => {
    expect(gridToTimetable(emptyGrid('10M'))).toBe('10M');
    expect(gridToTimetable(emptyGrid('off'))).toBe('off');
  });

  it('writes daily entries when every day is the same', () => {
    const g = emptyGrid();
    for (const row of g) for (let h = 8; h < 18; h++) row[h] = '512k';
    expect(gridToTimetable(g)).toBe('08:00,512k 18:00,unlimited');
  });

  it('writes day entries when days differ', () => {
    const g = emptyGrid();
    g[5]![10] = '1M';
    expect(gridToTimetable(g)).toBe('Sat-10:00,1M Sat-11:00,unlimited');
  });

  it('keeps the canonical forms the same through a round trip', () => {
    for (const t of ['', '10M', '08:00,512k 18:00,off', 'Mon-00:00,1M Sat-00:00,0:1M', '00:00,1M 06:00,unlimited']) {
      expect(gridToTimetable(grid(t)), t).toBe(t);
    }
  });

  it('round-trips random grids exactly (grid -> timetable -> grid)', () => {
    const tokens = ['unlimited', 'off', '0', '512k', '10M', '1.5G', '256k:10M'];
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const g = emptyGrid();
      // Runs of equal rates, as people paint them, and the odd single cell.
      let current = tokens[0]!;
      for (let d = 0; d < DAYS.length; d++) {
        for (let h = 0; h < HOURS; h++) {
          if (r() < 0.15) current = tokens[Math.floor(r() * tokens.length)]!;
          g[d]![h] = current;
        }
      }
      if (seed % 3 === 0) for (let d = 1; d < 7; d++) g[d] = g[0]!.slice(); // same every day
      const text = gridToTimetable(g);
      expect(parseTimetable(text).ok, `seed ${seed}: ${text}`).toBe(true);
      expect(grid(text), `seed ${seed}: ${text}`).toEqual(g);
    }
  });
});

describe('rates', () => {
  it('accepts the box grammar', () => {
    for (const ok of ['off', 'unlimited', '0', '512', '512k', '512K', '10M', '1.5G', '2T', '100B', '512k:10M', 'off:1M']) {
      expect(isValidRate(ok), ok).toBe(true);
    }
    for (const bad of ['', 'OFF', '10 M', '10MB', '-1M', '1.M', '.5M', 'k', '1M:', ':1M', '1M:2M:3M']) {
      expect(isValidRate(bad), bad).toBe(false);
    }
  });

  it('computes bytes per second with binary units and KiB for a bare number', () => {
    expect(rateBytes('512')).toEqual({ up: 512 * 1024, down: 512 * 1024 });
    expect(rateBytes('10M')).toEqual({ up: 10 * 1024 ** 2, down: 10 * 1024 ** 2 });
    expect(rateBytes('100B:off')).toEqual({ up: 100, down: null });
    expect(rateBytes('unlimited')).toEqual({ up: null, down: null });
    expect(rateBytes('bad')).toBeUndefined();
  });

  it('normalizes case and blanks of the words only', () => {
    expect(normalizeRate(' Off ')).toBe('off');
    expect(normalizeRate('UNLIMITED:10M')).toBe('unlimited:10M');
    expect(normalizeRate('10M')).toBe('10M');
  });

  it('describes rates for the legend', () => {
    expect(describeRate('off')).toBe('no limit');
    expect(describeRate('0')).toBe('paused');
    expect(describeRate('512k')).toBe('512 KiB/s');
    expect(describeRate('512k:10M')).toBe('up 512 KiB/s, down 10 MiB/s');
  });

  it('orders the legend with no limit first, then by rate', () => {
    const g = emptyGrid('10M');
    g[0]![0] = '512k';
    g[1]![1] = 'unlimited';
    g[2]![2] = '0';
    expect(legendOf(g)).toEqual(['unlimited', '0', '512k', '10M']);
  });
});
