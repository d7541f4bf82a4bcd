// Diagnostics: runs the box's checks (a job) and lists each with pass / warn / fail, what it
// found and what to do.

import type { CheckResult } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useJob } from '../app/hooks';
import { JobProgress } from '../components/JobProgress';
import { Button, ErrorBanner, PageHeader, Section, StatusWord } from '../components/ui';
import { formatTime } from '../lib/format';

function Status({ status }: { status: CheckResult['status'] }) {
  const tone = status === 'pass' ? 'ok' : status === 'warn' ? 'warn' : 'fail';
  return <StatusWord tone={tone}>{status}</StatusWord>;
}

export function DiagnosticsPage() {
  const { client, me } = useApp();
  const run = useJob();
  const canRun = atLeast(me.role, 'operator');
  const checks = (run.job?.state === 'succeeded' ? (run.job.result as { checks?: CheckResult[] } | null)?.checks : null) ?? null;
  const counts = checks
    ? {
        pass: checks.filter((c) => c.status === 'pass').length,
        warn: checks.filter((c) => c.status === 'warn').length,
        fail: checks.filter((c) => c.status === 'fail').length,
      }
    : null;
  return (
    <div class="page">
      <PageHeader title="Diagnostics">
        {canRun ? (
          <Button
            variant="primary"
            busy={run.running}
            onClick={() => void run.start(() => client.post<{ job: string }>('/diagnostics', {}))}
          >
            Run diagnostics
          </Button>
        ) : null}
      </PageHeader>
      <ErrorBanner message={run.error || (run.job?.state === 'failed' ? run.job.error || 'The diagnostics failed' : '')} />
      <p class="lead">
        Checks free space and the data disk, memory, the certificate, DNS and the clock against each storage account,
        each cloud share’s target, and the SMB and NFS services. Safe to run at any time; it takes a few seconds.
      </p>
      {!canRun ? <p class="muted">Running diagnostics needs the operator or admin role.</p> : null}
      {run.running || run.job ? (
        <Section title="Progress" class="job-card">
          <JobProgress
            label="Diagnostics progress"
            job={run.job}
            running={run.running}
            retrying={run.retrying}
            onCancel={canRun ? () => void run.cancel() : undefined}
          />
        </Section>
      ) : null}
      {checks ? (
        <Section title="Results">
          <p class="result-summary">
            <StatusWord tone="ok">{counts!.pass} pass</StatusWord>
            <StatusWord tone="warn">{counts!.warn} warn</StatusWord>
            <StatusWord tone="fail">{counts!.fail} fail</StatusWord>
            <span class="muted">Finished {formatTime(run.job?.finished, { seconds: true })}</span>
          </p>
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Check</th>
                  <th scope="col">Status</th>
                  <th scope="col">Detail</th>
                  <th scope="col">Advice</th>
                </tr>
              </thead>
              <tbody>
                {checks.map((c) => (
                  <tr key={c.id} class={`check-${c.status}`}>
                    <th scope="row">{c.name}</th>
                    <td>
                      <Status status={c.status} />
                    </td>
                    <td class="wrap-anywhere">{c.detail}</td>
                    <td>{c.advice || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      ) : null}
    </div>
  );
}
