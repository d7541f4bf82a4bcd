import { describe, expect, it } from 'vitest';
import { bytesToSizeText, formatAgo, formatBytes, formatCount, formatDuration, formatRate, formatTime, plural } from './format';

describe('formatBytes', () => {
  it('uses binary units with up to three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10 * 1024 ** 3)).toBe('10 GiB');
    expect(formatBytes(123.4 * 1024 ** 2)).toBe('123 MiB');
    expect(formatBytes(12.34 * 1024 ** 4)).toBe('12.3 TiB');
  });
  it('shows a dash for what is not known', () => {
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('formatRate', () => {
  it('says unlimited for null and paused for 0', () => {
    expect(formatRate(null)).toBe('unlimited');
    expect(formatRate(0)).toBe('paused');
    expect(formatRate(512 * 1024)).toBe('512 KiB/s');
  });
});

describe('bytesToSizeText', () => {
  it('writes the shortest exact size the box parses back', () => {
    expect(bytesToSizeText(null)).toBe('');
    expect(bytesToSizeText(10 * 1024 ** 3)).toBe('10G');
    expect(bytesToSizeText(1536 * 1024 ** 2)).toBe('1536M');
    expect(bytesToSizeText(2 * 1024 ** 4)).toBe('2T');
    expect(bytesToSizeText(1000)).toBe('1000B'); // a bare number would be KiB
    expect(bytesToSizeText(0)).toBe('0B');
  });
});

describe('formatDuration', () => {
  it('is short and readable', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(45)).toBe('45 s');
    expect(formatDuration(120)).toBe('2 min');
    expect(formatDuration(179)).toBe('2 min');
    expect(formatDuration(3600)).toBe('1 h');
    expect(formatDuration(3900)).toBe('1 h 5 min');
    expect(formatDuration(86400 * 3 + 3600 * 4)).toBe('3 d 4 h');
    expect(formatDuration(null)).toBe('—');
  });
});

describe('formatTime', () => {
  it('shows API times as date and time', () => {
    expect(formatTime('2026-11-27T10:34:35Z', { utc: true })).toBe('2026-11-27 10:34 UTC');
    expect(formatTime('2026-11-27T10:34:35Z', { utc: true, seconds: true })).toBe('2026-11-27 10:34:35 UTC');
    expect(formatTime('not a time')).toBe('not a time');
    expect(formatTime(null)).toBe('—');
  });
  it('says how long ago', () => {
    const now = Date.parse('2026-11-27T10:40:00Z');
    expect(formatAgo('2026-11-27T10:39:55Z', now)).toBe('just now');
    expect(formatAgo('2026-11-27T10:35:00Z', now)).toBe('5 min ago');
  });
});

describe('plural and counts', () => {
  it('agrees in number', () => {
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(3, 'file')).toBe('3 files');
    expect(plural(0, 'file')).toBe('0 files');
  });
  it('groups thousands', () => {
    expect(formatCount(12345)).toBe('12\u202f345');
    expect(formatCount(999)).toBe('999');
  });
});
