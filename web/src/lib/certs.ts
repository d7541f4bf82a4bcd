// Turns the files an admin picks into the body of PUT /api/v1/certificates: PEM text (the
// certificate, its chain, its key) or a PKCS#12 (.pfx/.p12) file as base64.

export type CertUpload =
  | { ok: true; body: Record<string, string> }
  | { ok: false; field: 'cert' | 'key'; error: string };

const kCertBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const kKeyBlock = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/;
const kMaxBytes = 512 * 1024;

export function bytesToBase64(bytes: Uint8Array): string {
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(s);
}

// Whether a file is PEM text (as opposed to a binary PKCS#12).
export function isPem(bytes: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 64 * 1024));
  return head.includes('-----BEGIN ');
}

export function buildCertUpload(
  cert: { name: string; bytes: Uint8Array } | null,
  key: { name: string; bytes: Uint8Array } | null,
  pfxPassword: string,
): CertUpload {
  if (!cert) return { ok: false, field: 'cert', error: 'Choose the certificate file' };
  if (cert.bytes.length > kMaxBytes) return { ok: false, field: 'cert', error: 'The file is larger than 512 KiB' };
  if (!isPem(cert.bytes)) {
    const body: Record<string, string> = { pfx_base64: bytesToBase64(cert.bytes) };
    if (pfxPassword) body['pfx_password'] = pfxPassword;
    return { ok: true, body };
  }
  const text = new TextDecoder().decode(cert.bytes);
  const certs = text.match(kCertBlock) ?? [];
  if (certs.length === 0) return { ok: false, field: 'cert', error: 'The file holds no PEM certificate' };
  let keyText = '';
  if (key) {
    if (key.bytes.length > kMaxBytes) return { ok: false, field: 'key', error: 'The file is larger than 512 KiB' };
    keyText = new TextDecoder().decode(key.bytes);
  } else {
    keyText = text; // a bundle with the key in the same file
  }
  const block = keyText.match(kKeyBlock);
  if (!block) {
    return {
      ok: false,
      field: 'key',
      error: key ? 'The file holds no PEM private key' : 'Choose the private key file (PEM)',
    };
  }
  if (block[1] === 'ENCRYPTED ') {
    return { ok: false, field: 'key', error: 'The key is encrypted: give it unencrypted, or upload a PFX instead' };
  }
  const body: Record<string, string> = { cert_pem: certs[0]! + '\n', key_pem: block[0] + '\n' };
  if (certs.length > 1) body['chain_pem'] = certs.slice(1).join('\n') + '\n';
  return { ok: true, body };
}
