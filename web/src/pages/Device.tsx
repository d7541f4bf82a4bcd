// Device: the box's name, version, clock and network; its TLS certificate (upload or
// regenerate); encryption (rotate the master key, download the recovery key); power.

import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import type { Certificate, Device, Encryption } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useLoad } from '../app/hooks';
import { CancelAnd, Dialog } from '../components/Dialog';
import { Button, CheckboxField, ErrorBanner, Loading, Notice, PageHeader, Section, SelectField, StatusWord, TextField } from '../components/ui';
import { buildCertUpload } from '../lib/certs';
import { saveBlob } from '../lib/download';
import { formatDuration, formatTime } from '../lib/format';
import { deviceName } from '../lib/validate';

function Row({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="kv-row">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function NameSection({ device, onSaved, isAdmin }: { device: Device; onSaved: (d: Device) => void; isAdmin: boolean }) {
  const { client, refreshDevice } = useApp();
  const [name, setName] = useState(device.name);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const save = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    const m = deviceName(name);
    setError(m);
    if (m) {
      document.getElementById('device-name-input')?.focus();
      return;
    }
    const d = await save.run(() => client.patch<Device>('/device', { name: name.trim() }));
    if (d) {
      onSaved(d);
      setName(d.name);
      refreshDevice();
      setNote('Name saved.');
    }
  };
  return (
    <Section title="Name">
      <ErrorBanner message={save.error} />
      <form class="form inline-form" onSubmit={submit} noValidate>
        <TextField
          id="device-name-input"
          label="Device name"
          value={name}
          onValue={(v) => {
            setName(v);
            setError('');
          }}
          error={error}
          disabled={!isAdmin}
          spellcheck={false}
          hint={`Shown in the header and in the certificate’s names. Empty: the host name (${device.hostname}).`}
        />
        {isAdmin ? (
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={save.busy}>
              Save name
            </Button>
            {note ? <span class="saved-note" role="status">{note}</span> : null}
          </div>
        ) : null}
      </form>
    </Section>
  );
}

function AboutSection({ device, fetchedAt }: { device: Device; fetchedAt: number }) {
  const skew = device.time_unix - Math.round(fetchedAt / 1000);
  return (
    <Section title="About">
      <dl class="kv">
        <Row label="Version">{device.version}</Row>
        <Row label="Host name">{device.hostname}</Row>
        <Row label="Box time">
          {formatTime(device.time, { utc: true, seconds: true })}
          {Math.abs(skew) > 120 ? (
            <span class="status status-warn">
              <span class="dot" aria-hidden="true" /> {formatDuration(Math.abs(skew))} {skew > 0 ? 'ahead of' : 'behind'} this
              computer
            </span>
          ) : null}
        </Row>
        <Row label="Uptime">{formatDuration(device.uptime_s)}</Row>
        <Row label="Endpoints">
          <ul class="plain">
            {Object.entries(device.endpoints).map(([k, v]) => (
              <li key={k}>
                <span class="muted">{k === 'api' ? 'API and web UI' : k.toUpperCase()}:</span> <code>{v}</code>
              </li>
            ))}
          </ul>
        </Row>
      </dl>
      <h3>Network interfaces</h3>
      <div class="table-wrap">
        <table class="table table-compact">
          <thead>
            <tr>
              <th scope="col">Interface</th>
              <th scope="col">State</th>
              <th scope="col">Addresses</th>
            </tr>
          </thead>
          <tbody>
            {device.network.map((n) => (
              <tr key={n.name}>
                <th scope="row">{n.name}</th>
                <td>{n.up ? <StatusWord tone="ok">up</StatusWord> : <StatusWord tone="muted">down</StatusWord>}</td>
                <td class="wrap-anywhere">{n.addresses.length ? n.addresses.join(', ') : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

function FileField({ label, accept, onFile, error }: { label: string; accept: string; onFile: (f: File | null) => void; error?: string }) {
  const id = `file-${label.replace(/[^a-z]/gi, '').toLowerCase()}`;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        type="file"
        accept={accept}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={error ? `${id}-err` : undefined}
        onChange={(e) => onFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
      />
      {error ? (
        <p class="field-error" id={`${id}-err`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

function CertificateSection({ isAdmin }: { isAdmin: boolean }) {
  const { client } = useApp();
  const cert = useLoad((signal) => client.get<Certificate>('/certificates', { signal }), []);
  const upload = useAction();
  const regen = useAction();
  const [certFile, setCertFile] = useState<File | null>(null);
  const [keyFile, setKeyFile] = useState<File | null>(null);
  const [pfxPassword, setPfxPassword] = useState('');
  const [errors, setErrors] = useState<{ cert?: string; key?: string }>({});
  const [note, setNote] = useState('');
  const formRef = useRef<HTMLFormElement>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    const read = async (f: File | null) => (f ? { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) } : null);
    const built = buildCertUpload(await read(certFile), await read(keyFile), pfxPassword);
    if (!built.ok) {
      setErrors({ [built.field]: built.error });
      setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
      return;
    }
    setErrors({});
    const c = await upload.run(() => client.put<Certificate>('/certificates', built.body));
    if (c) {
      cert.setData(c);
      setNote('Certificate installed: new connections get it now.');
      formRef.current?.reset();
      setCertFile(null);
      setKeyFile(null);
      setPfxPassword('');
    }
  };

  const regenerate = async () => {
    setNote('');
    const c = await regen.run(() => client.post<Certificate>('/certificates/regenerate', {}));
    if (c) {
      cert.setData(c);
      setNote('A new self-signed certificate is in use. Browsers and clients must trust it again.');
    }
  };

  const c = cert.data;
  const expiresInDays = c ? Math.floor((Date.parse(c.not_after) - Date.now()) / 86400000) : 0;
  return (
    <Section title="Certificate">
      <ErrorBanner message={upload.error || regen.error || cert.error} />
      {note ? <Notice tone="ok">{note}</Notice> : null}
      {!c ? (
        cert.error ? null : <Loading />
      ) : (
        <dl class="kv">
          <Row label="Subject">{c.subject}</Row>
          <Row label="Issuer">
            {c.issuer}
            {c.self_signed ? <span class="muted"> (self-signed)</span> : null}
          </Row>
          <Row label="Names">{c.names.join(', ')}</Row>
          <Row label="Valid">
            {formatTime(c.not_before)} to {formatTime(c.not_after)}{' '}
            {expiresInDays < 0 ? (
              <StatusWord tone="fail">expired</StatusWord>
            ) : expiresInDays < 30 ? (
              <StatusWord tone="warn">expires in {expiresInDays} days</StatusWord>
            ) : (
              <StatusWord tone="ok">valid</StatusWord>
            )}
          </Row>
          <Row label="SHA-256 fingerprint">
            <code class="fingerprint">{c.sha256_fingerprint}</code>
          </Row>
          <Row label="Key">{c.key_type}</Row>
          <Row label="Used by">{c.in_use_by.join(', ')}</Row>
        </dl>
      )}
      {isAdmin ? (
        <>
          <form class="subform" ref={formRef} onSubmit={submit} noValidate aria-labelledby="upload-cert-title">
            <h3 id="upload-cert-title">Upload certificate</h3>
            <p class="muted section-lead">
              A PEM certificate (with its chain) and its unencrypted PEM key, or one PFX / PKCS#12 file with its password.
              The box checks that they match and are valid before it uses them.
            </p>
            <div class="form-grid form-grid-3">
              <FileField
                label="Certificate (PEM or PFX)"
                accept=".pem,.crt,.cer,.pfx,.p12"
                onFile={(f) => {
                  setCertFile(f);
                  setErrors({});
                }}
                error={errors.cert}
              />
              <FileField
                label="Private key (PEM)"
                accept=".pem,.key"
                onFile={(f) => {
                  setKeyFile(f);
                  setErrors({});
                }}
                error={errors.key}
              />
              <TextField
                label="PFX password"
                type="password"
                value={pfxPassword}
                onValue={setPfxPassword}
                autoComplete="off"
                hint="Only for a PFX file."
              />
            </div>
            <div class="form-actions">
              <Button type="submit" variant="primary" busy={upload.busy}>
                Upload certificate
              </Button>
            </div>
          </form>
          <div class="subform">
            <h3>New self-signed certificate</h3>
            <p class="muted section-lead">
              Replaces the certificate with a new self-signed one for the box’s names. Browsers and S3/Blob clients that
              trusted the old one must trust the new one (this page may ask again after a reload).
            </p>
            <Button busy={regen.busy} onClick={() => void regenerate()}>
              Regenerate certificate
            </Button>
          </div>
        </>
      ) : null}
    </Section>
  );
}

function EncryptionSection({ isAdmin }: { isAdmin: boolean }) {
  const { client } = useApp();
  const enc = useLoad((signal) => client.get<Encryption>('/encryption', { signal }), []);
  const rotate = useAction();
  const dl = useAction();
  const [note, setNote] = useState('');
  const e = enc.data;

  const doRotate = async () => {
    setNote('');
    const r = await rotate.run(() => client.post<{ master_key_id: number }>('/encryption/rotate', {}));
    if (r) {
      setNote(`The master key is now key ${r.master_key_id}. Download the new recovery key and keep it off the box.`);
      void enc.reload();
    }
  };
  const download = async () => {
    await dl.run(async () => {
      const { blob, filename } = await client.download('/encryption/recovery-key', {}, 'fieldstack-master.key');
      saveBlob(blob, filename);
    });
  };

  return (
    <Section title="Encryption">
      <ErrorBanner message={rotate.error || dl.error || enc.error} />
      {note ? <Notice tone="ok">{note}</Notice> : null}
      {!e ? (
        enc.error ? null : <Loading />
      ) : (
        <dl class="kv">
          <Row label="Data at rest">
            {e.enabled ? <StatusWord tone="ok">encrypted (AES-256-GCM)</StatusWord> : <StatusWord tone="warn">not encrypted</StatusWord>}
          </Row>
          {e.enabled ? <Row label="Master key">{e.passphrase ? `key ${e.master_key_id}, from a passphrase` : `key ${e.master_key_id}`}</Row> : null}
        </dl>
      )}
      {isAdmin && e?.enabled ? (
        <>
          <p class="muted section-lead">
            Without the recovery key (or the passphrase) the data cannot be read after the box’s disk is lost. Keep a copy
            off the box. Rotating makes a new master key without rewriting data; download the recovery key again after it.
          </p>
          <div class="form-actions">
            <Button busy={rotate.busy} onClick={() => void doRotate()}>
              Rotate master key
            </Button>
            <Button busy={dl.busy} disabled={e.passphrase} onClick={() => void download()}>
              Download recovery key
            </Button>
          </div>
          {e.passphrase ? <p class="field-hint">The key comes from a passphrase: the passphrase is the recovery key.</p> : null}
        </>
      ) : null}
    </Section>
  );
}

function PowerSection({ device, onChanged }: { device: Device; onChanged: (d: Device) => void }) {
  const { client, powerOff } = useApp();
  const [asking, setAsking] = useState<'restart' | 'shutdown' | null>(null);
  const [scope, setScope] = useState<'daemon' | 'host'>('daemon');
  const act = useAction();
  const hostPower = useAction();

  const confirm = async () => {
    if (!asking) return;
    const action = asking;
    const ok = await act.run(async () => {
      // The boot_id now: the restarted box answers with another one (WaitForBox).
      let before: string | undefined;
      try {
        before = (await client.get<{ boot_id?: string }>('/setup', { auth: false })).boot_id;
      } catch {
        before = undefined; // keep the one of the page's start
      }
      await client.post('/power', { action, scope: device.host_power ? scope : 'daemon' });
      return { before };
    });
    if (ok) {
      setAsking(null);
      powerOff(action, ok.before);
    }
  };

  return (
    <Section title="Power">
      <ErrorBanner message={asking ? '' : hostPower.error} />
      <p class="muted section-lead">
        The box finishes the upload in progress and closes open files before it stops. SMB and NFS clients are
        disconnected until it is back.
      </p>
      <div class="form-actions">
        <Button
          onClick={() => {
            act.setError('');
            setScope('daemon');
            setAsking('restart');
          }}
        >
          Restart
        </Button>
        <Button
          variant="danger"
          onClick={() => {
            act.setError('');
            setScope('daemon');
            setAsking('shutdown');
          }}
        >
          Shut down
        </Button>
      </div>
      <CheckboxField
        label="Allow restarting and shutting down the whole machine"
        checked={device.host_power}
        disabled={hostPower.busy}
        onChecked={(c) =>
          void hostPower.run(async () => {
            onChanged(await client.patch<Device>('/device', { host_power: c }));
          })
        }
        hint="Off: Restart and Shut down act on the Fieldstack service only."
      />
      {asking ? (
        <Dialog
          title={asking === 'restart' ? 'Restart the box?' : 'Shut down the box?'}
          onClose={() => setAsking(null)}
          actions={
            <CancelAnd onCancel={() => setAsking(null)} busy={act.busy}>
              <Button variant={asking === 'shutdown' ? 'danger' : 'primary'} busy={act.busy} onClick={() => void confirm()}>
                Confirm
              </Button>
            </CancelAnd>
          }
        >
          {device.host_power ? (
            <SelectField
              label="What"
              value={scope}
              onValue={(v) => setScope(v as 'daemon' | 'host')}
              options={[
                { value: 'daemon', label: 'The Fieldstack service' },
                { value: 'host', label: 'The whole machine' },
              ]}
            />
          ) : null}
          <p>
            {asking === 'restart'
              ? 'Everyone is signed out; the page waits for the box to come back.'
              : 'The box stops. It starts again only at the box itself (or its host): make sure someone can get to it.'}
          </p>
          <ErrorBanner message={act.error} />
        </Dialog>
      ) : null}
    </Section>
  );
}

export function DevicePage() {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const [fetchedAt, setFetchedAt] = useState(Date.now());
  const dev = useLoad(
    async (signal) => {
      const d = await client.get<Device>('/device', { signal });
      setFetchedAt(Date.now());
      return d;
    },
    [],
    30000,
  );
  const d = dev.data;
  return (
    <div class="page">
      <PageHeader title="Device" />
      <ErrorBanner message={dev.error} />
      {!d ? (
        dev.error ? null : <Loading />
      ) : (
        <div class="device-grid">
          <NameSection device={d} onSaved={dev.setData} isAdmin={isAdmin} />
          <AboutSection device={d} fetchedAt={fetchedAt} />
          <CertificateSection isAdmin={isAdmin} />
          <EncryptionSection isAdmin={isAdmin} />
          {isAdmin ? <PowerSection device={d} onChanged={dev.setData} /> : null}
        </div>
      )}
    </div>
  );
}
