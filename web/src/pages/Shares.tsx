// Shares: the list with status (GET /shares), refresh of cloud shares (a job), delete with
// confirmation (409 while files wait for upload: "Delete anyway" sends force=true), and the
// form that makes (POST /shares) or changes (PATCH /shares/{name}) a share. Protocols are shown
// as the box serves them (lib/protocols.ts: SMB or NFS off on the box is said so). A cloud
// share's edit page also looks up one file's cache state (GET /shares/{name}/file).

import { useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import type { Device, RefreshResult, Share, StorageAccount } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useForm, useJob, useLoad } from '../app/hooks';
import { CancelAnd, Dialog } from '../components/Dialog';
import { JobProgress } from '../components/JobProgress';
import {
  ActionsHeader,
  Button,
  CheckboxField,
  Empty,
  ErrorBanner,
  Loading,
  PageHeader,
  RowActions,
  Section,
  SelectField,
  StatusWord,
  TextAreaField,
  TextField,
} from '../components/ui';
import { formatBytes, formatCount, formatDuration } from '../lib/format';
import { boxOffHint, protocolsLabel, servicesDown } from '../lib/protocols';
import { all, cacheSize, container, integer, nfsClients, pinnedPaths, required, shareName, splitList } from '../lib/validate';
import { href, navigate } from '../router';

function ShareState({ share }: { share: Share }) {
  switch (share.status.state) {
    case 'healthy':
      return <StatusWord tone="ok">Healthy</StatusWord>;
    case 'no_target':
      return <StatusWord tone="warn">No cloud target</StatusWord>;
    case 'cloud_unreachable':
      return <StatusWord tone="fail">Cloud unreachable</StatusWord>;
  }
}

function Protocols({ share, device, down }: { share: Share; device: Device | null; down: ReturnType<typeof servicesDown> }) {
  const label = protocolsLabel(share, device?.endpoints, down);
  return (
    <>
      {label.text}
      {label.note ? <div class="muted small">{label.note}</div> : null}
    </>
  );
}

function RefreshSummary({ r }: { r: RefreshResult }) {
  return (
    <p class="muted">
      Listed {formatCount(r.listed)}: {formatCount(r.added)} added, {formatCount(r.changed)} changed,{' '}
      {formatCount(r.deleted)} deleted, {formatCount(r.unchanged)} unchanged
      {r.conflicts ? `, ${formatCount(r.conflicts)} conflicts` : ''}
      {r.failed ? `, ${formatCount(r.failed)} failed` : ''} in {formatDuration(r.duration_ms / 1000)}.
    </p>
  );
}

export function SharesPage() {
  const { client, me, device, alerts } = useApp();
  const down = servicesDown(alerts);
  const shares = useLoad((signal) => client.get<{ shares: Share[] }>('/shares', { signal }), [], 15000);
  const refresh = useJob();
  const [refreshing, setRefreshing] = useState('');
  const [deleting, setDeleting] = useState<string | null>(null);
  const [deleteError, setDeleteError] = useState<ApiError | null>(null);
  const del = useAction();
  const isAdmin = atLeast(me.role, 'admin');
  const isOperator = atLeast(me.role, 'operator');

  const startRefresh = async (name: string) => {
    setRefreshing(name);
    await refresh.start(() => client.post<{ job: string }>(`/shares/${encodeURIComponent(name)}/refresh`, {}));
    void shares.reload();
  };

  const doDelete = async (force: boolean) => {
    if (!deleting) return;
    setDeleteError(null);
    await del.run(async () => {
      try {
        await client.del(`/shares/${encodeURIComponent(deleting)}`, { query: force ? { force: 'true' } : undefined });
      } catch (e) {
        if (e instanceof ApiError) {
          setDeleteError(e);
          return;
        }
        throw e;
      }
      setDeleting(null);
      await shares.reload();
    });
  };
  const waiting = deleteError?.status === 409 && /wait(ing)? for upload/.test(deleteError.apiMessage);

  const list = shares.data?.shares;
  const pageError = deleting ? '' : refresh.error || shares.error;
  return (
    <div class="page">
      <PageHeader title="Shares">
        {isAdmin ? (
          <Button variant="primary" onClick={() => navigate(href('shareNew'))}>
            New share
          </Button>
        ) : null}
      </PageHeader>
      <ErrorBanner message={pageError} />
      {refreshing && (refresh.running || refresh.job) ? (
        <Section title={`Refresh of ${refreshing}`} class="job-card">
          <JobProgress
            label={`Refresh of ${refreshing}`}
            job={refresh.job}
            running={refresh.running}
            retrying={refresh.retrying}
            onCancel={isOperator ? () => void refresh.cancel() : undefined}
          />
          {refresh.job?.state === 'succeeded' && refresh.job.result ? (
            <RefreshSummary r={refresh.job.result as RefreshResult} />
          ) : null}
          {refresh.job?.state === 'failed' ? <p class="field-error">{refresh.job.error}</p> : null}
        </Section>
      ) : null}
      {list === undefined ? (
        shares.error ? null : <Loading />
      ) : list.length === 0 ? (
        <Empty>No shares yet.{isAdmin ? ' Make one with “New share”.' : ''}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Protocols</th>
                <th scope="col">Cloud target</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">
                  Pending
                </th>
                <th scope="col">Cache</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <tr key={s.name}>
                  <th scope="row">{s.name}</th>
                  <td>{s.kind}</td>
                  <td>
                    <Protocols share={s} device={device} down={down} />
                  </td>
                  <td>
                    {s.kind === 'local'
                      ? '—'
                      : s.target
                        ? `${s.target.storage_account || s.target.type} / ${s.target.container}`
                        : 'none (files wait)'}
                  </td>
                  <td>
                    <ShareState share={s} />
                  </td>
                  <td class="num">{formatCount(s.status.files_pending)}</td>
                  <td>
                    {s.kind === 'cloud'
                      ? `${formatBytes(s.status.resident_bytes)} on the box, ${formatCount(s.status.stub_files)} stubs`
                      : `${formatBytes(s.status.used_bytes)} on the box`}
                  </td>
                  <RowActions>
                    {isOperator ? (
                      <Button
                        aria-label={`Refresh ${s.name}`}
                        disabled={s.kind !== 'cloud' || !s.target || refresh.running}
                        title={s.kind !== 'cloud' ? 'A local share has no cloud to refresh from' : undefined}
                        busy={refresh.running && refreshing === s.name}
                        onClick={() => void startRefresh(s.name)}
                      >
                        Refresh
                      </Button>
                    ) : null}
                    {isAdmin ? (
                      <>
                        <Button aria-label={`Edit ${s.name}`} onClick={() => navigate(href('shareEdit', { name: s.name }))}>
                          Edit
                        </Button>
                        <Button
                          variant="danger"
                          aria-label={`Delete ${s.name}`}
                          onClick={() => {
                            setDeleteError(null);
                            del.setError('');
                            setDeleting(s.name);
                          }}
                        >
                          Delete
                        </Button>
                      </>
                    ) : null}
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting ? (
        <Dialog
          title={`Delete share ${deleting}?`}
          onClose={() => setDeleting(null)}
          actions={
            <CancelAnd onCancel={() => setDeleting(null)} busy={del.busy}>
              {waiting ? (
                <Button variant="danger" busy={del.busy} onClick={() => void doDelete(true)}>
                  Delete anyway
                </Button>
              ) : (
                <Button variant="danger" busy={del.busy} onClick={() => void doDelete(false)}>
                  Delete
                </Button>
              )}
            </CancelAnd>
          }
        >
          <p>
            The share and its files are removed from the box; SMB and NFS clients lose it. Copies already in the
            cloud stay.
          </p>
          <ErrorBanner
            message={deleteError?.message || del.error}
            hint={waiting ? 'Delete anyway loses the files that have not reached the cloud.' : undefined}
          />
        </Dialog>
      ) : null}
    </div>
  );
}

type ShareValues = {
  name: string;
  kind: string;
  account: string;
  container: string;
  smb: string;
  nfs: string;
  nfsClients: string;
  nfsReadOnly: string;
  refresh: string;
  high: string;
  low: string;
  pinned: string;
};

const kBlank: ShareValues = {
  name: '',
  kind: 'cloud',
  account: '',
  container: '',
  smb: 'true',
  nfs: 'false',
  nfsClients: '',
  nfsReadOnly: 'false',
  refresh: '0',
  high: '',
  low: '',
  pinned: '',
};

function valuesOf(s: Share): ShareValues {
  return {
    name: s.name,
    kind: s.kind,
    account: s.target?.storage_account ?? '',
    container: s.target?.container ?? '',
    smb: String(s.smb),
    nfs: String(s.nfs),
    nfsClients: s.nfs_clients.join(', '),
    nfsReadOnly: String(s.nfs_read_only),
    refresh: String(s.refresh_ttl_s),
    high: s.cache.high_watermark,
    low: s.cache.low_watermark,
    pinned: s.cache.pinned.join('\n'),
  };
}

export function ShareFormPage({ name }: { name?: string }) {
  const { client, me, device } = useApp();
  const editing = name !== undefined;
  const form = useForm<ShareValues>(kBlank);
  const [loadedKind, setLoadedKind] = useState('');
  const loaded = useLoad(
    async (signal) => {
      const [accounts, share] = await Promise.all([
        client.get<{ storage_accounts: StorageAccount[] }>('/storage-accounts', { signal }),
        editing ? client.get<Share>(`/shares/${encodeURIComponent(name!)}`, { signal }) : Promise.resolve(null),
      ]);
      if (share) {
        form.setValues(valuesOf(share));
        setLoadedKind(share.kind);
      }
      else if (accounts.storage_accounts.length === 1) {
        const only = accounts.storage_accounts[0]!.name;
        form.setValues((v) => (v.account === '' ? { ...v, account: only } : v));
      }
      return accounts.storage_accounts;
    },
    [name],
  );
  const save = useAction();
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;
  const accounts = loaded.data ?? [];
  const cloud = v.kind === 'cloud';
  const account = accounts.find((a) => a.name === v.account);
  const bool = (key: keyof ShareValues) => ({
    checked: v[key] === 'true',
    onChecked: (c: boolean) => set(key)(String(c)),
  });

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = form.validate(
      {
        name: editing ? undefined : all(required('Name'), shareName),
        container: cloud && v.account
          ? all(required('Container'), container)
          : (c: string) => (cloud && c.trim() ? 'Choose a storage account for the container' : ''),
        nfsClients,
        refresh: integer(0, 31536000),
        high: cacheSize,
        low: cacheSize,
        pinned: pinnedPaths,
      },
      ref.current,
    );
    if (!ok) return;
    const body: Record<string, unknown> = {
      smb: v.smb === 'true',
      nfs: v.nfs === 'true',
      nfs_read_only: v.nfsReadOnly === 'true',
    };
    if (v.nfs === 'true' || editing || v.nfsClients.trim()) body['nfs_clients'] = splitList(v.nfsClients);
    if (cloud) {
      body['storage_account'] = v.account;
      if (v.account) body[account?.type === 's3' ? 'bucket' : 'container'] = v.container.trim();
      body['refresh_ttl_s'] = Number(v.refresh || '0');
      body['cache'] = {
        high_watermark: v.high.trim(),
        low_watermark: v.low.trim(),
        pinned: v.pinned
          .split('\n')
          .map((p) => p.trim())
          .filter(Boolean),
      };
    }
    const done = await save.run(async () => {
      if (editing) {
        await client.patch(`/shares/${encodeURIComponent(name!)}`, body);
      } else {
        await client.post('/shares', { name: v.name.trim(), kind: v.kind, ...body });
      }
      return true;
    });
    if (done) navigate(href('shares'));
  };

  const title = editing ? `Edit share ${name}` : 'New share';
  if (!atLeast(me.role, 'admin')) {
    return (
      <div class="page">
        <PageHeader title={title} />
        <ErrorBanner message={`Your role (${me.role}) cannot do this`} />
      </div>
    );
  }
  return (
    <div class="page">
      <PageHeader title={title} />
      <ErrorBanner message={save.error || loaded.error} />
      {loaded.loading && !loaded.data ? (
        <Loading />
      ) : (
        <form class="card form" ref={ref} onSubmit={submit} noValidate aria-label={title}>
          <fieldset class="form-section">
            <legend>Share</legend>
            <div class="form-grid">
              <TextField
                label="Name"
                value={v.name}
                onValue={set('name')}
                error={errors.name}
                disabled={editing}
                autoCapitalize="none"
                spellcheck={false}
                hint={editing ? undefined : 'Also the SMB share, NFS export and bucket name.'}
              />
              <SelectField
                label="Kind"
                value={v.kind}
                onValue={set('kind')}
                disabled={editing}
                options={[
                  { value: 'local', label: 'local' },
                  { value: 'cloud', label: 'cloud' },
                ]}
                hint={cloud ? 'Files upload to the cloud and can be evicted from the box.' : 'Files stay on the box only.'}
              />
            </div>
          </fieldset>
          {cloud ? (
            <fieldset class="form-section">
              <legend>Cloud target</legend>
              <div class="form-grid">
                <SelectField
                  label="Storage account"
                  value={v.account}
                  onValue={set('account')}
                  options={[
                    { value: '', label: 'None: files wait on the box' },
                    ...accounts.map((a) => ({ value: a.name, label: `${a.name} (${a.type})` })),
                  ]}
                  hint={accounts.length === 0 ? <a href={href('accounts')}>Add a storage account first</a> : undefined}
                />
                <TextField
                  label="Container"
                  value={v.container}
                  onValue={set('container')}
                  error={errors.container}
                  autoCapitalize="none"
                  spellcheck={false}
                  hint={account?.type === 's3' ? 'The S3 bucket.' : account?.type === 'localfs' ? 'A folder in the account’s folder.' : 'The Azure container.'}
                />
                <TextField
                  label="Refresh every (seconds)"
                  type="number"
                  min={0}
                  inputMode="numeric"
                  value={v.refresh}
                  onValue={set('refresh')}
                  error={errors.refresh}
                  hint="Look for changes made in the cloud when a folder was listed longer ago. 0: only on request."
                />
              </div>
            </fieldset>
          ) : null}
          <fieldset class="form-section">
            <legend>Access</legend>
            <div class="form-grid">
              <div class="check-group">
                <CheckboxField
                  label="SMB"
                  {...bool('smb')}
                  hint={<BoxHint text="Windows and macOS file sharing." off={boxOffHint('smb', device?.endpoints)} />}
                />
                <CheckboxField
                  label="NFS"
                  {...bool('nfs')}
                  hint={<BoxHint text="Linux and VMware clients." off={boxOffHint('nfs', device?.endpoints)} />}
                />
                <CheckboxField label="Read-only over NFS" {...bool('nfsReadOnly')} />
              </div>
              <TextField
                label="NFS clients"
                value={v.nfsClients}
                onValue={set('nfsClients')}
                error={errors.nfsClients}
                placeholder="10.0.0.0/24, 192.168.1.20"
                spellcheck={false}
                hint="Comma-separated addresses, networks or host names. Empty: every client."
              />
            </div>
          </fieldset>
          {cloud ? (
            <fieldset class="form-section">
              <legend>Cache</legend>
              <div class="form-grid">
                <TextField
                  label="High watermark"
                  value={v.high}
                  onValue={set('high')}
                  error={errors.high}
                  placeholder="box default"
                  spellcheck={false}
                  hint="Evict uploaded files when the share holds more than this (e.g. 500GiB or 80%)."
                />
                <TextField
                  label="Low watermark"
                  value={v.low}
                  onValue={set('low')}
                  error={errors.low}
                  placeholder="box default"
                  spellcheck={false}
                  hint="… down to this."
                />
                <TextAreaField
                  label="Pinned paths"
                  value={v.pinned}
                  onValue={set('pinned')}
                  error={errors.pinned}
                  hint="One per line, relative to the share; globs allowed (projects/**/*.db). Never evicted."
                />
              </div>
            </fieldset>
          ) : null}
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={save.busy}>
              {editing ? 'Save share' : 'Create share'}
            </Button>
            <Button onClick={() => navigate(href('shares'))} disabled={save.busy}>
              Cancel
            </Button>
          </div>
        </form>
      )}
      {editing && loadedKind === 'cloud' ? <FileStateSection share={name!} /> : null}
    </div>
  );
}

// A checkbox's hint, and beside it (muted, on its own line) that the box does not run it.
function BoxHint({ text, off }: { text: string; off: string }) {
  return (
    <>
      {text}
      {off ? <span class="hint-off">{off}</span> : null}
    </>
  );
}

interface FileState {
  path: string;
  state: 'directory' | 'local' | 'stub' | 'pinned' | 'resident' | 'dirty';
  size: number;
}

const kFileStates: Record<FileState['state'], { word: string; tone: 'ok' | 'warn' | 'muted'; meaning: string }> = {
  resident: { word: 'On the box and in the cloud', tone: 'ok', meaning: 'Uploaded; may be evicted from the box when space is needed.' },
  pinned: { word: 'Pinned on the box', tone: 'ok', meaning: 'Uploaded and never evicted (a pinned path).' },
  dirty: { word: 'Waiting for upload', tone: 'warn', meaning: 'Changed on the box and not in the cloud yet.' },
  stub: { word: 'Only in the cloud', tone: 'muted', meaning: 'Evicted: opening it recalls it from the cloud.' },
  local: { word: 'On the box only', tone: 'ok', meaning: 'A local share’s file.' },
  directory: { word: 'A folder', tone: 'muted', meaning: 'Look up a file inside it.' },
};

// Where one file of a cloud share is: on the box, only in the cloud, or waiting for upload.
function FileStateSection({ share }: { share: string }) {
  const { client } = useApp();
  const [path, setPath] = useState('');
  const [fieldError, setFieldError] = useState('');
  const [found, setFound] = useState<FileState | null>(null);
  const look = useAction();

  const submit = async (e: Event) => {
    e.preventDefault();
    const p = path.trim().replace(/^\/+/, '');
    setFound(null);
    if (!p) {
      setFieldError('Path in the share is required');
      document.getElementById('file-path-input')?.focus();
      return;
    }
    setFieldError('');
    const r = await look.run(() =>
      client.get<FileState>(`/shares/${encodeURIComponent(share)}/file`, { query: { path: p } }),
    );
    if (r) setFound(r);
  };

  const s = found ? kFileStates[found.state] : null;
  return (
    <Section title="File state" id="file-state">
      <p class="muted section-lead">Whether a file of {share} is on the box, only in the cloud, or waiting for upload.</p>
      <form class="inline-form lookup-form" onSubmit={submit} noValidate aria-label="File state">
        <TextField
          id="file-path-input"
          label="Path in the share"
          value={path}
          onValue={(v) => {
            setPath(v);
            setFieldError('');
          }}
          error={fieldError}
          placeholder="projects/report.pdf"
          spellcheck={false}
          autoCapitalize="none"
        />
        <Button type="submit" busy={look.busy}>
          Look up
        </Button>
      </form>
      {look.error ? (
        <p class="field-error" role="alert">
          {look.error}
        </p>
      ) : null}
      {found && s ? (
        <dl class="kv file-state" aria-live="polite">
          <div class="kv-row">
            <dt>Path</dt>
            <dd>
              <code>{found.path}</code>
            </dd>
          </div>
          <div class="kv-row">
            <dt>State</dt>
            <dd>
              <StatusWord tone={s.tone}>{s.word}</StatusWord> <span class="muted">({found.state})</span>
              <div class="muted small">{s.meaning}</div>
            </dd>
          </div>
          {found.state !== 'directory' ? (
            <div class="kv-row">
              <dt>Size</dt>
              <dd>{formatBytes(found.size)}</dd>
            </div>
          ) : null}
        </dl>
      ) : null}
    </Section>
  );
}
