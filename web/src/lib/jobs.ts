// Polling of long operations (refresh, diagnostics, support packages): GET /api/v1/jobs/{id}
// every interval until the job ends. A failed poll (a bad link) is retried with a growing
// pause instead of giving up: the job goes on on the box whatever the link does.

import type { ApiClient } from '../api/client';
import { ApiError } from '../api/client';
import type { Job } from '../api/types';
import { isTerminal } from '../api/types';

export interface PollOptions {
  intervalMs?: number; // between polls while the box answers (default 750)
  maxBackoffMs?: number; // the longest pause after failures (default 5000)
  signal?: AbortSignal;
  onUpdate?: (job: Job) => void;
  onRetry?: (error: ApiError) => void; // a poll failed; polling goes on
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException('aborted', 'AbortError'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new DOMException('aborted', 'AbortError'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Resolves with the finished job (succeeded, failed or cancelled). Rejects with the AbortError
// of `signal`, or with an ApiError the box gave (a 404 once the job is gone, a 401).
export async function pollJob(client: ApiClient, id: string, opts: PollOptions = {}): Promise<Job> {
  const interval = opts.intervalMs ?? 750;
  const maxBackoff = opts.maxBackoffMs ?? 5000;
  const wait = opts.sleep ?? sleep;
  let backoff = interval;
  for (;;) {
    try {
      const job = await client.get<Job>(`/jobs/${encodeURIComponent(id)}`, { signal: opts.signal });
      opts.onUpdate?.(job);
      if (isTerminal(job.state)) return job;
      backoff = interval;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 0) throw e;
      opts.onRetry?.(e);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
    await wait(backoff, opts.signal);
  }
}
