// After "Restart": waits for the box to go away and come back, by GET /api/v1/setup's boot_id
// (lib/boot.ts): the same id is the old daemon finishing its work, no answer is the gap, a new
// id is the restarted box; then onBack reloads the page. After "Shut down" there is nothing to
// wait for: the box starts again only at the box.

import { useEffect, useState } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import { type BootSeen, waitForNewBoot } from '../lib/boot';
import { formatDuration } from '../lib/format';
import { sleep } from '../lib/jobs';

export function WaitForBox({
  client,
  action,
  bootId,
  onBack,
}: {
  client: ApiClient;
  action: 'restart' | 'shutdown';
  bootId: string; // GET /setup's boot_id before the restart ("" when the box sent none)
  onBack: () => void;
}) {
  const [seen, setSeen] = useState<BootSeen>('old');
  const [elapsed, setElapsed] = useState(0);

  useEffect(() => {
    const t = setInterval(() => setElapsed((s) => s + 1), 1000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    if (action !== 'restart') return;
    const ctrl = new AbortController();
    (async () => {
      await sleep(1000, ctrl.signal);
      await waitForNewBoot(
        async (signal) =>
          (
            await client.get<{ boot_id?: string }>('/setup', {
              auth: false,
              keepSessionOn401: true,
              timeoutMs: 4000,
              signal,
            })
          ).boot_id ?? '',
        bootId,
        { signal: ctrl.signal, onSeen: setSeen },
      );
      onBack();
    })().catch(() => {
      /* aborted: the page went away */
    });
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (action === 'shutdown') {
    return (
      <main class="center-page">
        <div class="auth-card">
          <div class="auth-brand">Fieldstack</div>
          <h1 id="page-title" tabIndex={-1}>
            The box is shutting down
          </h1>
          <p class="lead">
            It finishes the upload in progress and stops. Start it again at the box itself (or its host). Files
            not yet uploaded stay on the box and upload after the next start.
          </p>
        </div>
      </main>
    );
  }
  return (
    <main class="center-page">
      <div class="auth-card">
        <div class="auth-brand">Fieldstack</div>
        <h1 id="page-title" tabIndex={-1}>
          Restarting the box
        </h1>
        <div class="wait" role="status" aria-live="polite">
          <span class="spinner" aria-hidden="true" />
          <span>
            {seen === 'old' ? 'Waiting for the box to stop…' : 'Waiting for the box to come back…'} (
            {formatDuration(elapsed)})
          </span>
        </div>
        {elapsed > 180 ? (
          <p class="field-hint">
            This takes longer than usual. Check the box's console or power light; this page keeps trying.
          </p>
        ) : (
          <p class="field-hint">
            Uploads in progress finish first. The page reloads when the box is back; you will need to sign in again.
          </p>
        )}
      </div>
    </main>
  );
}
