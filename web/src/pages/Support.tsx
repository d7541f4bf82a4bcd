// Support: makes a support package (a job) — versions, diagnostics, metrics, settings and logs
// with every secret redacted — and downloads it with the token.

import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useJob } from '../app/hooks';
import { JobProgress } from '../components/JobProgress';
import { Button, ErrorBanner, Notice, PageHeader } from '../components/ui';
import { saveBlob } from '../lib/download';

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
    </div>
  );
}
