// After "Restart": waits for the box to go away and come back. Sessions live in the daemon's
// memory, so the old token answering 401 means the new daemon runs; a failed request means it
// is still down; 200 means the old one has not stopped yet. After "Shut down" there is nothing
// to wait for: the box starts again only at the box.

import { useEffect, useState } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import { ApiError } from '../api/client';
import { formatDuration } from '../lib/format';
import { sleep } from '../lib/jobs';

export function WaitForBox({
  client,
  action,
  onBack,
}: {
  client: ApiClient;
  action: 'restart' | 'shutdown';
  onBack: () => void;
}) {
  const [seen, setSeen] = useState<'old' | 'down'>('old');
  const [elapsed, setElapsed] = useState(0);

  useEffect(() => {
    const t = setInterval(() => setElapsed((s) => s + 1), 1000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    if (action !== 'restart') return;
    const ctrl = new AbortController();
    (async () => {
      await sleep(1000, ctrl.signal).catch(() => {});
      while (!ctrl.signal.aborted) {
        try {
          await client.get('/me', { keepSessionOn401: true, timeoutMs: 4000, signal: ctrl.signal });
          setSeen('old');
        } catch (e) {
          if (ctrl.signal.aborted) return;
          if (e instanceof ApiError && e.status === 401) {
            onBack();
            return;
          }
          if (e instanceof ApiError && e.status === 0) setSeen('down');
        }
        await sleep(1500, ctrl.signal).catch(() => {});
      }
    })();
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
          <p class="field-hint">Uploads in progress finish first. You will need to sign in again.</p>
        )}
      </div>
    </main>
  );
}
