// The dashboard: the box at a glance, refreshed every 10 s. Every section keeps its size while
// it loads and refreshes (numbers are replaced in place), so nothing jumps.

import { useEffect, useState } from 'preact/hooks';
import type { Alert, Bandwidth, Device, MetricsHistory, MetricsSummary, StorageAccount } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useJob, useLoad } from '../app/hooks';
import { JobProgress } from '../components/JobProgress';
import { ThroughputChart } from '../components/ThroughputChart';
import { Button, ErrorBanner, PageHeader, Section, SeverityBadge, StatusWord } from '../components/ui';
import { formatAgo, formatBytes, formatCount, formatDuration, formatRate, plural } from '../lib/format';
import { href } from '../router';

const kRefreshMs = 10000;

interface Snapshot {
  // The box's clock less this browser's when the snapshot came (seconds; the chart's "now").
  skewS: number;
  device: Device;
  summary: MetricsSummary;
  accounts: StorageAccount[];
  alerts: Alert[];
  bandwidth: Bandwidth;
}

const kSeverityRank = { critical: 0, warning: 1, info: 2 } as const;

function CapacitySection({ device }: { device: Device | undefined }) {
  const c = device?.capacity ?? {};
  const total = c.volume_total_bytes ?? 0;
  const free = c.volume_free_bytes;
  const known = total > 0 && free !== undefined;
  const usedOnVolume = known ? total - free! : 0;
  const pct = (n: number | undefined) => (known && n !== undefined ? Math.min(100, (n / total) * 100) : 0);
  // The store's data is part of what is used on the volume; the rest is other files.
  const storeData = Math.min(c.used_bytes ?? 0, usedOnVolume);
  const resident = Math.min(c.resident_bytes ?? 0, storeData);
  const rows: Array<[string, number | undefined, string, string]> = [
    ['Used', c.used_bytes, 'Data of every share stored on the box', 'used'],
    ['Cache resident', c.resident_bytes, 'Files of cloud shares kept on the box', 'resident'],
    ['Stubs', c.stub_bytes, 'Files only in the cloud, recalled when opened', 'stubs'],
    ['Free', free, 'Free on the data volume', 'free'],
  ];
  return (
    <Section title="Capacity" class="dash-capacity">
      <div class="capbar" aria-hidden="true">
        <div class="capbar-seg seg-other" style={{ width: `${pct(usedOnVolume - storeData)}%` }} />
        <div class="capbar-seg seg-used" style={{ width: `${pct(storeData - resident)}%` }} />
        <div class="capbar-seg seg-resident" style={{ width: `${pct(resident)}%` }} />
      </div>
      <p class="capbar-caption">
        {known
          ? `${formatBytes(usedOnVolume)} used of ${formatBytes(total)} on the data volume (${Math.round(
              (free! / total) * 100,
            )}% free)`
          : device
            ? 'The store cannot tell its capacity now.'
            : '\u00a0'}
      </p>
      <dl class="stats">
        {rows.map(([label, value, help, cls]) => (
          <div class={`stat stat-${cls}`} key={label}>
            <dt>
              <span class={`swatch sw-${cls}`} aria-hidden="true" />
              {label}
            </dt>
            <dd>{value === undefined ? '—' : formatBytes(value)}</dd>
            <dd class="stat-help">{help}</dd>
          </div>
        ))}
      </dl>
    </Section>
  );
}

function ThroughputSection({ summary, skewS }: { summary: MetricsSummary | undefined; skewS: number }) {
  const { client } = useApp();
  const [range, setRange] = useState<'hour' | 'day'>('hour');
  const history = useLoad(
    (signal) => client.get<MetricsHistory>('/metrics/history', { query: { window: range }, signal }),
    [range],
    kRefreshMs,
  );
  const points = history.data?.window === range ? history.data.points : [];
  const last = points[points.length - 1];
  return (
    <Section
      title="Throughput"
      class="dash-throughput"
      actions={
        <div class="segmented" role="group" aria-label="Time range">
          <button type="button" aria-pressed={range === 'hour' ? 'true' : 'false'} onClick={() => setRange('hour')}>
            Last hour
          </button>
          <button type="button" aria-pressed={range === 'day' ? 'true' : 'false'} onClick={() => setRange('day')}>
            Last day
          </button>
        </div>
      }
    >
      <ThroughputChart points={points} windowS={range === 'hour' ? 3600 : 86400} nowS={Date.now() / 1000 + skewS} />
      <dl class="stats stats-inline">
        <div class="stat">
          <dt>Upload now</dt>
          <dd>{last ? `${formatBytes(last.upload_bytes_per_s)}/s` : '—'}</dd>
        </div>
        <div class="stat">
          <dt>Download now</dt>
          <dd>{last ? `${formatBytes(last.download_bytes_per_s)}/s` : '—'}</dd>
        </div>
        <div class="stat">
          <dt>Uploaded</dt>
          <dd>
            {summary
              ? `${plural(Math.round(summary.uploaded_files), 'file')}, ${formatBytes(summary.uploaded_bytes)}`
              : '—'}
          </dd>
        </div>
        <div class="stat">
          <dt>Recalled</dt>
          <dd>{summary ? formatBytes(summary.recalled_bytes) : '—'}</dd>
        </div>
      </dl>
    </Section>
  );
}

interface DrainResult {
  uploaded: number;
}

function QueueSection({ summary, onChange }: { summary: MetricsSummary | undefined; onChange: () => void }) {
  const { client, me } = useApp();
  const drain = useJob();
  const canDrain = atLeast(me.role, 'operator');
  const n = summary?.pending_files;
  const job = drain.job;
  const uploaded = job?.state === 'succeeded' ? (job.result as DrainResult | null)?.uploaded : undefined;
  const start = async () => {
    await drain.start(() => client.post<{ job: string }>('/drain', {}));
    onChange();
  };
  return (
    <Section title="Upload queue" class="dash-queue">
      <p class="big-number">{n === undefined ? '—' : `${formatCount(n)} ${n === 1 ? 'file' : 'files'} waiting`}</p>
      <p class="muted">
        {summary === undefined
          ? '\u00a0'
          : summary.oldest_pending_age_s === null
            ? 'Nothing waits for upload'
            : `oldest waiting ${formatDuration(summary.oldest_pending_age_s)}`}
      </p>
      <p class="muted">
        {summary === undefined ? (
          '\u00a0'
        ) : summary.upload_failures > 0 ? (
          <a href={href('logs')}>{plural(Math.round(summary.upload_failures), 'failed upload')} since the start</a>
        ) : (
          'No failed uploads since the start'
        )}
      </p>
      {canDrain ? (
        <div class="queue-drain">
          <Button busy={drain.running} onClick={() => void start()}>
            Upload everything now
          </Button>
          {drain.running || job ? (
            <JobProgress
              label="Upload everything now"
              job={job}
              running={drain.running}
              retrying={drain.retrying}
              onCancel={() => void drain.cancel()}
            />
          ) : null}
          {uploaded !== undefined ? (
            <p class="muted" role="status">
              {uploaded === 0 ? 'Nothing was waiting: everything is in the cloud.' : `Everything is in the cloud (${plural(uploaded, 'file')} uploaded).`}
            </p>
          ) : null}
          {drain.error || job?.state === 'failed' ? (
            <p class="field-error" role="alert">
              {drain.error || job?.error || 'The upload did not finish'}
            </p>
          ) : null}
          {job?.state === 'cancelled' ? <p class="muted">Stopped waiting; uploads go on by themselves.</p> : null}
        </div>
      ) : null}
    </Section>
  );
}

function CloudSection({ accounts }: { accounts: StorageAccount[] | undefined }) {
  return (
    <Section title="Cloud connectivity" class="dash-cloud">
      {accounts === undefined ? (
        <p class="muted">&nbsp;</p>
      ) : accounts.length === 0 ? (
        <p class="muted">
          No storage accounts. <a href={href('accounts')}>Add one</a> to upload shares to the cloud.
        </p>
      ) : (
        <table class="table table-compact">
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">Type</th>
              <th scope="col">Reachable</th>
            </tr>
          </thead>
          <tbody>
            {accounts.map((a) => (
              <tr key={a.name}>
                <th scope="row">{a.name}</th>
                <td>{a.type}</td>
                <td>
                  {a.reachable ? <StatusWord tone="ok">yes</StatusWord> : <StatusWord tone="fail">no</StatusWord>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function AlertsSection({ alerts }: { alerts: Alert[] | undefined }) {
  const top = [...(alerts ?? [])]
    .sort((a, b) => kSeverityRank[a.severity] - kSeverityRank[b.severity] || b.seq - a.seq)
    .slice(0, 5);
  return (
    <Section
      title="Active alerts"
      class="dash-alerts"
      actions={<a href={href('alerts')}>See all</a>}
    >
      {alerts === undefined ? (
        <p class="muted">&nbsp;</p>
      ) : top.length === 0 ? (
        <p class="muted">
          <StatusWord tone="ok">No active alerts</StatusWord>
        </p>
      ) : (
        <ul class="alert-list">
          {top.map((a) => (
            <li key={a.seq}>
              <SeverityBadge severity={a.severity} />
              <span class="alert-title">{a.title}</span>
              {a.subject ? <span class="muted"> · {a.subject}</span> : null}
              <span class="muted alert-when"> · {formatAgo(a.raised)}</span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function BandwidthSection({ bandwidth }: { bandwidth: Bandwidth | undefined }) {
  const cur = bandwidth?.current;
  return (
    <Section title="Bandwidth now" class="dash-bandwidth">
      <dl class="stats stats-inline">
        <div class="stat">
          <dt>Upload limit</dt>
          <dd>{cur ? formatRate(cur.up_bytes_per_s) : '—'}</dd>
        </div>
        <div class="stat">
          <dt>Download limit</dt>
          <dd>{cur ? formatRate(cur.down_bytes_per_s) : '—'}</dd>
        </div>
        <div class="stat">
          <dt>Parallel transfers</dt>
          <dd>{bandwidth ? bandwidth.transfers : '—'}</dd>
        </div>
      </dl>
      <p class="card-foot">
        <a href={href('bandwidth')}>Change the schedule</a>
      </p>
    </Section>
  );
}

export function DashboardPage() {
  const { client, alerts: shellAlerts, refreshAlerts } = useApp();
  const snap = useLoad<Snapshot>(
    async (signal) => {
      const asked = Date.now();
      const [device, summary, accounts, alerts, bandwidth] = await Promise.all([
        client.get<Device>('/device', { signal }),
        client.get<MetricsSummary>('/metrics/summary', { signal }),
        client.get<{ storage_accounts: StorageAccount[] }>('/storage-accounts', { signal }),
        client.get<{ alerts: Alert[] }>('/alerts', { signal }),
        client.get<Bandwidth>('/bandwidth', { signal }),
      ]);
      // The middle of the round trip is when the box read its clock, give or take the link.
      const skewS = device.time_unix - (asked + Date.now()) / 2000;
      return { skewS, device, summary, accounts: accounts.storage_accounts, alerts: alerts.alerts, bandwidth };
    },
    [],
    kRefreshMs,
  );
  const d = snap.data;
  // The nav's alert badge polls every 15 s: when this fresher list differs, it catches up now.
  const seen = d?.alerts.length;
  useEffect(() => {
    if (seen !== undefined && shellAlerts !== null && seen !== shellAlerts.length) refreshAlerts();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [seen]);
  return (
    <div class="page page-dashboard">
      <PageHeader title="Dashboard">
        <span class="muted refreshed" aria-live="off">
          {d ? `Box time ${d.device.time.slice(11, 16)} UTC · up ${formatDuration(d.device.uptime_s)}` : '\u00a0'}
        </span>
      </PageHeader>
      <div class="banner-slot">
        <ErrorBanner
          message={snap.error}
          hint={snap.error && d ? 'Showing what the box said last; retrying every 10 s.' : undefined}
        />
      </div>
      <div class="dash-grid">
        <CapacitySection device={d?.device} />
        <QueueSection summary={d?.summary} onChange={() => void snap.reload()} />
        <ThroughputSection summary={d?.summary} skewS={d?.skewS ?? 0} />
        <CloudSection accounts={d?.accounts} />
        <AlertsSection alerts={d?.alerts} />
        <BandwidthSection bandwidth={d?.bandwidth} />
      </div>
    </div>
  );
}
