// Compute: the box's edge pipelines (docs/compute.md) and the modules their steps run.
// - ComputePage (#/compute): the compute service's state (sandbox, MQTT), the pipelines with
//   their counters, and the stored modules (upload, delete).
// - PipelinePage (#/compute/pipelines/NAME): one pipeline's status, declaration, runs (paged
//   with `before`, each with its log) and dead letters (retry, discard).
// - PipelineFormPage (#/compute/new, #/compute/pipelines/NAME/edit): the declaration as JSON,
//   checked here before it is sent; the box's 400 names the field that is wrong.
// Readers see everything; operators run pipelines and handle dead letters; admins change
// pipelines and modules.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComputeState, DeadLetter, ModuleInfo, ModuleStored, Pipeline, PipelineRun, Share } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useLoad } from '../app/hooks';
import { CancelAnd, Dialog } from '../components/Dialog';
import {
  ActionsHeader,
  Button,
  Empty,
  ErrorBanner,
  Loading,
  PageHeader,
  RowActions,
  Section,
  StatusWord,
  TextField,
} from '../components/ui';
import {
  base64OfFile,
  declarationText,
  exampleDeclaration,
  formatMs,
  formatNs,
  kModuleMaxBytes,
  moduleFileProblem,
  moduleNameOf,
  moduleNameProblem,
  parseDeclaration,
  shortSha,
} from '../lib/compute';
import { formatBytes, formatCount } from '../lib/format';
import { href, navigate } from '../router';

const kRunsPage = 20;

const enc = encodeURIComponent;

function triggerText(p: Pipeline): string {
  const t = (p.declaration['trigger'] ?? {}) as Record<string, unknown>;
  if (p.trigger === 'file') return `file · ${String(t['share'] ?? '')}`;
  if (p.trigger === 'schedule') return `schedule · ${String(t['cron'] ?? '')}`;
  if (p.trigger === 'mqtt') {
    const topics = Array.isArray(t['topics']) ? (t['topics'] as unknown[]).map(String) : [];
    return `mqtt · ${topics.join(', ')}`;
  }
  return p.trigger;
}

function EnabledWord({ enabled }: { enabled: boolean }) {
  return enabled ? <StatusWord tone="ok">yes</StatusWord> : <StatusWord tone="muted">no</StatusWord>;
}

function resultTone(r: PipelineRun['result']): 'ok' | 'warn' | 'fail' | 'muted' {
  return r === 'ok' ? 'ok' : r === 'failed' ? 'warn' : r === 'dead' ? 'fail' : 'muted';
}

// ---- the compute service's state ----

function ComputeStatusCard({ state, error }: { state: ComputeState | undefined; error: string }) {
  const m = state?.mqtt;
  const sandboxDown = state ? state.sandbox.startsWith('unavailable') : false;
  return (
    <Section title="Compute service" class="compute-status">
      {state === undefined ? (
        error ? <p class="muted">{error}</p> : <Loading />
      ) : (
        <dl class="kv">
          <div class="kv-row">
            <dt>Module sandbox</dt>
            <dd>
              {sandboxDown ? <StatusWord tone="fail">unavailable</StatusWord> : null}
              <span class="wrap-anywhere">{sandboxDown ? state.sandbox.replace(/^unavailable:\s*/, '') : state.sandbox}</span>
            </dd>
          </div>
          <div class="kv-row">
            <dt>MQTT broker</dt>
            <dd>
              {m!.broker === 'off' ? (
                <span class="muted">off (MQTT triggers and sinks are not available)</span>
              ) : m!.broker === 'external' ? (
                'external'
              ) : (
                <>
                  built in{' '}
                  {m!.running ? <StatusWord tone="ok">running</StatusWord> : <StatusWord tone="fail">not running</StatusWord>}
                  <span class="muted small">
                    {' '}
                    port {m!.port ?? '—'}
                    {m!.tls_port ? `, TLS port ${m!.tls_port}` : ''}
                    {m!.restarts ? `, ${m!.restarts} restarts` : ''}
                  </span>
                  {m!.last_error ? <div class="small wrap-anywhere">Last error: {m!.last_error}</div> : null}
                </>
              )}
            </dd>
          </div>
          {m!.broker !== 'off' ? (
            <div class="kv-row">
              <dt>Box's MQTT client</dt>
              <dd>
                {m!.client_connected === undefined ? (
                  <span class="muted">not made yet</span>
                ) : m!.client_connected ? (
                  <StatusWord tone="ok">connected</StatusWord>
                ) : (
                  <StatusWord tone="fail">not connected</StatusWord>
                )}
                {m!.client_connected !== undefined ? (
                  <span class="muted small">
                    {' '}
                    {formatCount(m!.messages_received ?? 0)} received, {formatCount(m!.messages_published ?? 0)} published
                    {m!.topics && m!.topics.length ? `; topics ${m!.topics.join(', ')}` : ''}
                  </span>
                ) : null}
              </dd>
            </div>
          ) : null}
          <div class="kv-row">
            <dt>Pipelines</dt>
            <dd>{state.pipelines}</dd>
          </div>
        </dl>
      )}
    </Section>
  );
}

// ---- confirmations ----

function ConfirmDelete({
  title,
  text,
  onCancel,
  onConfirm,
}: {
  title: string;
  text: string;
  onCancel: () => void;
  onConfirm: () => Promise<boolean>;
}) {
  const act = useAction();
  return (
    <Dialog
      title={title}
      onClose={onCancel}
      actions={
        <CancelAnd onCancel={onCancel} busy={act.busy}>
          <Button
            variant="danger"
            busy={act.busy}
            onClick={() =>
              void act.run(async () => {
                if (await onConfirm()) onCancel();
              })
            }
          >
            Delete
          </Button>
        </CancelAnd>
      }
    >
      <p>{text}</p>
      <ErrorBanner message={act.error} />
    </Dialog>
  );
}

// ---- the Compute page ----

function PipelinesTable({ list, onChanged }: { list: Pipeline[]; onChanged: () => void }) {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const isOperator = atLeast(me.role, 'operator');
  const run = useAction();
  const [note, setNote] = useState('');
  const [deleting, setDeleting] = useState<string | null>(null);

  const runNow = async (name: string) => {
    setNote('');
    const ok = await run.run(async () => {
      await client.post(`/pipelines/${enc(name)}/run`, {});
      return true;
    });
    if (ok) {
      setNote(`${name}: a run is queued`);
      onChanged();
    }
  };

  return (
    <Section
      title="Pipelines"
      actions={
        <>
          {note ? (
            <span class="saved-note" role="status">
              {note}
            </span>
          ) : null}
          {isAdmin ? (
            <Button variant="primary" onClick={() => navigate(href('pipelineNew'))}>
              New pipeline
            </Button>
          ) : null}
        </>
      }
    >
      <ErrorBanner message={run.error} />
      {list.length === 0 ? (
        <Empty>No pipelines yet.{isAdmin ? ' “New pipeline” makes one, from an example if you like.' : ''}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Trigger</th>
                <th scope="col">Enabled</th>
                <th scope="col" class="num th-wrap">
                  Pending
                </th>
                <th scope="col" class="num th-wrap">
                  Dead letters
                </th>
                <th scope="col" class="num th-wrap">
                  Buffered
                </th>
                <th scope="col" class="num th-wrap">
                  Runs ok
                </th>
                <th scope="col" class="num th-wrap">
                  Failed
                </th>
                <th scope="col">Last error</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((p) => {
                const s = p.status;
                return (
                  <tr key={p.name} class={s && s.last_error ? 'row-error' : undefined}>
                    <th scope="row" class="nowrap">
                      <a href={href('pipeline', { name: p.name })}>{p.name}</a>
                    </th>
                    <td class="wrap-anywhere">{triggerText(p)}</td>
                    <td>
                      <EnabledWord enabled={p.enabled} />
                    </td>
                    <td class="num">{s ? formatCount(s.pending) : '—'}</td>
                    <td class="num">{s ? formatCount(s.dead_letters) : '—'}</td>
                    <td class="num">{s ? formatCount(s.buffered_messages) : '—'}</td>
                    <td class="num">{s ? formatCount(s.runs_ok) : '—'}</td>
                    <td class="num">{s ? formatCount(s.runs_failed) : '—'}</td>
                    <td class="wrap-anywhere cell-error">{s ? s.last_error || <span class="muted">none</span> : '—'}</td>
                    <RowActions>
                      {isOperator && p.trigger === 'schedule' ? (
                        <Button aria-label={`Run ${p.name}`} busy={run.busy} onClick={() => void runNow(p.name)}>
                          Run
                        </Button>
                      ) : null}
                      {isAdmin ? (
                        <>
                          <Button aria-label={`Edit ${p.name}`} onClick={() => navigate(href('pipelineEdit', { name: p.name }))}>
                            Edit
                          </Button>
                          <Button variant="danger" aria-label={`Delete ${p.name}`} onClick={() => setDeleting(p.name)}>
                            Delete
                          </Button>
                        </>
                      ) : null}
                    </RowActions>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {deleting ? (
        <ConfirmDelete
          title={`Delete pipeline ${deleting}?`}
          text="The pipeline stops. Its outputs stay in their shares; its pending work, runs and dead letters come back if a pipeline of this name is made again."
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await client.del(`/pipelines/${enc(deleting)}`);
            onChanged();
            return true;
          }}
        />
      ) : null}
    </Section>
  );
}

function ModulesSection({ list, error, onChanged }: { list: ModuleInfo[] | undefined; error: string; onChanged: () => void }) {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [fileError, setFileError] = useState('');
  const [nameError, setNameError] = useState('');
  const [note, setNote] = useState('');
  const [deleting, setDeleting] = useState<string | null>(null);
  const upload = useAction();
  const fileRef = useRef<HTMLInputElement>(null);

  const pick = (f: File | null) => {
    setFile(f);
    setNote('');
    upload.setError('');
    setFileError(f ? moduleFileProblem(f.size) : '');
    if (f) {
      setName(moduleNameOf(f.name));
      setNameError('');
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    const fe = file ? moduleFileProblem(file.size) : 'Choose the module file';
    const ne = moduleNameProblem(name.trim());
    setFileError(fe);
    setNameError(ne);
    if (fe) return fileRef.current?.focus();
    if (ne) return document.getElementById('module-name')?.focus();
    const n = name.trim();
    const stored = await upload.run(async () => {
      const content_base64 = await base64OfFile(file!);
      return client.put<ModuleStored>(`/modules/${enc(n)}`, { content_base64 }, { timeoutMs: 120000 });
    });
    if (stored) {
      setNote(`Stored ${stored.name} (${formatBytes(stored.size_bytes)})`);
      setFile(null);
      setName('');
      if (fileRef.current) fileRef.current.value = '';
      onChanged();
    }
  };

  return (
    <Section title="Modules">
      <p class="section-lead muted">
        Programs that <code>module</code> steps run in the sandbox: a script with a <code>#!</code> line or a static
        binary.
      </p>
      {list === undefined ? (
        error ? <ErrorBanner message={error} /> : <Loading />
      ) : list.length === 0 ? (
        <Empty>No modules stored.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" class="num th-wrap">
                  Size
                </th>
                <th scope="col">Modified</th>
                <th scope="col">SHA-256</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.name}>
                  <th scope="row" class="wrap-anywhere">
                    {m.name}
                  </th>
                  <td class="num nowrap">{formatBytes(m.size_bytes)}</td>
                  <td class="nowrap">{formatNs(m.modified_ns)}</td>
                  <td>
                    <code title={m.sha256} aria-label={`SHA-256 ${m.sha256}`}>
                      {shortSha(m.sha256)}
                    </code>
                  </td>
                  <RowActions>
                    {isAdmin ? (
                      <Button variant="danger" aria-label={`Delete module ${m.name}`} onClick={() => setDeleting(m.name)}>
                        Delete
                      </Button>
                    ) : null}
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {isAdmin ? (
        <form class="subform" onSubmit={submit} noValidate aria-labelledby="upload-module-title">
          <h3 id="upload-module-title">Upload a module</h3>
          <ErrorBanner message={upload.error} />
          <div class="form-grid">
            <div class="field">
              <label for="module-file">Module file</label>
              <input
                id="module-file"
                ref={fileRef}
                type="file"
                onChange={(e) => pick((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
                aria-invalid={fileError ? 'true' : undefined}
                aria-describedby={`module-file-hint${fileError ? ' module-file-err' : ''}`}
              />
              <p class="field-hint" id="module-file-hint">
                At most {kModuleMaxBytes / 1024} KiB (sent as base64 in the API's 1 MiB body).
                {file && !fileError ? ` Chosen: ${formatBytes(file.size)}.` : ''}
              </p>
              {fileError ? (
                <p class="field-error" id="module-file-err">
                  {fileError}
                </p>
              ) : null}
            </div>
            <TextField
              id="module-name"
              label="Module name"
              value={name}
              onValue={(v) => {
                setName(v);
                setNameError('');
              }}
              error={nameError}
              autoCapitalize="none"
              spellcheck={false}
              hint="What module steps name it. The same name replaces the stored module."
            />
          </div>
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={upload.busy}>
              Upload module
            </Button>
            {note ? (
              <span class="saved-note" role="status">
                {note}
              </span>
            ) : null}
          </div>
        </form>
      ) : null}
      {deleting ? (
        <ConfirmDelete
          title={`Delete module ${deleting}?`}
          text="Pipelines can no longer run it. The box refuses while a pipeline's module step names it."
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await client.del(`/modules/${enc(deleting)}`);
            onChanged();
            return true;
          }}
        />
      ) : null}
    </Section>
  );
}

export function ComputePage() {
  const { client } = useApp();
  const state = useLoad((signal) => client.get<ComputeState>('/compute', { signal }), [], 15000);
  const pipelines = useLoad((signal) => client.get<{ pipelines: Pipeline[] }>('/pipelines', { signal }), [], 10000);
  const modules = useLoad((signal) => client.get<{ modules: ModuleInfo[] }>('/modules', { signal }), [], 30000);
  const list = pipelines.data?.pipelines;
  return (
    <div class="page">
      <PageHeader title="Compute" />
      <p class="lead">
        Pipelines process data on the box before it leaves: fired by files arriving in a share, by MQTT messages or by
        a schedule, they filter, reshape and redact records and write the results into shares, to MQTT, to webhooks or
        as alerts.
      </p>
      <ErrorBanner message={pipelines.error} />
      {list === undefined ? (
        pipelines.error ? null : (
          <Section title="Pipelines">
            <Loading />
          </Section>
        )
      ) : (
        <PipelinesTable
          list={list}
          onChanged={() => {
            void pipelines.reload();
            void state.reload();
          }}
        />
      )}
      <ModulesSection list={modules.data?.modules} error={modules.error} onChanged={() => void modules.reload()} />
      <ComputeStatusCard state={state.data} error={state.error} />
    </div>
  );
}

// ---- one pipeline ----

function RunsSection({ name, version }: { name: string; version: number }) {
  const { client } = useApp();
  // The `before` of each page shown so far: [0] is the newest page.
  const [stack, setStack] = useState<number[]>([0]);
  const before = stack[stack.length - 1]!;
  const runs = useLoad(
    (signal) =>
      client.get<{ runs: PipelineRun[] }>(`/pipelines/${enc(name)}/runs`, {
        query: { limit: kRunsPage + 1, before: before || undefined },
        signal,
      }),
    [name, before, version],
    before === 0 ? 10000 : 0,
  );
  const [open, setOpen] = useState<Set<number>>(new Set());
  const all = runs.data?.runs;
  const shown = all?.slice(0, kRunsPage);
  const more = (all?.length ?? 0) > kRunsPage;
  const toggle = (id: number) =>
    setOpen((prev) => {
      const n = new Set(prev);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const cols = 8;
  return (
    <Section title="Runs">
      <ErrorBanner message={runs.error} />
      <div class="table-wrap runs-table" aria-busy={runs.loading ? 'true' : undefined}>
        {shown === undefined ? (
          runs.error ? null : <Loading />
        ) : shown.length === 0 ? (
          <Empty>{stack.length > 1 ? 'No older runs.' : 'No runs yet.'}</Empty>
        ) : (
          <table class="table table-compact">
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Started</th>
                <th scope="col" class="num th-wrap">
                  Duration
                </th>
                <th scope="col" class="num th-wrap">
                  Rows in
                </th>
                <th scope="col" class="num th-wrap">
                  Rows out
                </th>
                <th scope="col">Result</th>
                <th scope="col">Error</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => {
                const isOpen = open.has(r.id);
                return [
                  <tr key={r.id} class={r.result === 'failed' || r.result === 'dead' ? 'row-error' : undefined}>
                    <td class="wrap-anywhere mono small">{r.item}</td>
                    <td class="nowrap">{formatNs(r.started_ns)}</td>
                    <td class="num nowrap">{formatMs(r.duration_ms)}</td>
                    <td class="num">{formatCount(r.rows_in)}</td>
                    <td class="num">{formatCount(r.rows_out)}</td>
                    <td>
                      <StatusWord tone={resultTone(r.result)}>{r.result}</StatusWord>
                    </td>
                    <td class="wrap-anywhere cell-error">{r.error}</td>
                    <RowActions>
                      {r.log ? (
                        <Button
                          variant="ghost"
                          aria-expanded={isOpen ? 'true' : 'false'}
                          aria-controls={`run-log-${r.id}`}
                          aria-label={`Log of run ${r.id}`}
                          onClick={() => toggle(r.id)}
                        >
                          {isOpen ? 'Hide log' : 'Log'}
                        </Button>
                      ) : (
                        <span class="muted small">no log</span>
                      )}
                    </RowActions>
                  </tr>,
                  isOpen ? (
                    <tr key={`${r.id}-log`} class="log-row">
                      <td colSpan={cols}>
                        <pre class="code-block" id={`run-log-${r.id}`} tabIndex={0} aria-label={`Log of run ${r.id}`}>
                          {r.log}
                        </pre>
                      </td>
                    </tr>
                  ) : null,
                ];
              })}
            </tbody>
          </table>
        )}
      </div>
      <div class="pager">
        <Button disabled={stack.length === 1 || runs.loading} onClick={() => setStack(stack.slice(0, -1))}>
          Newer
        </Button>
        <span class="muted">{stack.length > 1 ? `Page ${stack.length}` : 'Newest first'}</span>
        <Button
          disabled={!more || runs.loading}
          onClick={() => shown && shown.length && setStack([...stack, shown[shown.length - 1]!.id])}
        >
          Older
        </Button>
      </div>
    </Section>
  );
}

function DeadLettersSection({ name, onChanged, version }: { name: string; onChanged: () => void; version: number }) {
  const { client, me } = useApp();
  const isOperator = atLeast(me.role, 'operator');
  const letters = useLoad(
    (signal) => client.get<{ dead_letters: DeadLetter[] }>(`/pipelines/${enc(name)}/dead-letters`, { query: { limit: 1000 }, signal }),
    [name, version],
    15000,
  );
  const retry = useAction();
  const [note, setNote] = useState('');
  const [discarding, setDiscarding] = useState<DeadLetter | null>(null);
  const list = letters.data?.dead_letters;
  const changed = () => {
    void letters.reload();
    onChanged();
  };
  const doRetry = async (d: DeadLetter) => {
    setNote('');
    const ok = await retry.run(async () => {
      await client.post(`/pipelines/${enc(name)}/dead-letters/${d.id}/retry`, {});
      return true;
    });
    if (ok) {
      setNote(`Dead letter ${d.id} is queued again`);
      changed();
    }
  };
  return (
    <Section
      title="Dead letters"
      actions={
        note ? (
          <span class="saved-note" role="status">
            {note}
          </span>
        ) : null
      }
    >
      <p class="section-lead muted">Work that failed every retry. Retry queues it again with a fresh count of attempts; Discard drops it.</p>
      <ErrorBanner message={retry.error || letters.error} />
      {list === undefined ? (
        letters.error ? null : <Loading />
      ) : list.length === 0 ? (
        <Empty>No dead letters.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table table-compact">
            <thead>
              <tr>
                <th scope="col" class="num th-wrap">
                  Id
                </th>
                <th scope="col">Item</th>
                <th scope="col" class="num th-wrap">
                  Attempts
                </th>
                <th scope="col">Failed</th>
                <th scope="col">Error</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id}>
                  <td class="num">{d.id}</td>
                  <td class="wrap-anywhere mono small">{d.item}</td>
                  <td class="num">{d.attempts}</td>
                  <td class="nowrap">{formatNs(d.failed_ns)}</td>
                  <td class="wrap-anywhere cell-error">{d.error}</td>
                  <RowActions>
                    {isOperator ? (
                      <>
                        <Button aria-label={`Retry dead letter ${d.id}`} busy={retry.busy} onClick={() => void doRetry(d)}>
                          Retry
                        </Button>
                        <Button variant="danger" aria-label={`Discard dead letter ${d.id}`} onClick={() => setDiscarding(d)}>
                          Discard
                        </Button>
                      </>
                    ) : null}
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {discarding ? (
        <DiscardDialog
          letter={discarding}
          onCancel={() => setDiscarding(null)}
          onConfirm={async () => {
            await client.del(`/pipelines/${enc(name)}/dead-letters/${discarding.id}`);
            setNote(`Dead letter ${discarding.id} discarded`);
            changed();
          }}
        />
      ) : null}
    </Section>
  );
}

function DiscardDialog({ letter, onCancel, onConfirm }: { letter: DeadLetter; onCancel: () => void; onConfirm: () => Promise<void> }) {
  const act = useAction();
  return (
    <Dialog
      title={`Discard dead letter ${letter.id}?`}
      onClose={onCancel}
      actions={
        <CancelAnd onCancel={onCancel} busy={act.busy}>
          <Button
            variant="danger"
            busy={act.busy}
            onClick={() =>
              void act.run(async () => {
                await onConfirm();
                onCancel();
              })
            }
          >
            Discard
          </Button>
        </CancelAnd>
      }
    >
      <p>
        The work for <code>{letter.item}</code> is not done and will not be retried.
      </p>
      <ErrorBanner message={act.error} />
    </Dialog>
  );
}

export function PipelinePage({ name }: { name: string }) {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const isOperator = atLeast(me.role, 'operator');
  const p = useLoad((signal) => client.get<Pipeline>(`/pipelines/${enc(name)}`, { signal }), [name], 10000);
  const [version, setVersion] = useState(0);
  const [deleting, setDeleting] = useState(false);
  const [note, setNote] = useState('');
  const run = useAction();
  const pl = p.data;
  const s = pl?.status;

  const refresh = () => {
    void p.reload();
    setVersion((v) => v + 1);
  };
  const runNow = async () => {
    setNote('');
    const ok = await run.run(async () => {
      await client.post(`/pipelines/${enc(name)}/run`, {});
      return true;
    });
    if (ok) {
      setNote(pl?.trigger === 'file' ? 'Dead letters queued again' : 'A run is queued');
      refresh();
    }
  };

  return (
    <div class="page">
      <PageHeader title={`Pipeline ${name}`}>
        {note ? (
          <span class="saved-note" role="status">
            {note}
          </span>
        ) : null}
        {isOperator && pl && pl.trigger !== 'mqtt' ? (
          <Button
            busy={run.busy}
            disabled={pl.trigger === 'file' && !s?.dead_letters}
            title={pl.trigger === 'file' ? 'Queues the dead letters again (file pipelines run on new files)' : undefined}
            onClick={() => void runNow()}
          >
            {pl.trigger === 'file' ? 'Retry dead letters' : 'Run now'}
          </Button>
        ) : null}
        {isAdmin && pl ? (
          <>
            <Button onClick={() => navigate(href('pipelineEdit', { name }))}>Edit</Button>
            <Button variant="danger" onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        ) : null}
      </PageHeader>
      <p class="lead">
        <a href={href('compute')}>← All pipelines</a>
      </p>
      <ErrorBanner message={run.error || p.error} />
      {pl === undefined ? (
        p.error ? null : <Loading />
      ) : (
        <>
          <Section title="Status">
            <dl class="stats">
              <div class="stat">
                <dt>Trigger</dt>
                <dd>{pl.trigger}</dd>
              </div>
              <div class="stat">
                <dt>Enabled</dt>
                <dd>{pl.enabled ? 'yes' : 'no'}</dd>
              </div>
              <div class="stat">
                <dt>Pending</dt>
                <dd>{s ? formatCount(s.pending) : '—'}</dd>
              </div>
              <div class="stat">
                <dt>Dead letters</dt>
                <dd>{s ? formatCount(s.dead_letters) : '—'}</dd>
              </div>
              <div class="stat">
                <dt>Buffered</dt>
                <dd>{s ? formatCount(s.buffered_messages) : '—'}</dd>
              </div>
              <div class="stat">
                <dt>Runs ok</dt>
                <dd>{s ? formatCount(s.runs_ok) : '—'}</dd>
              </div>
              <div class="stat">
                <dt>Runs failed</dt>
                <dd>{s ? formatCount(s.runs_failed) : '—'}</dd>
              </div>
              <div class="stat">
                <dt>Rows in / out</dt>
                <dd>{s ? `${formatCount(s.rows_in)} / ${formatCount(s.rows_out)}` : '—'}</dd>
              </div>
            </dl>
            <dl class="kv stats-inline">
              <div class="kv-row">
                <dt>Last run started</dt>
                <dd>{s ? formatNs(s.last_run_ns) : '—'}</dd>
              </div>
              <div class="kv-row">
                <dt>Last error</dt>
                <dd>{s ? s.last_error || <span class="muted">none</span> : <span class="muted">the engine does not know this pipeline yet</span>}</dd>
              </div>
            </dl>
            <p class="muted small">Counters since the box's service started.</p>
          </Section>
          <Section title="Declaration">
            <pre class="code-block decl-view" tabIndex={0} aria-label={`Declaration of ${name}`}>
              {declarationText(pl.declaration)}
            </pre>
          </Section>
          <RunsSection name={name} version={version} />
          <DeadLettersSection name={name} version={version} onChanged={() => void p.reload()} />
        </>
      )}
      {deleting ? (
        <ConfirmDelete
          title={`Delete pipeline ${name}?`}
          text="The pipeline stops. Its outputs stay in their shares; its pending work, runs and dead letters come back if a pipeline of this name is made again."
          onCancel={() => setDeleting(false)}
          onConfirm={async () => {
            await client.del(`/pipelines/${enc(name)}`);
            navigate(href('compute'));
            return false;
          }}
        />
      ) : null}
    </div>
  );
}

// ---- make or change a pipeline ----

export function PipelineFormPage({ name }: { name?: string }) {
  const { client, me } = useApp();
  const editing = name !== undefined;
  const existing = useLoad(
    (signal) => (editing ? client.get<Pipeline>(`/pipelines/${enc(name)}`, { signal }) : Promise.resolve(undefined)),
    [name],
  );
  const [text, setText] = useState('');
  const [loaded, setLoaded] = useState(false);
  const [jsonError, setJsonError] = useState('');
  const save = useAction();
  const example = useAction();
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (editing && existing.data && !loaded) {
      const d = { ...existing.data.declaration } as Record<string, unknown>;
      setText(declarationText(d));
      setLoaded(true);
    }
  }, [editing, existing.data, loaded]);

  const fillExample = async () => {
    setJsonError('');
    save.setError('');
    await example.run(async () => {
      const [shares, pipes] = await Promise.all([
        client.get<{ shares: Share[] }>('/shares'),
        client.get<{ pipelines: Pipeline[] }>('/pipelines'),
      ]);
      const first = shares.shares[0];
      if (!first) throw new Error('There is no share yet: a file pipeline reads one. Make a share first.');
      setText(declarationText(exampleDeclaration(first.name, pipes.pipelines.map((p) => p.name))));
      setTimeout(() => area.current?.focus(), 0);
    });
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const r = parseDeclaration(text, editing ? { name } : { needName: true });
    if (!r.ok) {
      setJsonError(r.error);
      save.setError('');
      area.current?.focus();
      return;
    }
    setJsonError('');
    const saved = await save.run(async () => {
      if (editing) return client.put<Pipeline>(`/pipelines/${enc(name)}`, r.value);
      return client.post<Pipeline>('/pipelines', r.value);
    });
    if (saved) navigate(href('pipeline', { name: saved.name }));
  };

  const format = () => {
    const r = parseDeclaration(text);
    if (r.ok) {
      setText(declarationText(r.value));
      setJsonError('');
    } else {
      setJsonError(r.error);
    }
  };

  const title = editing ? `Edit pipeline ${name}` : 'New pipeline';
  if (!atLeast(me.role, 'admin')) {
    return (
      <div class="page">
        <PageHeader title={title} />
        <ErrorBanner message={`Your role (${me.role}) cannot change pipelines`} />
      </div>
    );
  }
  return (
    <div class="page">
      <PageHeader title={title} />
      <p class="lead">
        The declaration as JSON, the same document as a <code>[[pipelines]]</code> table of the config file (see
        docs/compute.md): <code>trigger</code>, <code>input</code>, <code>steps</code>, <code>sinks</code> and{' '}
        <code>retry</code>. The box checks it whole before anything changes.
      </p>
      <ErrorBanner message={save.error || example.error || existing.error} hint={save.error ? 'Nothing was changed.' : undefined} />
      {editing && !loaded ? (
        existing.error ? null : <Loading />
      ) : (
        <form class="card form" onSubmit={submit} noValidate aria-label={title}>
          <div class="field decl-field">
            <div class="decl-label-row">
              <label for="pipeline-decl">Declaration (JSON)</label>
              <div class="decl-tools">
                {!editing ? (
                  <Button busy={example.busy} onClick={() => void fillExample()}>
                    New from example
                  </Button>
                ) : null}
                <Button onClick={format}>Format JSON</Button>
              </div>
            </div>
            <textarea
              id="pipeline-decl"
              ref={area}
              class="decl-editor"
              rows={22}
              value={text}
              spellcheck={false}
              autoCapitalize="none"
              autoComplete="off"
              placeholder={'{\n  "name": "my-pipeline",\n  "trigger": {"type": "file", "share": "…", "glob": "**/*.csv"},\n  "sinks": [{"type": "file", "share": "…"}]\n}'}
              onInput={(e) => {
                setText((e.currentTarget as HTMLTextAreaElement).value);
                if (jsonError) setJsonError('');
              }}
              aria-invalid={jsonError ? 'true' : undefined}
              aria-describedby={`pipeline-decl-hint${jsonError ? ' pipeline-decl-err' : ''}`}
            />
            <p class="field-hint" id="pipeline-decl-hint">
              {editing
                ? 'The whole declaration is replaced; fields left out take their defaults. The name stays.'
                : '“New from example” fills in a file pipeline on the first share.'}{' '}
              At most 64 KiB; null is not accepted (leave the field out).
            </p>
            {jsonError ? (
              <p class="field-error" id="pipeline-decl-err">
                {jsonError}
              </p>
            ) : null}
          </div>
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={save.busy}>
              {editing ? 'Save pipeline' : 'Create pipeline'}
            </Button>
            <Button
              onClick={() => navigate(editing ? href('pipeline', { name }) : href('compute'))}
              disabled={save.busy}
            >
              Cancel
            </Button>
          </div>
        </form>
      )}
    </div>
  );
}
