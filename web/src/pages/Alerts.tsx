// Alerts: what needs attention now (active) and what did (history), each with the catalogue's
// recommended action. Operators and admins acknowledge an active alert (it stays active until
// its cause is gone). Admins set the webhook alerts are posted to (GET/PUT /alerts/settings,
// admin only: a webhook URL often carries its credential); the box uses it from its next start.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { Alert, AlertSettings } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useLoad } from '../app/hooks';
import { Button, Empty, ErrorBanner, Loading, Notice, PageHeader, Section, SeverityBadge, StatusWord, TextField } from '../components/ui';
import { formatAgo, formatTime } from '../lib/format';
import { webhookUrl } from '../lib/validate';
import { href } from '../router';

type Tab = 'active' | 'history';
const kHistoryPage = 100;

function AlertRows({
  alerts,
  history,
  canAck,
  onAck,
  acking,
}: {
  alerts: Alert[];
  history: boolean;
  canAck: boolean;
  onAck: (a: Alert) => void;
  acking: number | null;
}) {
  return (
    <div class="table-wrap">
      <table class="table alerts-table">
        <thead>
          <tr>
            <th scope="col">Severity</th>
            <th scope="col">Alert</th>
            <th scope="col">Detail and what to do</th>
            <th scope="col">Raised</th>
            <th scope="col" class="num">
              Count
            </th>
            <th scope="col" class="row-actions">
              {history ? 'Cleared' : 'Acknowledged'}
            </th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((a) => (
            <tr key={a.seq} class={`sev-row-${a.severity}`}>
              <td>
                <SeverityBadge severity={a.severity} />
              </td>
              <th scope="row" class="alert-title-cell">
                {a.title}
                <div class="alert-subject">
                  <span class="muted">Subject: </span>
                  {a.subject || 'the box'}
                </div>
                <div class="muted mono small">{a.id}</div>
              </th>
              <td class="alert-detail">
                {a.detail ? <p class="detail wrap-anywhere">{a.detail}</p> : null}
                <p class="action">
                  <span class="action-label">Recommended action: </span>
                  {a.action}
                </p>
              </td>
              <td title={a.raised}>
                <span class="nowrap">{formatTime(a.raised)}</span>
                <div class="muted small">{formatAgo(a.raised)}</div>
              </td>
              <td class="num">{a.count}</td>
              <td class="row-actions">
                {history ? (
                  a.cleared ? (
                    formatTime(a.cleared)
                  ) : (
                    <StatusWord tone="warn">active</StatusWord>
                  )
                ) : a.acknowledged ? (
                  <span class="muted">by {a.acknowledged_by || 'someone'}</span>
                ) : canAck ? (
                  <Button aria-label={`Acknowledge ${a.title}`} busy={acking === a.seq} onClick={() => onAck(a)}>
                    Acknowledge
                  </Button>
                ) : (
                  <span class="muted">not yet</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function WebhookSection() {
  const { client } = useApp();
  const settings = useLoad((signal) => client.get<AlertSettings>('/alerts/settings', { signal }), []);
  const [url, setUrl] = useState('');
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const save = useAction();
  const stored = settings.data?.webhook;

  useEffect(() => {
    if (stored !== undefined) setUrl(stored);
  }, [stored]);

  const put = async (webhook: string) => {
    setNote('');
    const r = await save.run(() => client.put<AlertSettings>('/alerts/settings', { webhook }));
    if (r) {
      settings.setData({ webhook: r.webhook });
      setUrl(r.webhook);
      setNote(
        r.webhook
          ? 'Webhook saved. The box posts alerts to it from its next start.'
          : 'Webhook removed. The box stops posting alerts at its next start.',
      );
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const m = webhookUrl(url);
    setError(m);
    if (m) {
      document.getElementById('webhook-input')?.focus();
      return;
    }
    await put(url.trim());
  };

  return (
    <Section title="Webhook">
      <p class="muted section-lead">
        Each raise, clear and acknowledge is POSTed to this URL as JSON (chat, paging or ticket systems). Only admins
        see it: such URLs often carry their credential.
      </p>
      <ErrorBanner message={save.error || settings.error} />
      {note ? <Notice tone="ok">{note}</Notice> : null}
      {settings.data === undefined && !settings.error ? (
        <Loading />
      ) : (
        <form class="form" onSubmit={submit} noValidate aria-label="Webhook">
          <TextField
            id="webhook-input"
            label="Webhook URL"
            type="url"
            value={url}
            onValue={(v) => {
              setUrl(v);
              setError('');
            }}
            error={error}
            placeholder="https://hooks.example.com/…"
            spellcheck={false}
            autoComplete="off"
            hint={
              <>
                Empty: alerts are not posted. A change takes effect at the next start of the box (
                <a href={href('device')}>Device → Restart</a>).
              </>
            }
          />
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={save.busy}>
              Save webhook
            </Button>
            <Button disabled={save.busy || !stored} onClick={() => void put('')}>
              Remove webhook
            </Button>
          </div>
        </form>
      )}
    </Section>
  );
}

export function AlertsPage() {
  const { client, me, refreshAlerts } = useApp();
  const [tab, setTab] = useState<Tab>('active');
  const [before, setBefore] = useState<number[]>([]); // history pages: the `before` of each
  const cursor = before[before.length - 1] ?? 0;
  const list = useLoad(
    (signal) =>
      tab === 'active'
        ? client.get<{ alerts: Alert[] }>('/alerts', { signal })
        : client.get<{ alerts: Alert[] }>('/alerts', {
            query: { state: 'all', limit: kHistoryPage, before: cursor || undefined },
            signal,
          }),
    [tab, cursor],
    tab === 'active' ? 15000 : 0,
  );
  const ack = useAction();
  const [acking, setAcking] = useState<number | null>(null);
  const canAck = atLeast(me.role, 'operator');
  const tabs = useRef<Record<Tab, HTMLButtonElement | null>>({ active: null, history: null });

  const acknowledge = async (a: Alert) => {
    setAcking(a.seq);
    const ok = await ack.run(async () => {
      await client.post(`/alerts/${a.seq}/ack`, {});
      return true;
    });
    setAcking(null);
    if (ok) {
      await list.reload();
      refreshAlerts();
    }
  };

  const choose = (t: Tab) => {
    setTab(t);
    setBefore([]);
    tabs.current[t]?.focus();
  };
  const onTabKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      choose(tab === 'active' ? 'history' : 'active');
    }
  };

  const alerts = list.data?.alerts;
  return (
    <div class="page">
      <PageHeader title="Alerts" />
      <ErrorBanner message={ack.error || list.error} />
      <div class="tabs" role="tablist" aria-label="Alerts">
        {(['active', 'history'] as Tab[]).map((t) => (
          <button
            key={t}
            ref={(el) => {
              tabs.current[t] = el;
            }}
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t ? 'true' : 'false'}
            aria-controls="alerts-panel"
            tabIndex={tab === t ? 0 : -1}
            class="tab"
            onClick={() => choose(t)}
            onKeyDown={onTabKey}
          >
            {t === 'active' ? 'Active' : 'History'}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="alerts-panel" aria-labelledby={`tab-${tab}`} class="tabpanel">
        {alerts === undefined || (list.loading && alerts.length === 0) ? (
          list.error ? null : <Loading />
        ) : alerts.length === 0 ? (
          <Empty>
            {tab === 'active' ? (
              <StatusWord tone="ok">No active alerts: nothing needs attention.</StatusWord>
            ) : (
              'No alerts in the history.'
            )}
          </Empty>
        ) : (
          <AlertRows alerts={alerts} history={tab === 'history'} canAck={canAck} onAck={(a) => void acknowledge(a)} acking={acking} />
        )}
        {tab === 'history' ? (
          <div class="pager">
            <Button disabled={before.length === 0 || list.loading} onClick={() => setBefore(before.slice(0, -1))}>
              Newer
            </Button>
            <Button
              disabled={!alerts || alerts.length < kHistoryPage || list.loading}
              onClick={() => alerts && setBefore([...before, alerts[alerts.length - 1]!.seq])}
            >
              Older
            </Button>
          </div>
        ) : null}
      </div>
      {atLeast(me.role, 'admin') ? <WebhookSection /> : null}
    </div>
  );
}
