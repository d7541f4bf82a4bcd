// The weekly upload schedule: conversion between the rclone timetable the box stores
// (GET/PUT /api/v1/bandwidth `timetable`) and the 7 x 24 grid the Bandwidth page paints.
//
// Grammar (src/sync/bandwidth.cc ParseTimetable, which this mirrors):
//   ""                      unlimited
//   RATE                    one rate all the time ("10M", "512k:10M")
//   ENTRY (" " ENTRY)*      ENTRY = [Day-]HH:MM,RATE; Day is Mon..Sun (case-sensitive)
//   RATE = R | R:R          upload[:download]; R = "off" | "unlimited" | NUMBER[BKMGT]
// A bare number is KiB; units are powers of 1024; "off" and "unlimited" mean no limit; 0 pauses.
// Entries without a day apply to every day. The rate in force at a moment is that of the latest
// entry at or before it in the week, wrapping from the end of the week; for two entries at the
// same minute the later one in the text wins.
//
// The grid holds one rate token per hour (grid[day][hour], day 0 = Monday), exactly as typed, so
// what the admin paints is what is stored. A timetable with entries off the hour cannot be shown
// exactly: each hour then shows the rate in force at its start, and `exact` is false.

export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
export const HOURS = 24;
export const UNLIMITED = 'unlimited';

export type Grid = string[][];

export interface TimetableEntry {
  day: number; // 0 = Monday .. 6 = Sunday; -1 = every day
  minute: number; // minute of the day
  rate: string; // the rate token, "UP" or "UP:DOWN"
}

export type ParseResult =
  | { ok: true; entries: TimetableEntry[]; single: string | null }
  | { ok: false; error: string };

const kRateSide = /^(off|unlimited|[0-9]+(\.[0-9]+)?[BbKkMmGgTt]?)$/;

// One side of a rate ("512k", "off"), as the box's ParseRate accepts it (stricter about
// stray dots, which the box would refuse anyway).
export function isValidRateSide(text: string): boolean {
  return kRateSide.test(text);
}

// A rate token: "10M", "off", "512k:10M" (upload:download).
export function isValidRate(text: string): boolean {
  const parts = text.split(':');
  if (parts.length > 2) return false;
  return parts.every(isValidRateSide);
}

// Bytes per second of one side: null for unlimited, undefined when invalid.
export function rateSideBytes(text: string): number | null | undefined {
  if (!isValidRateSide(text)) return undefined;
  if (text === 'off' || text === 'unlimited') return null;
  const last = text[text.length - 1]!.toLowerCase();
  const mult: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  const hasUnit = last in mult;
  const num = Number(hasUnit ? text.slice(0, -1) : text);
  return Math.round(num * (hasUnit ? mult[last]! : 1024));
}

// Upload and download bytes per second of a rate token (null: unlimited); undefined if invalid.
export function rateBytes(token: string): { up: number | null; down: number | null } | undefined {
  if (!isValidRate(token)) return undefined;
  const [u, d] = token.split(':');
  const up = rateSideBytes(u!);
  const down = d === undefined ? up : rateSideBytes(d);
  if (up === undefined || down === undefined) return undefined;
  return { up, down };
}

// Lower-cases the words and trims; the box itself is case-sensitive about "off".
export function normalizeRate(text: string): string {
  const t = text.trim();
  return t
    .split(':')
    .map((side) => (/^(off|unlimited)$/i.test(side) ? side.toLowerCase() : side))
    .join(':');
}

function parseTime(t: string): number | null {
  if (!/^[0-9]{2}:[0-9]{2}$/.test(t)) return null;
  const h = Number(t.slice(0, 2));
  const m = Number(t.slice(3));
  if (h > 23 || m > 59) return null;
  return h * 60 + m;
}

export function parseTimetable(text: string): ParseResult {
  const items = text.split(/\s+/).filter((s) => s !== '');
  if (items.length === 0) return { ok: true, entries: [], single: null };
  if (items.length === 1 && !items[0]!.includes(',')) {
    const rate = items[0]!;
    if (!isValidRate(rate)) return { ok: false, error: `rate '${rate}' is not valid` };
    return { ok: true, entries: [{ day: -1, minute: 0, rate }], single: rate };
  }
  const entries: TimetableEntry[] = [];
  for (const item of items) {
    const comma = item.indexOf(',');
    if (comma < 0) return { ok: false, error: `entry '${item}' is not [Day-]HH:MM,RATE` };
    let when = item.slice(0, comma);
    let day = -1;
    if (when.length > 4 && when[3] === '-') {
      day = (DAYS as readonly string[]).indexOf(when.slice(0, 3));
      if (day < 0) return { ok: false, error: `entry '${item}': unknown day (Mon..Sun)` };
      when = when.slice(4);
    }
    const minute = parseTime(when);
    if (minute === null) return { ok: false, error: `entry '${item}': time '${when}' is not HH:MM` };
    const rate = item.slice(comma + 1);
    if (!isValidRate(rate)) return { ok: false, error: `entry '${item}': rate '${rate}' is not valid` };
    entries.push({ day, minute, rate });
  }
  return { ok: true, entries, single: null };
}

export function emptyGrid(rate: string = UNLIMITED): Grid {
  return DAYS.map(() => Array.from({ length: HOURS }, () => rate));
}

// The rate token in force at each hour of the week.
export function timetableToGrid(
  text: string,
): { ok: true; grid: Grid; exact: boolean } | { ok: false; error: string; grid: Grid } {
  const parsed = parseTimetable(text);
  if (!parsed.ok) return { ok: false, error: parsed.error, grid: emptyGrid() };
  if (parsed.entries.length === 0) return { ok: true, grid: emptyGrid(), exact: true };
  // Minute of the week -> rate, sorted; stable, so a later entry for the same minute wins.
  const week: Array<[number, string]> = [];
  for (const e of parsed.entries) {
    for (let d = 0; d < 7; d++) {
      if (e.day === -1 || e.day === d) week.push([d * 1440 + e.minute, e.rate]);
    }
  }
  week.sort((a, b) => a[0] - b[0]);
  const grid = emptyGrid();
  for (let d = 0; d < 7; d++) {
    for (let h = 0; h < HOURS; h++) {
      const mow = d * 1440 + h * 60;
      let current = week[week.length - 1]![1];
      for (const [m, r] of week) {
        if (m > mow) break;
        current = r;
      }
      grid[d]![h] = current;
    }
  }
  const exact = parsed.entries.every((e) => e.minute % 60 === 0);
  return { ok: true, grid, exact };
}

function hh(h: number): string {
  return `${h < 10 ? '0' : ''}${h}:00`;
}

// The shortest timetable of this module's forms that gives the grid: "" when every hour is
// unlimited, one rate when every hour has the same, daily entries when every day is the same,
// else entries with days. Only changes are written (the rate holds until the next entry).
export function gridToTimetable(grid: Grid): string {
  const flat = grid.flat();
  const first = flat[0] ?? UNLIMITED;
  if (flat.every((r) => r === first)) return first === UNLIMITED ? '' : first;
  const sameDays = grid.every((row) => row.every((r, h) => r === grid[0]![h]));
  const out: string[] = [];
  if (sameDays) {
    const row = grid[0]!;
    for (let h = 0; h < HOURS; h++) {
      const prev = row[(h + HOURS - 1) % HOURS];
      if (row[h] !== prev) out.push(`${hh(h)},${row[h]}`);
    }
    return out.join(' ');
  }
  for (let d = 0; d < 7; d++) {
    for (let h = 0; h < HOURS; h++) {
      const i = d * HOURS + h;
      const prev = flat[(i + flat.length - 1) % flat.length];
      if (flat[i] !== prev) out.push(`${DAYS[d]}-${hh(h)},${flat[i]}`);
    }
  }
  return out.join(' ');
}

// What a rate token means, for the legend: "no limit", "paused", "512 KiB/s",
// "up 512 KiB/s, down 10 MiB/s".
export function describeRate(token: string): string {
  const r = rateBytes(token);
  if (!r) return 'not a valid rate';
  const one = (b: number | null) =>
    b === null ? 'no limit' : b === 0 ? 'paused' : `${formatBinary(b)}/s`;
  if (r.up === r.down) return one(r.up);
  return `up ${one(r.up)}, down ${one(r.down)}`;
}

function formatBinary(b: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number(v.toFixed(2))} ${units[u]}`;
}

// The distinct tokens of a grid, ordered for the legend: no limit first, then by upload rate.
export function legendOf(grid: Grid): string[] {
  const tokens = [...new Set(grid.flat())];
  const key = (t: string) => {
    const r = rateBytes(t);
    if (!r) return Number.MAX_VALUE;
    return r.up === null ? -1 : r.up;
  };
  return tokens.sort((a, b) => key(a) - key(b) || a.localeCompare(b));
}
