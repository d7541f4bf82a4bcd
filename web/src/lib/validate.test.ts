import { describe, expect, it } from 'vitest';
import {
  absolutePath,
  all,
  budget,
  cacheSize,
  container,
  deviceName,
  integer,
  nfsClients,
  password,
  pinnedPaths,
  rate,
  required,
  sameAs,
  sasToken,
  setupCode,
  shareName,
  shareRights,
  splitList,
  userName,
  validateAll,
  webhookUrl,
} from './validate';

describe('validators', () => {
  it('requires a value', () => {
    expect(required('Name')('')).toBe('Name is required');
    expect(required('Name')('  ')).toBe('Name is required');
    expect(required('Name')('x')).toBe('');
  });

  it('checks share names as the API does', () => {
    expect(shareName('photos')).toBe('');
    expect(shareName('Site_7.raw-data')).toBe('');
    expect(shareName('')).toBe(''); // empty is for required()
    expect(shareName('-photos')).not.toBe('');
    expect(shareName('a b')).not.toBe('');
    expect(shareName('x'.repeat(63))).toBe('');
    expect(shareName('x'.repeat(64))).not.toBe('');
  });

  it('checks user names: lower case, 32 at most', () => {
    expect(userName('field.admin-2')).toBe('');
    expect(userName('Admin')).not.toBe('');
    expect(userName('a'.repeat(33))).not.toBe('');
  });

  it('checks password length in bytes and control characters', () => {
    expect(password('')).toBe('Password is required');
    expect(password('short')).toBe('Use at least 12 characters');
    expect(password('correct horse battery')).toBe('');
    expect(password('ééééééé')).toBe(''); // 14 bytes of UTF-8
    expect(password('a'.repeat(257))).toBe('Use at most 256 bytes');
    expect(password('twelve chars\n!')).not.toBe('');
  });

  it('checks that the repeated password matches', () => {
    const check = all(required('Repeat'), sameAs(() => 'correct horse battery'));
    expect(check('correct horse battery')).toBe('');
    expect(check('correct horse')).toBe('The passwords differ');
  });

  it('checks setup codes, any case', () => {
    expect(setupCode('ABCD-EFGH-2345')).toBe('');
    expect(setupCode(' abcd-efgh ')).toBe('');
    expect(setupCode('ABC1')).not.toBe(''); // 1 is not in the alphabet
    expect(setupCode('')).toBe('Setup code is required');
  });

  it('checks containers and NFS clients', () => {
    expect(container('photos-2026')).toBe('');
    expect(container('Photos')).not.toBe('');
    expect(container('ab')).not.toBe('');
    expect(nfsClients('10.0.0.0/24, 192.168.1.20 host-a.local')).toBe('');
    expect(nfsClients('10.0.0.0/24; rm')).not.toBe('');
    expect(splitList(' a, b  c,,')).toEqual(['a', 'b', 'c']);
    expect(shareRights('*, photos')).toBe('');
    expect(shareRights('photos, -x')).not.toBe('');
  });

  it('checks sizes, rates and budgets', () => {
    expect(cacheSize('500GiB')).toBe('');
    expect(cacheSize('90%')).toBe('');
    expect(cacheSize('2 TB')).toBe('');
    expect(cacheSize('lots')).not.toBe('');
    expect(rate('512k')).toBe('');
    expect(rate('Unlimited')).toBe('');
    expect(rate('0')).toBe('');
    expect(rate('512k:10M')).toBe('');
    expect(rate('')).toBe('Rate is required');
    expect(rate('fast')).not.toBe('');
    expect(budget('')).toBe('');
    expect(budget('10G')).toBe('');
    expect(budget('10 GB')).not.toBe('');
  });

  it('checks numbers in a range', () => {
    expect(integer(1, 64)('4')).toBe('');
    expect(integer(1, 64)('')).toBe('');
    expect(integer(1, 64)('0')).toBe('Use a number from 1 to 64');
    expect(integer(1, 64)('2.5')).toBe('Type a whole number');
  });

  it('checks paths, pins, SAS tokens and device names', () => {
    expect(absolutePath('/mnt/usb')).toBe('');
    expect(absolutePath('mnt/usb')).not.toBe('');
    expect(absolutePath('/mnt/../etc')).not.toBe('');
    expect(pinnedPaths('projects/**/*.db\nmaps/')).toBe('');
    expect(pinnedPaths('/abs')).not.toBe('');
    expect(sasToken('?sv=2022&sig=abc%2B')).toBe('');
    expect(sasToken('sv=2022')).not.toBe('');
    expect(deviceName('site-7.box')).toBe('');
    expect(deviceName('')).toBe('');
    expect(deviceName('site 7')).not.toBe('');
  });

  it('takes an http(s) webhook URL or nothing', () => {
    expect(webhookUrl('')).toBe('');
    expect(webhookUrl('https://hooks.example.com/T0/B1/secret')).toBe('');
    expect(webhookUrl('http://10.0.0.5:8080/alerts')).toBe('');
    expect(webhookUrl('ftp://example.com/x')).not.toBe('');
    expect(webhookUrl('https://example.com/a b')).not.toBe('');
    expect(webhookUrl('hooks.example.com')).not.toBe('');
    expect(webhookUrl('https://e.com/' + 'a'.repeat(2040))).toBe('Use at most 2048 characters');
  });

  it('collects the messages of a whole form', () => {
    const errors = validateAll(
      { name: '', password: 'correct horse battery' },
      { name: all(required('Name'), shareName), password },
    );
    expect(errors).toEqual({ name: 'Name is required' });
  });
});
