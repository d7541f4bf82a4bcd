import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, type StorageLike } from '../api/client';
import { type BootSeen, waitForNewBoot } from './boot';

const noSleep = async () => {};

// A fetchBootId that plays `answers` in turn (an Error is thrown), then repeats the last one.
function script(answers: Array<string | Error>) {
  let i = 0;
  const calls = { n: 0 };
  const fn = async () => {
    calls.n++;
    const a = answers[Math.min(i++, answers.length - 1)]!;
    if (a instanceof Error) throw a;
    return a;
  };
  return { fn, calls };
}

const down = () => new ApiError('The box cannot be reached', 0, 'unreachable', '', 'network');

describe('waitForNewBoot', () => {
  it('waits through the old daemon and the gap for a new boot id', async () => {
    const seen: BootSeen[] = [];
    const { fn, calls } = script(['aaaa', 'aaaa', down(), down(), 'bbbb']);
    const id = await waitForNewBoot(fn, 'aaaa', { sleep: noSleep, onSeen: (s) => seen.push(s) });
    expect(id).toBe('bbbb');
    expect(calls.n).toBe(5);
    expect(seen).toEqual(['old', 'old', 'down', 'down']);
  });

  it('needs no gap: a quick restart is seen by the id alone', async () => {
    const { fn } = script(['aaaa', 'cccc']);
    expect(await waitForNewBoot(fn, 'aaaa', { sleep: noSleep })).toBe('cccc');
  });

  it('counts a 503 while the box starts as down, not as back', async () => {
    const starting = new ApiError('starting', 503, 'unavailable', 'starting', 'http');
    const { fn, calls } = script([starting, 'dddd']);
    expect(await waitForNewBoot(fn, 'aaaa', { sleep: noSleep })).toBe('dddd');
    expect(calls.n).toBe(2);
  });

  it('without a known boot id, waits to see the box down and back', async () => {
    const { fn, calls } = script(['', '', down(), '']);
    expect(await waitForNewBoot(fn, '', { sleep: noSleep })).toBe('');
    expect(calls.n).toBe(4);
  });

  it('stops when aborted', async () => {
    const ctrl = new AbortController();
    const { fn } = script(['aaaa']);
    const p = waitForNewBoot(fn, 'aaaa', {
      signal: ctrl.signal,
      sleep: async () => {
        ctrl.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('works with the API client and GET /setup', async () => {
    const storage: StorageLike = { getItem: () => null, setItem: () => {}, removeItem: () => {} };
    const answers = [
      () => new Response(JSON.stringify({ needed: false, boot_id: '00000000000000aa' })),
      () => {
        throw new TypeError('connection refused');
      },
      () => new Response(JSON.stringify({ needed: false, boot_id: '00000000000000bb' })),
    ];
    const urls: string[] = [];
    const client = new ApiClient({
      storage,
      fetch: (async (url: string) => {
        urls.push(url);
        return answers.shift()!();
      }) as unknown as typeof fetch,
    });
    const id = await waitForNewBoot(
      async (signal) => (await client.get<{ boot_id?: string }>('/setup', { auth: false, signal })).boot_id ?? '',
      '00000000000000aa',
      { sleep: noSleep },
    );
    expect(id).toBe('00000000000000bb');
    expect(urls).toEqual(['/api/v1/setup', '/api/v1/setup', '/api/v1/setup']);
  });
});
