// Logs: the copy (uploads), refresh, errors, audit (file changes) and API audit logs, newest
// first, filtered by share, result and path prefix, a page at a time; Download fetches the same
// filter as JSON lines (with the token) and saves it.

import { useEffect, useState } from 'preact/hooks';
import type { LogEntry, LogPage, Share } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useLoad } from '../app/hooks';
import { Button, CheckboxField, Empty, ErrorBanner, Loading, PageHeader, SelectField, TextField } from '../components/ui';
import { saveBlob } from '../lib/download';
import { formatBytes, formatTime } from '../lib/format';

const kPageSize = 50;

type Kind = 'copy' | 'refresh' | 'errors' | 'audit' | 'api';

const kKinds: Array<{ value: Kind; label: string }> = [
  { value: 'copy', label: 'Copy' },
  { value: 'refresh', label: 'Refresh' },
  { value: 'errors', label: 'Errors' },
  { value: 'audit', label: 'Audit' },
  { value: 'api', label: 'API' },
];

function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

interface Column {
  title: string;
  cell: (e: LogEntry) => string;
  cls?: string;
}

const kTime: Column = { title: 'Time', cell: (e) => formatTime(str(e['time']), { seconds: true }), cls: 'nowrap' };

function columnsOf(kind: Kind): Column[] {
  if (kind === 'audit') {
    return [
      kTime,
      { title: 'Share', cell: (e) => str(e['share']) },
      { title: 'Operation', cell: (e) => str(e['op']) },
      {
        title: 'Path',
        cell: (e) => (e['old_path'] ? `${str(e['old_path'])} → ${str(e['path'])}` : str(e['path'])),
        cls: 'wrap-anywhere',
      },
      { title: 'Via', cell: (e) => str(e['via']) },
      { title: 'User', cell: (e) => str(e['user']) || (e['uid'] !== undefined ? `uid ${str(e['uid'])}` : '') },
      { title: 'Client', cell: (e) => str(e['client']) || str(e['process']) },
    ];
  }
  if (kind === 'api') {
    return [
      kTime,
      { title: 'User', cell: (e) => str(e['user']) },
      { title: 'Method', cell: (e) => str(e['method']) },
      { title: 'Path', cell: (e) => str(e['path']), cls: 'wrap-anywhere' },
      { title: 'Status', cell: (e) => str(e['status']), cls: 'num' },
      { title: 'Address', cell: (e) => str(e['peer']) },
    ];
  }
  return [
    kTime,
    { title: 'Share', cell: (e) => str(e['share']) },
    { title: 'Path', cell: (e) => str(e['path']), cls: 'wrap-anywhere' },
    { title: 'Size', cell: (e) => (typeof e['size'] === 'number' ? formatBytes(e['size']) : str(e['size'])), cls: 'num nowrap' },
    { title: 'Result', cell: (e) => str(e['result']) },
    { title: 'Error code', cell: (e) => str(e['code']), cls: 'num' },
    { title: 'Message', cell: (e) => str(e['message']), cls: 'wrap-anywhere' },
  ];
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function LogsPage() {
  const { client, me } = useApp();
  const [kind, setKindRaw] = useState<Kind>('copy');
  const [lastKind, setLastKind] = useState<Kind>('copy');
  const [share, setShareRaw] = useState('');
  const [result, setResultRaw] = useState('');
  const [path, setPathRaw] = useState('');
  const [offset, setOffset] = useState(0);
  // A new filter starts from the newest entries.
  const resetting =
    <T,>(f: (v: T) => void) =>
    (v: T) => {
      f(v);
      setOffset(0);
    };
  const setKind = resetting(setKindRaw);
  const setShare = resetting(setShareRaw);
  const setResult = resetting(setResultRaw);
  const setPath = resetting(setPathRaw);
  const resultQ = useDebounced(result.trim(), 350);
  const pathQ = useDebounced(path, 350);
  const download = useAction();

  const shares = useLoad((signal) => client.get<{ shares: Share[] }>('/shares', { signal }), []);
  const filters = { share, result: resultQ, path: pathQ };
  const page = useLoad(
    (signal) => client.get<LogPage>(`/logs/${kind}`, { query: { ...filters, limit: kPageSize, offset }, signal }),
    [kind, share, resultQ, pathQ, offset],
  );


  const errorsOnly = kind === 'errors';
  const cols = columnsOf(kind);
  const entries = page.data?.entries;

  const save = async () => {
    await download.run(async () => {
      const { blob, filename } = await client.download(
        `/logs/${kind}`,
        { query: { ...filters, format: 'jsonl', limit: 100000 } },
        `fieldstack-${kind}.log`,
      );
      saveBlob(blob, filename);
    });
  };

  const shareOptions = [
    { value: '', label: 'All shares' },
    ...(shares.data?.shares ?? []).map((s) => ({ value: s.name, label: s.name })),
  ];
  const noShareFilter = kind === 'audit' || kind === 'api';
  return (
    <div class="page">
      <PageHeader title="Logs">
        <Button busy={download.busy} onClick={() => void save()}>
          Download
        </Button>
      </PageHeader>
      <ErrorBanner message={download.error || page.error} />
      <form class="card filters" onSubmit={(e) => e.preventDefault()}>
        <div class="filters-grid">
          <SelectField
            label="Log"
            value={kind}
            onValue={(v) => {
              setKind(v as Kind);
              if (v !== 'errors') setLastKind(v as Kind);
            }}
            options={kKinds.map((k) => ({
              value: k.value,
              label: k.value === 'api' && !atLeast(me.role, 'admin') ? 'API (admins only)' : k.label,
              disabled: k.value === 'api' && !atLeast(me.role, 'admin'),
            }))}
          />
          <SelectField
            label="Share"
            value={share}
            onValue={setShare}
            options={shareOptions}
            hint={noShareFilter && share ? 'This log names the share on each line.' : undefined}
          />
          <TextField
            label="Result"
            value={result}
            onValue={setResult}
            placeholder="ok, failed, …"
            spellcheck={false}
          />
          <TextField label="Path starts with" value={path} onValue={setPath} spellcheck={false} placeholder="projects/" />
          <CheckboxField
            label="Errors only"
            checked={errorsOnly}
            onChecked={(c) => setKind(c ? 'errors' : lastKind === 'errors' ? 'copy' : lastKind)}
          />
        </div>
      </form>
      <div class="table-wrap log-table" aria-busy={page.loading ? 'true' : undefined}>
        {entries === undefined ? (
          page.error ? null : <Loading />
        ) : entries.length === 0 ? (
          <Empty>{offset > 0 ? 'No more entries.' : 'No entries match.'}</Empty>
        ) : (
          <table class="table table-compact">
            <caption class="sr-only">
              {kKinds.find((k) => k.value === kind)?.label} log, entries {offset + 1} to {offset + entries.length}
            </caption>
            <thead>
              <tr>
                {cols.map((c) => (
                  <th scope="col" key={c.title} class={c.cls}>
                    {c.title}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {entries.map((e, i) => (
                <tr key={`${offset}-${i}`} class={str(e['result']) === 'failed' || e['code'] !== undefined ? 'row-error' : undefined}>
                  {cols.map((c) => (
                    <td key={c.title} class={c.cls}>
                      {c.cell(e)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <div class="pager">
        <Button disabled={offset === 0 || page.loading} onClick={() => setOffset(Math.max(0, offset - kPageSize))}>
          Previous
        </Button>
        <span class="muted">
          {entries && entries.length > 0 ? `Entries ${offset + 1}–${offset + entries.length}` : '\u00a0'}
        </span>
        <Button
          disabled={!page.data || page.data.next_offset === null || page.loading}
          onClick={() => page.data?.next_offset && setOffset(page.data.next_offset)}
        >
          Next
        </Button>
      </div>
    </div>
  );
}
