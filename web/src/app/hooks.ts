// Small hooks shared by the pages: loading data (with background refresh that keeps what is
// shown), running an action (busy flag + error), polling a job, and form state.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorMessage, isAbort } from '../api/client';
import type { Job } from '../api/types';
import { pollJob } from '../lib/jobs';
import type { Validator } from '../lib/validate';
import { useApp } from './context';

export interface Loaded<T> {
  data: T | undefined;
  error: string;
  loading: boolean;
  reload: () => Promise<void>;
  setData: (d: T) => void;
}

// Loads with `fn` now, when `deps` change and every `everyMs` (skipped while the tab is hidden).
// A failed refresh keeps the data already shown and sets `error`.
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[], everyMs = 0): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const ctrl = useRef<AbortController | null>(null);

  const reload = useCallback(async () => {
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setLoading(true);
    try {
      const d = await fnRef.current(c.signal);
      if (c.signal.aborted) return;
      setData(d);
      setError('');
    } catch (e) {
      if (isAbort(e) || c.signal.aborted) return;
      setError(errorMessage(e));
    } finally {
      if (!c.signal.aborted) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void reload();
    let timer: ReturnType<typeof setInterval> | undefined;
    if (everyMs > 0) {
      timer = setInterval(() => {
        if (!document.hidden) void reload();
      }, everyMs);
    }
    return () => {
      if (timer) clearInterval(timer);
      ctrl.current?.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, loading, reload, setData };
}

export interface Action {
  busy: boolean;
  error: string;
  setError: (m: string) => void;
  // Runs fn with busy set; returns its result, or undefined when it threw (error is set).
  run: <R>(fn: () => Promise<R>) => Promise<R | undefined>;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  const run = useCallback(async <R,>(fn: () => Promise<R>): Promise<R | undefined> => {
    setBusy(true);
    setError('');
    try {
      return await fn();
    } catch (e) {
      if (!isAbort(e) && alive.current) setError(errorMessage(e));
      return undefined;
    } finally {
      if (alive.current) setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

export interface JobRunner {
  job: Job | null;
  running: boolean; // starting or polling
  error: string; // why it could not start, or why polling stopped
  retrying: string; // a poll failed; polling goes on
  start: (begin: () => Promise<{ job: string }>) => Promise<Job | null>;
  cancel: () => Promise<void>;
  reset: () => void;
}

// Starts a job with `begin` (a POST answering {job}) and polls it until it ends.
export function useJob(): JobRunner {
  const { client } = useApp();
  const [job, setJob] = useState<Job | null>(null);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState('');
  const [retrying, setRetrying] = useState('');
  const ctrl = useRef<AbortController | null>(null);
  useEffect(() => () => ctrl.current?.abort(), []);

  const start = useCallback(
    async (begin: () => Promise<{ job: string }>) => {
      ctrl.current?.abort();
      const c = new AbortController();
      ctrl.current = c;
      setRunning(true);
      setError('');
      setRetrying('');
      setJob(null);
      try {
        const { job: id } = await begin();
        const done = await pollJob(client, id, {
          signal: c.signal,
          onUpdate: (j) => {
            setRetrying('');
            setJob(j);
          },
          onRetry: (e) => setRetrying(`${e.message}; still trying`),
        });
        return done;
      } catch (e) {
        if (!isAbort(e)) setError(errorMessage(e));
        return null;
      } finally {
        if (!c.signal.aborted) setRunning(false);
      }
    },
    [client],
  );

  const cancel = useCallback(async () => {
    if (!job) return;
    try {
      await client.post(`/jobs/${encodeURIComponent(job.id)}/cancel`);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [client, job]);

  const reset = useCallback(() => {
    ctrl.current?.abort();
    setJob(null);
    setRunning(false);
    setError('');
    setRetrying('');
  }, []);

  return { job, running, error, retrying, start, cancel, reset };
}

export interface Form<T extends Record<string, string>> {
  values: T;
  errors: Partial<Record<keyof T, string>>;
  set: (key: keyof T) => (value: string) => void;
  setValues: (v: T | ((prev: T) => T)) => void;
  setErrors: (e: Partial<Record<keyof T, string>>) => void;
  // Checks every rule; shows the messages and focuses the first bad field. True when all pass.
  validate: (rules: Partial<Record<keyof T, Validator>>, form?: HTMLFormElement | null) => boolean;
}

export function useForm<T extends Record<string, string>>(initial: T): Form<T> {
  const [values, setValues] = useState<T>(initial);
  const [errors, setErrors] = useState<Partial<Record<keyof T, string>>>({});
  const set = (key: keyof T) => (value: string) => {
    setValues((prev) => ({ ...prev, [key]: value }));
    setErrors((prev) => (prev[key] ? { ...prev, [key]: '' } : prev));
  };
  const validate = (rules: Partial<Record<keyof T, Validator>>, form?: HTMLFormElement | null) => {
    const next: Partial<Record<keyof T, string>> = {};
    let ok = true;
    for (const key of Object.keys(rules) as Array<keyof T>) {
      const rule = rules[key];
      if (!rule) continue;
      const m = rule(values[key] ?? '');
      if (m) {
        next[key] = m;
        ok = false;
      }
    }
    setErrors(next);
    if (!ok && form) {
      // After the render that marks the fields.
      setTimeout(() => form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
    }
    return ok;
  };
  return { values, errors, set, setValues, setErrors, validate };
}

// Calls fn every ms while mounted (not while the tab is hidden).
export function useInterval(fn: () => void, ms: number | null): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const t = setInterval(() => {
      if (!document.hidden) ref.current();
    }, ms);
    return () => clearInterval(t);
  }, [ms]);
}
