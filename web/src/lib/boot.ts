// Waiting for a restarted box. GET /api/v1/setup (public: no session needed, and sessions do
// not survive a restart) answers a `boot_id` that changes at every start of the daemon. After
// "Restart" the page polls it: the same id means the old daemon still runs (it finishes the
// upload in progress first), no answer means it is down, a new id means the new one is up.
//
// A box too old to send boot_id (oldBootId "") counts as back when it answers again after it
// was seen down. Pure apart from the injected fetch and sleep (tested in boot.test.ts).

import { sleep as realSleep } from './jobs';

export type BootSeen = 'old' | 'down';

export interface BootWaitOptions {
  intervalMs?: number; // between polls (default 1500)
  signal?: AbortSignal;
  onSeen?: (seen: BootSeen) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

// Resolves with the new boot id once the box answers with one other than `oldBootId`. Rejects
// only with the AbortError of `signal`: every failure of the box is "still down".
export async function waitForNewBoot(
  fetchBootId: (signal?: AbortSignal) => Promise<string>,
  oldBootId: string,
  opts: BootWaitOptions = {},
): Promise<string> {
  const interval = opts.intervalMs ?? 1500;
  const wait = opts.sleep ?? realSleep;
  let wasDown = false;
  for (;;) {
    if (opts.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    try {
      const id = (await fetchBootId(opts.signal)) ?? '';
      if (oldBootId !== '' ? id !== '' && id !== oldBootId : wasDown) return id;
      opts.onSeen?.('old');
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      // No answer, or a proxy's 502 / the box's 503 while it starts: not up yet.
      wasDown = true;
      opts.onSeen?.('down');
    }
    await wait(interval, opts.signal);
  }
}
