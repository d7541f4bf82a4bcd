// Form validators: each takes the field's text and returns an error message for a person, or
// "" when the value is fine. The rules are those of api/openapi.yaml, checked before sending so
// that a mistake is shown next to its field instead of as a refused request.

import { isValidRate, normalizeRate } from './timetable';

export type Validator = (value: string) => string;

const kControl = /[\u0000-\u001f\u007f]/;

export function required(label: string): Validator {
  return (v) => (v.trim() === '' ? `${label} is required` : '');
}

// Runs validators in order and returns the first message.
export function all(...validators: Validator[]): Validator {
  return (v) => {
    for (const f of validators) {
      const m = f(v);
      if (m) return m;
    }
    return '';
  };
}

// Only checks a value that is given (pair with required() for required fields).
function optional(check: (v: string) => string): Validator {
  return (v) => (v.trim() === '' ? '' : check(v.trim()));
}

// Share, storage account and access-key user names: they become SMB shares, NFS exports,
// buckets or file names.
export const shareName: Validator = optional((v) =>
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(v)
    ? ''
    : 'Use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit',
);
export const identifier = shareName;

export const userName: Validator = optional((v) =>
  /^[a-z0-9][a-z0-9._-]{0,31}$/.test(v)
    ? ''
    : 'Use 1 to 32 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
);

function utf8Length(v: string): number {
  return new TextEncoder().encode(v).length;
}

export const password: Validator = (v) => {
  if (v === '') return 'Password is required';
  if (kControl.test(v)) return 'The password cannot hold control characters';
  const n = utf8Length(v);
  if (n < 12) return 'Use at least 12 characters';
  if (n > 256) return 'Use at most 256 bytes';
  return '';
};

export function sameAs(other: () => string, message = 'The passwords differ'): Validator {
  return (v) => (v !== other() ? message : '');
}

export const setupCode: Validator = (v) => {
  const t = v.trim().toUpperCase();
  if (t === '') return 'Setup code is required';
  return /^[A-Z2-9]{4}(-[A-Z2-9]{4})*$/.test(t) && t.length <= 64
    ? ''
    : 'Type the code as the console shows it, e.g. ABCD-EFGH-…';
};

export const freeText =
  (max: number): Validator =>
  (v) => {
    if (kControl.test(v)) return 'Control characters are not allowed';
    if (v.length > max) return `Use at most ${max} characters`;
    return '';
  };

// Azure containers, S3 buckets: 3 to 63 of a-z, 0-9, "." and "-".
export const container: Validator = optional((v) =>
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v)
    ? ''
    : 'Use 3 to 63 lower-case letters, digits, "." or "-", starting and ending with a letter or digit',
);

// Splits a comma- (or space-) separated list.
export function splitList(v: string): string[] {
  return v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export const nfsClients: Validator = (v) => {
  const items = splitList(v);
  if (items.length > 64) return 'At most 64 clients';
  for (const c of items) {
    if (!/^(\*|[A-Za-z0-9*][A-Za-z0-9.:*_-]*(\/[0-9]{1,3})?)$/.test(c) || c.length > 256) {
      return `"${c}" is not an address, a network like 10.0.0.0/24 or a host name`;
    }
  }
  return '';
};

export const shareRights: Validator = (v) => {
  for (const s of splitList(v)) {
    if (s !== '*' && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s)) {
      return `"${s}" is not a share name (or * for all)`;
    }
  }
  return '';
};

// Cache sizes: bytes, "500GiB", "2TB" or "90%".
export const cacheSize: Validator = optional((v) =>
  /^[0-9]+(\.[0-9]+)? ?(%|[BbKkMmGgTt]|[KkMmGgTt][Bb]|[KkMmGgTt]i[Bb])?$/.test(v) && v.length <= 32
    ? ''
    : 'Use a size like 500GiB or 2TB, or a share of the disk like 90%',
);

export const pinnedPaths: Validator = (v) => {
  const items = v
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length > 100) return 'At most 100 paths';
  for (const p of items) {
    if (p.startsWith('/')) return `"${p}" must be relative to the share (no leading /)`;
    if (/(^|\/)\.\.(\/|$)/.test(p)) return `"${p}" cannot contain ".."`;
    if (kControl.test(p) || p.length > 256) return `"${p}" is not a valid path`;
  }
  return '';
};

export function integer(min: number, max: number): Validator {
  return optional((v) => {
    if (!/^[0-9]+$/.test(v)) return 'Type a whole number';
    const n = Number(v);
    if (n < min || n > max) return `Use a number from ${min} to ${max}`;
    return '';
  });
}

// A timetable rate: "unlimited", "off", "0" (paused), "512k", "10M" or "UP:DOWN".
export const rate: Validator = (v) => {
  const t = normalizeRate(v);
  if (t === '') return 'Rate is required';
  return isValidRate(t)
    ? ''
    : 'Use unlimited, off, 0 (paused) or a number with a unit: 512k, 10M, 1G (up:down allowed)';
};

// Budgets: "10G", "" for none.
export const budget: Validator = optional((v) =>
  /^(off|unlimited|[0-9]+(\.[0-9]+)?[BbKkMmGgTt]?)$/.test(v)
    ? ''
    : 'Use a size with a unit like 10G or 500M (a bare number is KiB), or leave empty for none',
);

export const endpoint: Validator = optional((v) =>
  /^https?:\/\/\S+$/.test(v) && v.length <= 512 ? '' : 'Use a URL starting with https://',
);

// The alert webhook: an http(s) URL, or "" for none (AlertSettingsUpdate in the spec).
export const webhookUrl: Validator = optional((v) => {
  if (!/^https?:\/\/\S+$/.test(v)) return 'Use a URL starting with https:// (or http://), or leave empty for none';
  if (v.length > 2048) return 'Use at most 2048 characters';
  return '';
});

export const azureAccount: Validator = optional((v) =>
  /^[a-z0-9]{3,24}$/.test(v) ? '' : 'Use 3 to 24 lower-case letters and digits',
);

export const base64Key: Validator = optional((v) =>
  /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length <= 512 ? '' : 'The account key is base64 text',
);

export const sasToken: Validator = optional((v) =>
  /^(\??[A-Za-z0-9%._~=&+/:-]*sig=[A-Za-z0-9%._~=&+/:-]*)?$/.test(v) && v.length <= 4096
    ? ''
    : 'A SAS token looks like sv=...&sig=... (with or without the leading ?)',
);

export const region: Validator = optional((v) =>
  /^[a-z0-9-]{1,64}$/.test(v) ? '' : 'Use lower-case letters, digits and "-", e.g. eu-west-1',
);

export const absolutePath: Validator = optional((v) => {
  if (!v.startsWith('/')) return 'Use an absolute folder, e.g. /mnt/usb';
  if (/(^|\/)\.\.(\/|$)/.test(v)) return 'The folder cannot contain ".."';
  if (kControl.test(v) || v.length > 1024) return 'Not a valid folder';
  return '';
});

export const deviceName: Validator = (v) =>
  /^[A-Za-z0-9.-]{0,63}$/.test(v.trim())
    ? ''
    : 'Use up to 63 letters, digits, "-" or "." (empty: the host name)';

// Runs a map of validators over values; returns only the fields with a message.
export function validateAll<K extends string>(
  values: Record<K, string>,
  rules: Partial<Record<K, Validator>>,
): Partial<Record<K, string>> {
  const errors: Partial<Record<K, string>> = {};
  for (const key of Object.keys(rules) as K[]) {
    const rule = rules[key];
    if (!rule) continue;
    const m = rule(values[key] ?? '');
    if (m) errors[key] = m;
  }
  return errors;
}
