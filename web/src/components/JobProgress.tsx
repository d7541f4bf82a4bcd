// The progress of a job: a progress bar (role=progressbar, 0-100), what the job is doing, and
// how it ended. Cancel is offered to those who may cancel while it runs.

import type { Job } from '../api/types';
import { Button } from './ui';

function stateText(job: Job | null, running: boolean): string {
  if (!job) return running ? 'Starting…' : '';
  switch (job.state) {
    case 'queued':
      return 'Waiting to start';
    case 'running':
      return job.message || 'Running';
    case 'succeeded':
      return 'Done';
    case 'failed':
      return 'Failed';
    case 'cancelled':
      return 'Cancelled';
  }
}

export function JobProgress({
  label,
  job,
  running,
  retrying,
  onCancel,
}: {
  label: string;
  job: Job | null;
  running: boolean;
  retrying?: string;
  onCancel?: () => void;
}) {
  const pct = Math.round((job?.progress ?? 0) * 100);
  const text = stateText(job, running);
  const tone =
    job?.state === 'failed' ? 'fail' : job?.state === 'cancelled' ? 'warn' : job?.state === 'succeeded' ? 'ok' : 'run';
  const active = running && (!job || job.state === 'queued' || job.state === 'running');
  return (
    <div class={`job job-${tone}`}>
      <div class="job-row">
        <div
          class="progress"
          role="progressbar"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={pct}
          aria-valuetext={`${pct}%${text ? ': ' + text : ''}`}
        >
          <div class="progress-fill" style={{ width: `${pct}%` }} />
        </div>
        <span class="job-pct">{pct}%</span>
        {onCancel && active && job ? (
          <Button variant="ghost" onClick={onCancel}>
            Cancel
          </Button>
        ) : null}
      </div>
      <p class="job-message" aria-live="polite">
        {text}
        {job && job.state !== 'running' && job.message && job.message !== 'done' && job.state !== 'failed'
          ? ` — ${job.message}`
          : ''}
        {retrying ? <span class="job-retry"> ({retrying})</span> : null}
      </p>
    </div>
  );
}
