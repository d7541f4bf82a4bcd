import { describe, expect, it } from 'vitest';
import { buildCertUpload, bytesToBase64, isPem } from './certs';

const enc = (s: string) => new TextEncoder().encode(s);
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
const CHAIN = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----';

describe('buildCertUpload', () => {
  it('sends a PEM certificate with its chain and key', () => {
    const r = buildCertUpload({ name: 'c.pem', bytes: enc(`${CERT}\n${CHAIN}\n`) }, { name: 'k.pem', bytes: enc(KEY) }, '');
    expect(r).toEqual({ ok: true, body: { cert_pem: CERT + '\n', chain_pem: CHAIN + '\n', key_pem: KEY + '\n' } });
  });

  it('finds the key in the certificate file when no key file is given', () => {
    const r = buildCertUpload({ name: 'both.pem', bytes: enc(`${KEY}\n${CERT}`) }, null, '');
    expect(r.ok && r.body['key_pem']).toBe(KEY + '\n');
  });

  it('asks for the key when there is none', () => {
    expect(buildCertUpload({ name: 'c.pem', bytes: enc(CERT) }, null, '')).toEqual({
      ok: false,
      field: 'key',
      error: 'Choose the private key file (PEM)',
    });
  });

  it('refuses an encrypted key', () => {
    const k = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----';
    const r = buildCertUpload({ name: 'c.pem', bytes: enc(CERT) }, { name: 'k', bytes: enc(k) }, '');
    expect(r.ok).toBe(false);
  });

  it('sends a binary file as a PFX with its password', () => {
    const pfx = new Uint8Array([0x30, 0x82, 0x01, 0xff, 0x00]);
    expect(isPem(pfx)).toBe(false);
    const r = buildCertUpload({ name: 'box.pfx', bytes: pfx }, null, 'secret');
    expect(r).toEqual({ ok: true, body: { pfx_base64: bytesToBase64(pfx), pfx_password: 'secret' } });
    expect(bytesToBase64(pfx)).toBe('MIIB/wA=');
  });

  it('asks for a certificate', () => {
    expect(buildCertUpload(null, null, '').ok).toBe(false);
  });
});
