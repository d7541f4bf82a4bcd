// Bandwidth: the weekly upload schedule (painted on a grid, stored as an rclone timetable),
// the daily and monthly data budgets, parallel transfers, and the limits in force now.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { Bandwidth } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useForm, useLoad } from '../app/hooks';
import { ScheduleGrid, colourClasses } from '../components/ScheduleGrid';
import { Button, ErrorBanner, Loading, Notice, PageHeader, Section, TextField } from '../components/ui';
import { bytesToSizeText, formatRate } from '../lib/format';
import {
  UNLIMITED,
  describeRate,
  emptyGrid,
  gridToTimetable,
  legendOf,
  normalizeRate,
  timetableToGrid,
  type Grid,
} from '../lib/timetable';
import { budget, integer, rate as rateRule, required, all } from '../lib/validate';

const kPresets = ['unlimited', '0', '256k', '1M', '10M'];

export function BandwidthPage() {
  const { client, me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  const bw = useLoad((signal) => client.get<Bandwidth>('/bandwidth', { signal }), [], 30000);
  const [grid, setGrid] = useState<Grid>(emptyGrid());
  const [stored, setStored] = useState<string | null>(null);
  const [readNote, setReadNote] = useState('');
  const [rate, setRate] = useState('512k');
  const [rateError, setRateError] = useState('');
  const saveSchedule = useAction();
  const [savedNote, setSavedNote] = useState('');
  const rateRef = useRef(rate);
  rateRef.current = rate;

  // Take the box's timetable into the grid when it changes there (not on every refresh, which
  // would undo unsaved painting).
  useEffect(() => {
    const t = bw.data?.timetable;
    if (t === undefined || t === stored) return;
    setStored(t);
    const g = timetableToGrid(t);
    setGrid(g.grid);
    if (!g.ok) setReadNote(`The stored timetable could not be read (${g.error}); saving replaces it.`);
    else if (!g.exact)
      setReadNote('The stored timetable changes rates off the hour; the grid shows the rate at the start of each hour and saving rounds to whole hours.');
    else setReadNote('');
  }, [bw.data?.timetable]);

  const checkRate = (focus = true): boolean => {
    const m = rateRule(rateRef.current);
    setRateError(m);
    if (m && focus) document.getElementById('rate-input')?.focus();
    return !m;
  };

  const paint = (d: number, h: number): boolean => {
    const token = normalizeRate(rateRef.current);
    if (rateRule(token)) return false;
    setGrid((g) => {
      if (g[d]![h] === token) return g;
      const next = g.map((row) => row.slice());
      next[d]![h] = token;
      return next;
    });
    setSavedNote('');
    return true;
  };

  const timetable = gridToTimetable(grid);
  const dirty = stored !== null && timetable !== stored;

  const save = async () => {
    setSavedNote('');
    const res = await saveSchedule.run(() => client.put<Bandwidth>('/bandwidth', { timetable }));
    if (res) {
      setStored(res.timetable);
      bw.setData(res);
      setSavedNote('Schedule saved. Uploads follow it from now on.');
    }
  };

  const legend = legendOf(grid);
  const colours = colourClasses(grid);
  const cur = bw.data?.current;
  return (
    <div class="page">
      <PageHeader title="Bandwidth" />
      <ErrorBanner message={saveSchedule.error || bw.error} />
      {/* Not a heading: "Bandwidth" is this page's h1. */}
      <div class="card bw-now">
        <p class="card-title">Bandwidth now</p>
        <dl class="stats stats-inline">
          <div class="stat">
            <dt>Upload limit</dt>
            <dd>{cur ? formatRate(cur.up_bytes_per_s) : '—'}</dd>
          </div>
          <div class="stat">
            <dt>Download limit</dt>
            <dd>{cur ? formatRate(cur.down_bytes_per_s) : '—'}</dd>
          </div>
          <div class="stat">
            <dt>Parallel transfers</dt>
            <dd>{bw.data ? bw.data.transfers : '—'}</dd>
          </div>
        </dl>
      </div>
      <Section title="Upload schedule">
        {bw.data === undefined && !bw.error ? <Loading /> : null}
        <p class="muted section-lead" id="schedule-help">
          Pick a rate, then click or drag over hours to paint it (keyboard: arrow keys move, Space or Enter paints,
          Shift+arrow paints while moving). A rate holds until the next change; hours are the box’s clock (UTC). Rates: unlimited (or off) for no limit,
          0 to pause uploads, or a number with a unit: 512k, 10M, 1G (per second; “512k:10M” sets upload:download).
        </p>
        {readNote ? <Notice tone="warn">{readNote}</Notice> : null}
        {isAdmin ? (
          <div class="rate-picker">
            <div class="field field-inline">
              <label for="rate-input">Rate</label>
              <input
                id="rate-input"
                type="text"
                list="rate-presets"
                value={rate}
                spellcheck={false}
                autoComplete="off"
                aria-invalid={rateError ? 'true' : undefined}
                aria-describedby={rateError ? 'rate-error' : 'rate-meaning'}
                onInput={(e) => {
                  setRate((e.currentTarget as HTMLInputElement).value);
                  setRateError('');
                }}
                onBlur={() => rate.trim() !== '' && checkRate(false)}
              />
              <datalist id="rate-presets">
                {kPresets.map((p) => (
                  <option key={p} value={p} />
                ))}
              </datalist>
              {rateError ? (
                <p class="field-error" id="rate-error">
                  {rateError}
                </p>
              ) : (
                <p class="field-hint" id="rate-meaning">
                  {rateRule(rate) ? '\u00a0' : describeRate(normalizeRate(rate))}
                </p>
              )}
            </div>
            <div class="chips" role="group" aria-label="Presets">
              {kPresets.map((p) => (
                <button
                  type="button"
                  key={p}
                  class="chip"
                  aria-pressed={normalizeRate(rate) === p ? 'true' : 'false'}
                  onClick={() => {
                    setRate(p);
                    setRateError('');
                  }}
                >
                  {p === '0' ? '0 (paused)' : p}
                </button>
              ))}
            </div>
          </div>
        ) : null}
        <ScheduleGrid grid={grid} onPaint={paint} canPaint={() => checkRate()} disabled={!isAdmin} />
        <div class="legend" aria-label="Legend" role="list">
          {legend.map((t) => (
            <span class="legend-item" role="listitem" key={t}>
              <span class={`legend-swatch ${colours.get(t)}`} aria-hidden="true" />
              <span class="legend-token">{t}</span>
              <span class="muted">{describeRate(t)}</span>
            </span>
          ))}
        </div>
        <div class="field timetable-field">
          <label for="timetable-raw">Stored timetable</label>
          <input
            id="timetable-raw"
            type="text"
            readOnly
            class="mono-input"
            value={stored ?? ''}
            placeholder="(empty: unlimited)"
            aria-describedby="timetable-preview"
          />
          <p class="field-hint" id="timetable-preview">
            {dirty ? (
              <>
                Unsaved changes. Saving stores: <code>{timetable || '(empty: unlimited)'}</code>
              </>
            ) : (
              'The rclone timetable the box keeps (read-only; it follows the grid when saved).'
            )}
          </p>
        </div>
        {isAdmin ? (
          <div class="form-actions">
            <Button variant="primary" busy={saveSchedule.busy} onClick={() => void save()}>
              Save schedule
            </Button>
            <Button
              disabled={saveSchedule.busy || !dirty}
              onClick={() => {
                if (stored !== null) setGrid(timetableToGrid(stored).grid);
              }}
            >
              Undo changes
            </Button>
            <Button
              variant="ghost"
              disabled={saveSchedule.busy}
              onClick={() => setGrid(emptyGrid(UNLIMITED))}
            >
              Clear to unlimited
            </Button>
            {savedNote ? <span class="saved-note" role="status">{savedNote}</span> : null}
          </div>
        ) : null}
      </Section>
      <BudgetsSection bw={bw.data} isAdmin={isAdmin} onSaved={(b) => bw.setData(b)} />
    </div>
  );
}

function BudgetsSection({
  bw,
  isAdmin,
  onSaved,
}: {
  bw: Bandwidth | undefined;
  isAdmin: boolean;
  onSaved: (b: Bandwidth) => void;
}) {
  const { client } = useApp();
  const form = useForm({ daily: '', monthly: '', transfers: '4' });
  const save = useAction();
  const [note, setNote] = useState('');
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;
  const loadedFrom = useRef<Bandwidth | null>(null);

  useEffect(() => {
    if (!bw || loadedFrom.current) return;
    loadedFrom.current = bw;
    form.setValues({
      daily: bytesToSizeText(bw.daily_budget_bytes),
      monthly: bytesToSizeText(bw.monthly_budget_bytes),
      transfers: String(bw.transfers),
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [bw]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setNote('');
    const ok = form.validate(
      { daily: budget, monthly: budget, transfers: all(required('Parallel transfers'), integer(1, 64)) },
      ref.current,
    );
    if (!ok) return;
    const res = await save.run(() =>
      client.put<Bandwidth>('/bandwidth', {
        daily_budget: v.daily.trim(),
        monthly_budget: v.monthly.trim(),
        transfers: Number(v.transfers),
      }),
    );
    if (res) {
      onSaved(res);
      form.setValues({
        daily: bytesToSizeText(res.daily_budget_bytes),
        monthly: bytesToSizeText(res.monthly_budget_bytes),
        transfers: String(res.transfers),
      });
      setNote('Budgets saved.');
    }
  };

  return (
    <Section title="Budgets and transfers">
      <ErrorBanner message={save.error} />
      <form class="form" ref={ref} onSubmit={submit} noValidate>
        <div class="form-grid form-grid-3">
          <TextField
            label="Daily budget"
            value={v.daily}
            onValue={set('daily')}
            error={errors.daily}
            disabled={!isAdmin}
            placeholder="none"
            spellcheck={false}
            hint="At most this much uploaded a day (box time), e.g. 10G. Empty: no budget."
          />
          <TextField
            label="Monthly budget"
            value={v.monthly}
            onValue={set('monthly')}
            error={errors.monthly}
            disabled={!isAdmin}
            placeholder="none"
            spellcheck={false}
            hint="For metered links, e.g. 200G. Empty: no budget."
          />
          <TextField
            label="Parallel transfers"
            type="number"
            min={1}
            max={64}
            inputMode="numeric"
            value={v.transfers}
            onValue={set('transfers')}
            error={errors.transfers}
            disabled={!isAdmin}
            hint="Files (and parts of large files) uploading at once: 1 to 64."
          />
        </div>
        {isAdmin ? (
          <div class="form-actions">
            <Button type="submit" variant="primary" busy={save.busy}>
              Save budgets
            </Button>
            {note ? <span class="saved-note" role="status">{note}</span> : null}
          </div>
        ) : null}
      </form>
    </Section>
  );
}
