import { describe, expect, it } from 'vitest';
import { boxOffHint, boxServes, protocolsLabel, servicesDown } from './protocols';

const both = { api: 'https://127.0.0.1:8480', smb: '0.0.0.0:445', nfs: '0.0.0.0:2049' };
const none = { api: 'https://127.0.0.1:8480', s3: 'https://127.0.0.1:9000' };
const smbOnly = { api: 'https://127.0.0.1:8480', smb: '0.0.0.0:445' };

describe('protocolsLabel', () => {
  it('lists what the share asks for when the box serves it', () => {
    expect(protocolsLabel({ smb: true, nfs: true }, both)).toEqual({ text: 'SMB, NFS', note: '' });
    expect(protocolsLabel({ smb: true, nfs: false }, smbOnly)).toEqual({ text: 'SMB', note: '' });
  });

  it('says a protocol is off on the box instead of listing it', () => {
    expect(protocolsLabel({ smb: true, nfs: true }, smbOnly)).toEqual({ text: 'SMB', note: 'NFS off on this box' });
    expect(protocolsLabel({ smb: true, nfs: true }, none)).toEqual({
      text: 'S3/Blob only',
      note: 'SMB off on this box, NFS off on this box',
    });
  });

  it('is S3/Blob only for a share without SMB and NFS, whatever the box runs', () => {
    expect(protocolsLabel({ smb: false, nfs: false }, both)).toEqual({ text: 'S3/Blob only', note: '' });
    expect(protocolsLabel({ smb: false, nfs: false }, none)).toEqual({ text: 'S3/Blob only', note: '' });
  });

  it('shows the share flags as they are while the device is unknown', () => {
    expect(protocolsLabel({ smb: true, nfs: true }, undefined)).toEqual({ text: 'SMB, NFS', note: '' });
    expect(protocolsLabel({ smb: false, nfs: true }, null)).toEqual({ text: 'NFS', note: '' });
  });

  it('notes a service that an alert says is down', () => {
    expect(protocolsLabel({ smb: true, nfs: true }, both, new Set(['smb']))).toEqual({
      text: 'SMB, NFS',
      note: 'SMB down',
    });
  });
});

describe('boxServes and boxOffHint', () => {
  it('reads the endpoints', () => {
    expect(boxServes('smb', both)).toBe(true);
    expect(boxServes('nfs', smbOnly)).toBe(false);
    expect(boxServes('smb', undefined)).toBeNull();
    expect(boxServes('smb', { smb: '' })).toBe(false);
  });

  it('hints only when the box is known not to serve it', () => {
    expect(boxOffHint('smb', both)).toBe('');
    expect(boxOffHint('smb', undefined)).toBe('');
    expect(boxOffHint('nfs', smbOnly)).toMatch(/^NFS off on this box/);
    expect(boxOffHint('nfs', smbOnly)).toContain('[nfs] enabled = true');
  });
});

describe('servicesDown', () => {
  it('maps the service alerts', () => {
    expect([...servicesDown([{ id: 'service.nfs_down' }, { id: 'cloud.unreachable' }])]).toEqual(['nfs']);
    expect(servicesDown(null).size).toBe(0);
  });
});
