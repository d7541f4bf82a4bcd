import { describe, expect, it } from 'vitest';
import {
  base64OfBytes,
  base64OfFile,
  declarationText,
  exampleDeclaration,
  formatMs,
  formatNs,
  freeName,
  jsonSyntaxError,
  kModuleMaxBytes,
  lineColumn,
  moduleFileProblem,
  moduleNameOf,
  moduleNameProblem,
  parseDeclaration,
  shortSha,
} from './compute';

describe('formatNs', () => {
  it('shows ns since the epoch as a time, UTC or local', () => {
    // 2026-11-27T10:34:05.123456789Z
    const ns = Date.UTC(2026, 10, 27, 10, 34, 5, 123) * 1e6 + 456789;
    expect(formatNs(ns, { utc: true })).toBe('2026-11-27 10:34:05 UTC');
    expect(formatNs(ns, { utc: true, seconds: false })).toBe('2026-11-27 10:34 UTC');
    const local = new Date(Date.UTC(2026, 10, 27, 10, 34, 5));
    expect(formatNs(ns)).toContain(`${String(local.getMinutes()).padStart(2, '0')}:05`);
  });
  it('says "—" for none', () => {
    expect(formatNs(0)).toBe('—');
    expect(formatNs(undefined)).toBe('—');
    expect(formatNs(Number.NaN)).toBe('—');
  });
});

describe('formatMs', () => {
  it('picks a unit', () => {
    expect(formatMs(0)).toBe('0 ms');
    expect(formatMs(850)).toBe('850 ms');
    expect(formatMs(1250)).toBe('1.25 s');
    expect(formatMs(2000)).toBe('2 s');
    expect(formatMs(42100)).toBe('42.1 s');
    expect(formatMs(185000)).toBe('3 min 5 s');
    expect(formatMs(3600000)).toBe('1 h');
    expect(formatMs(-1)).toBe('—');
  });
});

describe('base64', () => {
  const enc = new TextEncoder();
  // The reference: btoa of the bytes as a binary string.
  const ref = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(''));
  it('matches the standard encoding with padding', () => {
    for (const s of ['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar', '#!/bin/sh\necho hi\n']) {
      expect(base64OfBytes(enc.encode(s)), s).toBe(ref(enc.encode(s)));
    }
  });
  it('takes an ArrayBuffer and all byte values, and long input', () => {
    const all = new Uint8Array(256 * 200);
    for (let i = 0; i < all.length; i++) all[i] = (i * 7) & 255;
    expect(base64OfBytes(all.buffer)).toBe(ref(all));
  });
  it('reads a Blob', async () => {
    const blob = new Blob([new Uint8Array([0, 1, 2, 253, 254, 255])]);
    expect(await base64OfFile(blob)).toBe('AAEC/f7/');
  });
});

describe('modules', () => {
  it('checks the size', () => {
    expect(moduleFileProblem(0)).toMatch(/empty/);
    expect(moduleFileProblem(10)).toBe('');
    expect(moduleFileProblem(kModuleMaxBytes)).toBe('');
    expect(moduleFileProblem(kModuleMaxBytes + 1)).toMatch(/768 KiB/);
  });
  it('names a module after its file', () => {
    expect(moduleNameOf('C:\\x\\my tool.py')).toBe('my-tool.py');
    expect(moduleNameOf('.hidden')).toBe('hidden');
    expect(moduleNameOf('clean.sh')).toBe('clean.sh');
    expect(moduleNameProblem('clean.sh')).toBe('');
    expect(moduleNameProblem('.x')).not.toBe('');
    expect(moduleNameProblem('')).toMatch(/required/);
  });
  it('shortens a sha256', () => {
    expect(shortSha('a'.repeat(64))).toBe('a'.repeat(12));
    expect(shortSha('')).toBe('');
  });
});

describe('parseDeclaration', () => {
  it('accepts an object', () => {
    const r = parseDeclaration('{"name": "a", "trigger": {"type": "file"}}', { needName: true });
    expect(r).toEqual({ ok: true, value: { name: 'a', trigger: { type: 'file' } } });
  });
  it('names the line and column of a syntax error', () => {
    const r = parseDeclaration('{\n  "name": "a",\n  "x": ,\n}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/^Line 3, column 8: not valid JSON/);
  });
  it('refuses what the API refuses', () => {
    expect(parseDeclaration('')).toMatchObject({ ok: false });
    expect(parseDeclaration('[1]')).toMatchObject({ ok: false, error: expect.stringMatching(/object/) });
    expect(parseDeclaration('{"name":"a","steps":[{"type":"filter","where":null}]}')).toEqual({
      ok: false,
      error: 'steps[0].where: must not be null (leave it out)',
    });
    expect(parseDeclaration('{"trigger":{}}', { needName: true })).toMatchObject({ ok: false, error: expect.stringMatching(/^name:/) });
    expect(parseDeclaration('{"name":"Bad Name"}')).toMatchObject({ ok: false, error: expect.stringMatching(/^name:/) });
    expect(parseDeclaration('{"name":"b"}', { name: 'a' })).toMatchObject({ ok: false, error: expect.stringMatching(/must stay "a"/) });
    expect(parseDeclaration('{"trigger":{}}', { name: 'a' })).toMatchObject({ ok: true });
  });
  it('finds line and column', () => {
    expect(lineColumn('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
    expect(lineColumn('ab', 0)).toEqual({ line: 1, column: 1 });
  });
});

describe('exampleDeclaration', () => {
  it('is a file pipeline on the share, with a free name, that the editor round-trips', () => {
    const d = exampleDeclaration('field', ['hot-readings']);
    expect(d['name']).toBe('hot-readings-2');
    expect(d['trigger']).toMatchObject({ type: 'file', share: 'field' });
    expect((d['sinks'] as Array<Record<string, unknown>>)[0]).toMatchObject({ type: 'file', share: 'field' });
    const r = parseDeclaration(declarationText(d), { needName: true });
    expect(r).toEqual({ ok: true, value: d });
  });
  it('freeName counts up', () => {
    expect(freeName('a', [])).toBe('a');
    expect(freeName('a', ['a', 'a-2'])).toBe('a-3');
  });
});

describe('jsonSyntaxError', () => {
  it('accepts what JSON.parse accepts', () => {
    for (const t of ['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]} ', '"s"', '0']) {
      expect(jsonSyntaxError(t), t).toBeNull();
      expect(() => JSON.parse(t)).not.toThrow();
    }
  });
  it('points at the error', () => {
    expect(jsonSyntaxError('{"a": 1,}')).toEqual({ pos: 8, what: "a ',' before '}' (remove it)" });
    expect(jsonSyntaxError("{'a': 1}")?.pos).toBe(1);
    expect(jsonSyntaxError('{"a": 1')?.what).toMatch(/ends too soon/);
    expect(jsonSyntaxError('{"a": 01}')?.pos).toBe(7);
    expect(jsonSyntaxError('{"a": "x\ny"}')?.what).toMatch(/line break/);
    expect(jsonSyntaxError('{} x')?.what).toMatch(/after the end/);
  });
});
