// Support: makes a support package (a job) — versions, diagnostics, metrics, settings and logs
// with every secret redacted — and downloads it with the token. Below, the box's recent jobs
// (GET /jobs: refreshes, uploads of everything, diagnostics, packages), which operators cancel
// while they run.

import { useState } from 'preact/hooks';
import type { Job } from '../api/types';
import { atLeast, isTerminal } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useJob, useLoad } from '../app/hooks';
import { JobProgress } from '../components/JobProgress';
import { ActionsHeader, Button, Empty, ErrorBanner, Loading, Notice, PageHeader, Section, StatusWord } from '../components/ui';
import { saveBlob } from '../lib/download';
import { formatAgo, formatTime } from '../lib/format';

const kKindNames: Record<string, string> = {
  refresh: 'Refresh',
  drain: 'Upload everything',
  diagnostics: 'Diagnostics',
  'support-package': 'Support package',
};

function JobState({ job }: { job: Job }) {
  switch (job.state) {
    case 'queued':
      return <StatusWord tone="muted">queued</StatusWord>;
    case 'running':
      return <StatusWord tone="warn">running</StatusWord>;
    case 'succeeded':
      return <StatusWord tone="ok">succeeded</StatusWord>;
    case 'failed':
      return <StatusWord tone="fail">failed</StatusWord>;
    case 'cancelled':
      return <StatusWord tone="muted">cancelled</StatusWord>;
  }
}

function JobsSection({ canCancel, changed }: { canCancel: boolean; changed: unknown }) {
  const { client } = useApp();
  const [fast, setFast] = useState(false);
  const jobs = useLoad(
    async (signal) => {
      const r = await client.get<{ jobs: Job[] }>('/jobs', { signal });
      setFast(r.jobs.some((j) => !isTerminal(j.state)));
      return r;
    },
    [changed, fast],
    fast ? 2000 : 10000,
  );
  const cancel = useAction();
  const [cancelling, setCancelling] = useState('');
  const list = jobs.data?.jobs;

  const doCancel = async (id: string) => {
    setCancelling(id);
    await cancel.run(() => client.post(`/jobs/${encodeURIComponent(id)}/cancel`, {}));
    setCancelling('');
    await jobs.reload();
  };

  return (
    <Section title="Jobs">
      <p class="muted section-lead">Long operations, newest first. The box keeps the last 100 that ended.</p>
      <ErrorBanner message={cancel.error || jobs.error} />
      {list === undefined ? (
        jobs.error ? null : <Loading />
      ) : list.length === 0 ? (
        <Empty>No jobs since the box started.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table table-compact jobs-table">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col" class="num">
                  Progress
                </th>
                <th scope="col">Started</th>
                <th scope="col">By</th>
                <th scope="col">What it did</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((j) => (
                <tr key={j.id}>
                  <th scope="row">
                    {kKindNames[j.kind] ?? j.kind}
                    <div class="muted mono small">{j.id}</div>
                  </th>
                  <td>
                    <JobState job={j} />
                  </td>
                  <td class="num">{Math.round(j.progress * 100)}%</td>
                  <td title={j.started ?? j.created}>
                    <span class="nowrap">{formatTime(j.started ?? j.created)}</span>
                    <div class="muted small">{formatAgo(j.started ?? j.created)}</div>
                  </td>
                  <td>{j.created_by || '—'}</td>
                  <td class="wrap-anywhere">{j.state === 'failed' ? j.error || j.message : j.message || '—'}</td>
                  <td class="row-actions">
                    {canCancel && !isTerminal(j.state) ? (
                      <Button
                        variant="ghost"
                        aria-label={`Cancel job ${j.id}`}
                        busy={cancelling === j.id}
                        onClick={() => void doCancel(j.id)}
                      >
                        Cancel
                      </Button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

export function SupportPage() {
  const { client, me } = useApp();
  const make = useJob();
  const dl = useAction();
  const canMake = atLeast(me.role, 'operator');
  const job = make.job;
  const file = (job?.result as { file?: string } | null)?.file ?? 'fieldstack-support.tar.zst';
  const ready = job?.state === 'succeeded' && job.download;

  const download = async () => {
    if (!job) return;
    await dl.run(async () => {
      const { blob, filename } = await client.download(`/jobs/${encodeURIComponent(job.id)}/download`, {}, file);
      saveBlob(blob, filename || file);
    });
  };

  return (
    <div class="page">
      <PageHeader title="Support" />
      <ErrorBanner message={dl.error || make.error || (job?.state === 'failed' ? job.error || 'Making the package failed' : '')} />
      <div class="card">
        <p class="lead">
          One file for the support team: versions, a diagnostics run, a metrics snapshot, the settings and the logs.
          Every secret the box holds (keys, passwords, tokens, SAS signatures) is replaced by [REDACTED] before it is
          written. It opens with <code>tar --zstd -xf</code>.
        </p>
        {canMake ? (
          <div class="form-actions">
            <Button
              variant="primary"
              busy={make.running}
              onClick={() => void make.start(() => client.post<{ job: string }>('/support-package', {}))}
            >
              Make support package
            </Button>
            {ready ? (
              <Button busy={dl.busy} onClick={() => void download()}>
                Download support package
              </Button>
            ) : null}
          </div>
        ) : (
          <p class="muted">Making support packages needs the operator or admin role.</p>
        )}
        {make.running || job ? (
          <JobProgress
            label="Support package progress"
            job={job}
            running={make.running}
            retrying={make.retrying}
            onCancel={canMake ? () => void make.cancel() : undefined}
          />
        ) : null}
        {ready ? (
          <Notice tone="ok">
            Ready: <code>{file}</code>. On a slow link the download may take a while; the file stays on the box for
            a later try.
          </Notice>
        ) : null}
      </div>
      <JobsSection canCancel={canMake} changed={job?.state} />
    </div>
  );
}
