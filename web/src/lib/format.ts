// Formatting of sizes, rates, durations and times for people. Pure functions (tested in
// format.test.ts). Sizes use binary units, as the box does ("10G" = 10 GiB).

const kUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// 0 -> "0 B", 1536 -> "1.5 KiB", 10737418240 -> "10 GiB". Three significant digits at most.
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  if (bytes < 0) return '−' + formatBytes(-bytes);
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < kUnits.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  // Drop trailing zeros: "10 GiB", not "10.0 GiB".
  const text = value.toFixed(digits).replace(/\.?0+$/, '');
  return `${text} ${kUnits[unit]}`;
}

// A rate in bytes per second: null is "unlimited", 0 is "paused".
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined) return 'unlimited';
  if (bytesPerSecond === 0) return 'paused';
  return `${formatBytes(bytesPerSecond)}/s`;
}

// Bytes as the shortest exact size text the box parses back ("10G", "512K", "1000B"); "" for
// null (no budget). A bare number would mean KiB to the box, so a unit is always given.
export function bytesToSizeText(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '';
  const units: Array<[string, number]> = [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ];
  for (const [suffix, size] of units) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return `${bytes}B`;
}

// Seconds as a short duration: "45 s", "2 min", "1 h 5 min", "3 d 4 h".
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return h ? `${d} d ${h} h` : `${d} d`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

// An ISO time from the API as "2026-11-27 10:34" (with seconds when asked), in the browser's
// time zone, or UTC with {utc: true}. Unparseable text is returned as it is.
export function formatTime(
  iso: string | null | undefined,
  opts: { utc?: boolean; seconds?: boolean } = {},
): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const parts = opts.utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  const [y, mo, da, h, mi, se] = parts as [number, number, number, number, number, number];
  const time = `${pad(h)}:${pad(mi)}${opts.seconds ? ':' + pad(se) : ''}`;
  return `${y}-${pad(mo)}-${pad(da)} ${time}${opts.utc ? ' UTC' : ''}`;
}

// How long ago an ISO time was, relative to `now` (ms): "just now", "5 min ago", "2 h ago".
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 10) return 'just now';
  return `${formatDuration(s)} ago`;
}

// "1 file", "3 files".
export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

// A number with thousands separators ("12 345"), stable across locales.
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}
