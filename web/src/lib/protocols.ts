// Which file protocols a share is really served over. A share's `smb` / `nfs` flags say what
// it asks for; the box serves SMB or NFS only when that service runs, which GET /api/v1/device
// tells by having an `smb` / `nfs` key in `endpoints`. Showing "SMB" for a share of a box whose
// SMB is off would send an admin looking for a share no client can reach. Pure (tested in
// protocols.test.ts).

export type Protocol = 'smb' | 'nfs';

// GET /api/v1/device's `endpoints` (api, s3, blob, smb, nfs: those of services that run).
export interface ServiceEndpoints {
  smb?: string;
  nfs?: string;
  [service: string]: string | undefined;
}

export interface ProtocolsLabel {
  text: string; // what clients can use: "SMB, NFS", "SMB" or "S3/Blob only"
  note: string; // "" or, muted beside it: "NFS off on this box", "SMB down"
}

const kNames: Record<Protocol, string> = { smb: 'SMB', nfs: 'NFS' };

// Whether the box runs `p`: true, false, or null while the device is not known yet.
export function boxServes(p: Protocol, endpoints: ServiceEndpoints | null | undefined): boolean | null {
  if (!endpoints) return null;
  return typeof endpoints[p] === 'string' && endpoints[p] !== '';
}

// The Protocols column of a share. `down` holds the services with an active
// service.smb_down / service.nfs_down alert. While the device is unknown the share's own flags
// are shown as they are.
export function protocolsLabel(
  share: { smb: boolean; nfs: boolean },
  endpoints: ServiceEndpoints | null | undefined,
  down: ReadonlySet<Protocol> = new Set(),
): ProtocolsLabel {
  const on: string[] = [];
  const notes: string[] = [];
  for (const p of ['smb', 'nfs'] as Protocol[]) {
    if (!share[p]) continue;
    const serves = boxServes(p, endpoints);
    if (serves === false) notes.push(`${kNames[p]} off on this box`);
    else {
      on.push(kNames[p]);
      if (down.has(p)) notes.push(`${kNames[p]} down`);
    }
  }
  return { text: on.length ? on.join(', ') : 'S3/Blob only', note: notes.join(', ') };
}

// The hint beside a share form's SMB / NFS checkbox when the box does not run that service;
// "" when it does or is not known yet.
export function boxOffHint(p: Protocol, endpoints: ServiceEndpoints | null | undefined): string {
  if (boxServes(p, endpoints) !== false) return '';
  return `${kNames[p]} off on this box: the share is not served over ${kNames[p]} until [${p}] enabled = true in the box's config.`;
}

// The services that an active alert says are down (service.smb_down, service.nfs_down).
export function servicesDown(alerts: ReadonlyArray<{ id: string }> | null | undefined): Set<Protocol> {
  const down = new Set<Protocol>();
  for (const a of alerts ?? []) {
    if (a.id === 'service.smb_down') down.add('smb');
    if (a.id === 'service.nfs_down') down.add('nfs');
  }
  return down;
}
