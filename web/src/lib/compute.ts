// Pure helpers of the Compute pages (tested in compute.test.ts): the API's nanosecond times,
// run durations, module uploads as base64, the JSON declaration editor's parsing and its
// "new from example" document.

import { formatTime } from './format';

// PUT /modules/{name}: the body limit is 1 MiB, so base64 (4/3) bounds a module to 768 KiB.
export const kModuleMaxBytes = 768 * 1024;

export const kPipelineNameRule = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const kModuleNameRule = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

// ns since the Unix epoch (a JSON number: beyond 2^53 it is rounded, by far less than a ms)
// as "2026-11-27 10:34:05" in the browser's time zone (UTC with {utc: true}); "—" for 0.
export function formatNs(ns: number | null | undefined, opts: { utc?: boolean; seconds?: boolean } = {}): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns) || ns <= 0) return '—';
  const d = new Date(Math.floor(ns / 1e6));
  return formatTime(d.toISOString(), { seconds: opts.seconds ?? true, utc: opts.utc });
}

// A run's duration: "850 ms", "1.25 s", "42.1 s", "3 min 5 s".
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(2).replace(/\.?0+$/, '')} s`;
  if (s < 60) return `${s.toFixed(1).replace(/\.0$/, '')} s`;
  const whole = Math.round(s);
  if (whole < 3600) {
    const m = Math.floor(whole / 60);
    const r = whole % 60;
    return r ? `${m} min ${r} s` : `${m} min`;
  }
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

// The first 12 hex digits of a SHA-256, for a table ("" stays "").
export function shortSha(sha: string | null | undefined): string {
  return (sha ?? '').slice(0, 12);
}

const kB64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// Standard base64 with padding of bytes (no btoa: no binary-string detour, works anywhere).
export function base64OfBytes(data: ArrayBuffer | Uint8Array): string {
  const b = data instanceof Uint8Array ? data : new Uint8Array(data);
  const out: string[] = [];
  let chunk = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    chunk += kB64[(n >> 18) & 63]! + kB64[(n >> 12) & 63]! + kB64[(n >> 6) & 63]! + kB64[n & 63]!;
    if (chunk.length >= 8192) {
      out.push(chunk);
      chunk = '';
    }
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i]! << 16;
    chunk += kB64[(n >> 18) & 63]! + kB64[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    chunk += kB64[(n >> 18) & 63]! + kB64[(n >> 12) & 63]! + kB64[(n >> 6) & 63]! + '=';
  }
  out.push(chunk);
  return out.join('');
}

// A file (or Blob) as base64, for PUT /modules/{name}.
export async function base64OfFile(file: Blob): Promise<string> {
  return base64OfBytes(await file.arrayBuffer());
}

// Why a file cannot be a module ("" when it can).
export function moduleFileProblem(size: number): string {
  if (size <= 0) return 'The file is empty.';
  if (size > kModuleMaxBytes) {
    const kib = Math.ceil(size / 1024);
    return `The file is ${kib} KiB; a module can be at most 768 KiB (the API takes 1 MiB of base64).`;
  }
  return '';
}

// A module name from a file name: the characters the box allows, no leading dot.
export function moduleNameOf(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  return base
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^\.+/, '')
    .slice(0, 128);
}

export function moduleNameProblem(name: string): string {
  if (name === '') return 'Module name is required';
  if (!kModuleNameRule.test(name)) return "Use letters, digits, '.', '_' and '-' (not starting with '.'), at most 128";
  return '';
}

export type ParsedDeclaration = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

// Line and column (from 1) of offset `pos` in `text`.
export function lineColumn(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(pos, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

// The editor's text as a declaration, checked the way the page can before sending: valid
// JSON, an object, no null (the API refuses it anywhere), a valid name when `needName`.
// Errors are for people: "Line 3, column 14: ..." for a JSON syntax error.
export function parseDeclaration(text: string, opts: { needName?: boolean; name?: string } = {}): ParsedDeclaration {
  if (text.trim() === '') return { ok: false, error: 'Give the declaration (a JSON object)' };
  const bad = jsonSyntaxError(text);
  if (bad) {
    const p = lineColumn(text, bad.pos);
    return { ok: false, error: `Line ${p.line}, column ${p.column}: not valid JSON (${bad.what})` };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `Not valid JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, error: 'The declaration must be a JSON object ({ ... })' };
  }
  const nul = findNull(v, '');
  if (nul !== null) return { ok: false, error: `${nul || 'the declaration'}: must not be null (leave it out)` };
  const obj = v as Record<string, unknown>;
  if (opts.needName || obj['name'] !== undefined) {
    const n = obj['name'];
    if (typeof n !== 'string' || n === '') return { ok: false, error: 'name: give the pipeline a name' };
    if (!kPipelineNameRule.test(n)) {
      return { ok: false, error: "name: 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit" };
    }
    if (opts.name !== undefined && n !== opts.name) {
      return { ok: false, error: `name: must stay "${opts.name}" (make a new pipeline for another name)` };
    }
  }
  return { ok: true, value: obj };
}

// The first syntax error of JSON `text` (its offset and what was wrong), or null. Browsers'
// JSON.parse messages differ and some name no position; this names one in every browser.
export function jsonSyntaxError(text: string): { pos: number; what: string } | null {
  let i = 0;
  const n = text.length;
  class Bad {
    constructor(
      readonly pos: number,
      readonly what: string,
    ) {}
  }
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const describe = () => (i >= n ? 'the text ends too soon' : `unexpected ${JSON.stringify(text[i])}`);
  const str = () => {
    i++; // the opening quote
    while (i < n) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Bad(i, 'a bad \\u escape');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          throw new Bad(i, 'a bad escape in a string');
        }
        continue;
      }
      if (c < ' ') throw new Bad(i, c === '\n' ? 'a line break inside a string (missing ")' : 'a control character in a string');
      i++;
    }
    throw new Bad(i, 'a string is not closed (missing ")');
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Bad(i, `${describe()}, expected a "name" in quotes`);
        str();
        ws();
        if (text[i] !== ':') throw new Bad(i, `${describe()}, expected ':'`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') throw new Bad(i, "a ',' before '}' (remove it)");
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        throw new Bad(i, `${describe()}, expected ',' or '}'`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') throw new Bad(i, "a ',' before ']' (remove it)");
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        throw new Bad(i, `${describe()}, expected ',' or ']'`);
      }
    }
    if (c === '"') return str();
    const m = /^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (m) {
      i += m[0].length;
      return;
    }
    throw new Bad(i, `${describe()}, expected a value`);
  };
  try {
    value();
    ws();
    if (i < n) throw new Bad(i, `${describe()} after the end`);
    return null;
  } catch (e) {
    if (e instanceof Bad) return { pos: e.pos, what: e.what };
    throw e;
  }
}

// The path of the first null in `v` ("steps[1].where"), or null when there is none.
function findNull(v: unknown, where: string): string | null {
  if (v === null) return where;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = findNull(v[i], `${where}[${i}]`);
      if (r !== null) return r;
    }
  } else if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const r = findNull(x, where ? `${where}.${k}` : k);
      if (r !== null) return r;
    }
  }
  return null;
}

// A name not in `taken`: base, base-2, base-3, ...
export function freeName(base: string, taken: Iterable<string>): string {
  const set = new Set(taken);
  if (!set.has(base)) return base;
  for (let i = 2; ; i++) {
    const n = `${base}-${i}`;
    if (!set.has(n)) return n;
  }
}

// "New from example": a file pipeline on `share` that keeps the hot readings of CSV files
// dropped into incoming/ and writes them as JSON lines under processed/.
export function exampleDeclaration(share: string, taken: Iterable<string> = []): Record<string, unknown> {
  return {
    name: freeName('hot-readings', taken),
    enabled: true,
    trigger: { type: 'file', share, glob: 'incoming/**/*.csv', settle_ms: 2000 },
    input: { format: 'csv' },
    steps: [{ type: 'filter', where: 'temp_c > 30' }],
    sinks: [{ type: 'file', share, path: 'processed/{stem}-v{version}.{ext}', format: 'jsonl' }],
    retry: { max_attempts: 5, backoff_ms: 2000 },
  };
}

// The editor's text for a declaration.
export function declarationText(d: unknown): string {
  return JSON.stringify(d, null, 2);
}
