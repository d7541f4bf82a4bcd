// Cache: the box-wide cache policy for cloud shares (GET/PUT /api/v1/cache): when eviction
// starts and stops, the hard cap where writers wait, the age limit, pinned paths and the
// evictor's timings (docs/tiering.md). A share's own settings (its edit page) override these;
// the shares that have some are listed. What the cache holds now comes from GET /device.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { CacheSettings, Device, Share } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useForm, useLoad } from '../app/hooks';
import { ActionsHeader, Button, Empty, ErrorBanner, Loading, PageHeader, RowActions, Section, TextAreaField, TextField } from '../components/ui';
import { formatBytes } from '../lib/format';
import { cacheSize, integer, pinnedPaths } from '../lib/validate';
import { href } from '../router';

type CacheValues = {
  high: string;
  low: string;
  cap: string;
  maxAge: string;
  pinned: string;
  interval: string;
  backpressure: string;
  recall: string;
};

function valuesOf(c: CacheSettings): CacheValues {
  return {
    high: c.high_watermark,
    low: c.low_watermark,
    cap: c.hard_cap,
    maxAge: String(c.max_age_days),
    pinned: c.pinned.join('\n'),
    interval: String(c.interval_s),
    backpressure: String(c.backpressure_timeout_s),
    recall: String(c.recall_timeout_s),
  };
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

function hasOwnPolicy(s: Share): boolean {
  const c = s.cache;
  return Boolean(c.high_watermark || c.low_watermark || c.hard_cap || c.max_age_days || c.pinned.length);
}

function UsageSection({ device }: { device: Device | undefined }) {
  const c = device?.capacity ?? {};
  return (
    <Section title="In the cache now">
      <dl class="stats">
        <div class="stat">
          <dt>Cache resident</dt>
          <dd>{device ? formatBytes(c.resident_bytes) : '—'}</dd>
          <dd class="stat-help">Files of cloud shares kept on the box</dd>
        </div>
        <div class="stat">
          <dt>Stubs</dt>
          <dd>{device ? formatBytes(c.stub_bytes) : '—'}</dd>
          <dd class="stat-help">Only in the cloud, recalled when opened</dd>
        </div>
        <div class="stat">
          <dt>Used</dt>
          <dd>{device ? formatBytes(c.used_bytes) : '—'}</dd>
          <dd class="stat-help">Data of every share on the box</dd>
        </div>
        <div class="stat">
          <dt>Data volume</dt>
          <dd>{device ? formatBytes(c.volume_total_bytes) : '—'}</dd>
          <dd class="stat-help">What percentages are of</dd>
        </div>
      </dl>
    </Section>
  );
}

export function CachePage() {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const policy = useLoad((signal) => client.get<CacheSettings>('/cache', { signal }), []);
  const device = useLoad((signal) => client.get<Device>('/device', { signal }), [], 15000);
  const shares = useLoad((signal) => client.get<{ shares: Share[] }>('/shares', { signal }), []);
  const form = useForm<CacheValues>({
    high: '',
    low: '',
    cap: '',
    maxAge: '',
    pinned: '',
    interval: '',
    backpressure: '',
    recall: '',
  });
  const save = useAction();
  const [note, setNote] = useState('');
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;

  // The form takes the box's policy once it has loaded (not on later reloads: they would undo
  // what is being typed).
  const taken = useRef(false);
  useEffect(() => {
    if (!policy.data || taken.current) return;
    taken.current = true;
    form.setValues(valuesOf(policy.data));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [policy.data]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    const ok = form.validate(
      {
        high: cacheSize,
        low: cacheSize,
        cap: cacheSize,
        maxAge: integer(0, 36500),
        pinned: pinnedPaths,
        interval: integer(1, 86400),
        backpressure: integer(1, 86400),
        recall: integer(1, 86400),
      },
      ref.current,
    );
    if (!ok) return;
    const body: Record<string, unknown> = {
      high_watermark: v.high.trim(),
      low_watermark: v.low.trim(),
      hard_cap: v.cap.trim(),
      max_age_days: Number(v.maxAge.trim() || '0'),
      pinned: lines(v.pinned),
    };
    for (const [key, text] of [
      ['interval_s', v.interval],
      ['backpressure_timeout_s', v.backpressure],
      ['recall_timeout_s', v.recall],
    ] as const) {
      if (text.trim()) body[key] = Number(text.trim());
    }
    const res = await save.run(() => client.put<CacheSettings>('/cache', body));
    if (res) {
      policy.setData(res);
      form.setValues(valuesOf(res));
      setNote('Cache policy saved. The evictor follows it from its next pass.');
    }
  };

  const own = (shares.data?.shares ?? []).filter((s) => s.kind === 'cloud' && hasOwnPolicy(s));
  return (
    <div class="page">
      <PageHeader title="Cache" />
      <ErrorBanner message={save.error || policy.error || device.error} />
      <p class="lead">
        Cloud shares keep what is used on the box and evict the rest: an evicted file stays listed and is recalled
        from the cloud when it is opened. Only uploaded files are evicted. These settings hold for every cloud share
        unless the share sets its own.
      </p>
      <UsageSection device={device.data} />
      <Section title="Cache policy">
        {policy.data === undefined ? (
          policy.error ? null : <Loading />
        ) : (
          <form class="form" ref={ref} onSubmit={submit} noValidate aria-label="Cache policy">
            <fieldset class="form-section">
              <legend>Eviction</legend>
              <div class="form-grid form-grid-3">
                <TextField
                  label="High watermark"
                  value={v.high}
                  onValue={set('high')}
                  error={errors.high}
                  disabled={!isAdmin}
                  placeholder="90% (default)"
                  spellcheck={false}
                  hint="Eviction starts when the data on the box passes this: a size (500GiB, 2TB) or a share of the data volume (90%)."
                />
                <TextField
                  label="Low watermark"
                  value={v.low}
                  onValue={set('low')}
                  error={errors.low}
                  disabled={!isAdmin}
                  placeholder="high less 10 % (default)"
                  spellcheck={false}
                  hint="… and goes on until the data is below this."
                />
                <TextField
                  label="Hard cap"
                  value={v.cap}
                  onValue={set('cap')}
                  error={errors.cap}
                  disabled={!isAdmin}
                  placeholder="95% (default)"
                  spellcheck={false}
                  hint="Never passed: writers wait for eviction, then are refused (disk full)."
                />
                <TextField
                  label="Max age (days)"
                  type="number"
                  min={0}
                  max={36500}
                  inputMode="numeric"
                  value={v.maxAge}
                  onValue={set('maxAge')}
                  error={errors.maxAge}
                  disabled={!isAdmin}
                  hint="Files not used for longer are evicted whatever the watermarks. 0: no limit."
                />
                <TextAreaField
                  label="Pinned paths"
                  value={v.pinned}
                  onValue={set('pinned')}
                  error={errors.pinned}
                  disabled={!isAdmin}
                  hint="Never evicted. One per line, relative to each share; * and ? within a folder, ** across folders, dir/ for a folder (projects/**/*.db)."
                />
              </div>
            </fieldset>
            <fieldset class="form-section">
              <legend>Timings</legend>
              <div class="form-grid form-grid-3">
                <TextField
                  label="Evictor interval (seconds)"
                  type="number"
                  min={1}
                  max={86400}
                  inputMode="numeric"
                  value={v.interval}
                  onValue={set('interval')}
                  error={errors.interval}
                  disabled={!isAdmin}
                  hint="How often the evictor looks (every 0.2 s while writers wait)."
                />
                <TextField
                  label="Backpressure timeout (seconds)"
                  type="number"
                  min={1}
                  max={86400}
                  inputMode="numeric"
                  value={v.backpressure}
                  onValue={set('backpressure')}
                  error={errors.backpressure}
                  disabled={!isAdmin}
                  hint="How long a writer waits at the hard cap before its write fails."
                />
                <TextField
                  label="Recall timeout (seconds)"
                  type="number"
                  min={1}
                  max={86400}
                  inputMode="numeric"
                  value={v.recall}
                  onValue={set('recall')}
                  error={errors.recall}
                  disabled={!isAdmin}
                  hint="How long opening an evicted file waits for an unreachable cloud."
                />
              </div>
            </fieldset>
            {isAdmin ? (
              <div class="form-actions">
                <Button type="submit" variant="primary" busy={save.busy}>
                  Save cache policy
                </Button>
                <Button
                  disabled={save.busy || !policy.data}
                  onClick={() => {
                    if (policy.data) form.setValues(valuesOf(policy.data));
                    setNote('');
                  }}
                >
                  Undo changes
                </Button>
                {note ? (
                  <span class="saved-note" role="status">
                    {note}
                  </span>
                ) : null}
              </div>
            ) : (
              <p class="muted">Only admins change the cache policy.</p>
            )}
          </form>
        )}
      </Section>
      <Section title="Shares with their own policy">
        {shares.data === undefined ? (
          shares.error ? null : <Loading />
        ) : own.length === 0 ? (
          <Empty>No cloud share overrides these settings.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Share</th>
                  <th scope="col">High watermark</th>
                  <th scope="col">Low watermark</th>
                  <th scope="col">Hard cap</th>
                  <th scope="col">Max age</th>
                  <th scope="col">Pinned</th>
                  {isAdmin ? (
                    <ActionsHeader />
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {own.map((s) => (
                  <tr key={s.name}>
                    <th scope="row">{s.name}</th>
                    <td>{s.cache.high_watermark || 'box'}</td>
                    <td>{s.cache.low_watermark || 'box'}</td>
                    <td>{s.cache.hard_cap || 'box'}</td>
                    <td>{s.cache.max_age_days ? `${s.cache.max_age_days} days` : 'box'}</td>
                    <td class="wrap-anywhere">{s.cache.pinned.join(', ') || '—'}</td>
                    {isAdmin ? (
                      <RowActions>
                        <a class="btn" href={href('shareEdit', { name: s.name })} aria-label={`Edit share ${s.name}`}>
                          Edit
                        </a>
                      </RowActions>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
    </div>
  );
}
