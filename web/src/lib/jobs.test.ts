import { describe, expect, it } from 'vitest';
import { ApiClient, type StorageLike } from '../api/client';
import type { Job } from '../api/types';
import { pollJob } from './jobs';

const storage: StorageLike = { getItem: () => 'fss_t', setItem: () => {}, removeItem: () => {} };

function job(state: Job['state'], progress: number): Job {
  return {
    id: 'job-000000000001',
    kind: 'diagnostics',
    created_by: 'admin',
    state,
    progress,
    message: state,
    error: '',
    result: null,
    download: false,
    created: '2026-11-27T10:00:00Z',
    started: null,
    finished: null,
  };
}

describe('pollJob', () => {
  it('polls until the job ends and reports each state', async () => {
    const answers: Array<Response | Error> = [
      new Response(JSON.stringify(job('queued', 0))),
      new Response(JSON.stringify(job('running', 0.5))),
      new TypeError('offline'), // a bad link: retried, not fatal
      new Response(JSON.stringify(job('succeeded', 1))),
    ];
    const client = new ApiClient({
      storage,
      fetch: (async () => {
        const a = answers.shift()!;
        if (a instanceof Error) throw a;
        return a;
      }) as unknown as typeof fetch,
    });
    const seen: string[] = [];
    const waits: number[] = [];
    const retries: string[] = [];
    const done = await pollJob(client, 'job-000000000001', {
      intervalMs: 500,
      onUpdate: (j) => seen.push(j.state),
      onRetry: (e) => retries.push(e.message),
      sleep: async (ms) => void waits.push(ms),
    });
    expect(done.state).toBe('succeeded');
    expect(seen).toEqual(['queued', 'running', 'succeeded']);
    expect(retries).toEqual(['The box cannot be reached']);
    expect(waits).toEqual([500, 500, 1000]); // backs off after the failure
  });

  it('gives up on an answer from the box that is an error', async () => {
    const client = new ApiClient({
      storage,
      fetch: (async () =>
        new Response(JSON.stringify({ error: { code: 'not_found', message: "no job 'job-x'" } }), {
          status: 404,
        })) as unknown as typeof fetch,
    });
    await expect(pollJob(client, 'job-x', { sleep: async () => {} })).rejects.toThrow("no job 'job-x'");
  });
});
