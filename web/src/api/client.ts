// ApiClient: the UI's one way to the box's REST API (api/openapi.yaml), same origin, /api/v1.
//
// - The session token lives in sessionStorage (gone with the tab) and goes out as
//   "Authorization: Bearer <token>" on every request that needs it.
// - Every failure becomes an ApiError whose `message` is for a person: the API's own
//   error.message; "Your role (reader) cannot do this" for 403 on a signed-in session; "The box
//   cannot be reached" when no answer came (offline, timeout); "Your session ended" for 401 on
//   a request that carried a token, after which the token is dropped and onUnauthenticated runs
//   (the app goes back to the sign-in page).
// - Requests time out (bad links hang rather than fail), so buttons never stay busy forever.
//
// fetch and storage are injected so that the unit tests run without a browser.

import type { Role } from './types';

export const kTokenKey = 'fieldstack.token';
export const kUnreachable = 'The box cannot be reached';
export const kSessionEnded = 'Your session ended';

export type ErrorKind = 'http' | 'network' | 'timeout';

export class ApiError extends Error {
  readonly status: number; // 0 when no answer came
  readonly code: string; // the API's error.code, or "unreachable"
  readonly apiMessage: string; // the API's error.message as sent ("" when none)
  readonly kind: ErrorKind;
  constructor(message: string, status: number, code: string, apiMessage: string, kind: ErrorKind) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.apiMessage = apiMessage;
    this.kind = kind;
  }
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ClientOptions {
  fetch?: typeof fetch;
  storage?: StorageLike;
  base?: string; // "/api/v1"
  timeoutMs?: number;
  onUnauthenticated?: () => void;
  // Called with true after any answer and false when the box could not be reached.
  onReachability?: (reachable: boolean) => void;
}

export interface RequestOptions {
  auth?: boolean; // send the token (default true)
  signal?: AbortSignal;
  timeoutMs?: number;
  // Do not end the session on 401 (used while waiting for a restarted box).
  keepSessionOn401?: boolean;
  query?: Record<string, string | number | boolean | undefined | null>;
}

export interface Download {
  blob: Blob;
  filename: string;
}

// The file name of a Content-Disposition header, or "".
export function filenameFromDisposition(header: string | null): string {
  if (!header) return '';
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim().replace(/^"|"$/g, ''));
    } catch {
      /* fall through to the plain form */
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)/i.exec(header);
  if (!plain) return '';
  return (plain[1] ?? plain[2] ?? '').trim();
}

export function buildQuery(query: RequestOptions['query']): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export class ApiClient {
  private readonly fetchFn: typeof fetch;
  private readonly storage: StorageLike;
  private readonly base: string;
  private readonly timeoutMs: number;
  onUnauthenticated: () => void;
  onReachability: (reachable: boolean) => void;
  // The signed-in role, for the 403 message; set by the app after GET /me.
  role: Role | null = null;

  constructor(opts: ClientOptions = {}) {
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.storage = opts.storage ?? window.sessionStorage;
    this.base = opts.base ?? '/api/v1';
    this.timeoutMs = opts.timeoutMs ?? 30000;
    this.onUnauthenticated = opts.onUnauthenticated ?? (() => {});
    this.onReachability = opts.onReachability ?? (() => {});
  }

  get token(): string | null {
    try {
      return this.storage.getItem(kTokenKey);
    } catch {
      return null;
    }
  }

  setToken(token: string | null): void {
    try {
      if (token) this.storage.setItem(kTokenKey, token);
      else this.storage.removeItem(kTokenKey);
    } catch {
      /* storage refused (private mode): the session lasts until reload */
    }
  }

  url(path: string, query?: RequestOptions['query']): string {
    return this.base + path + buildQuery(query);
  }

  // Sends a request; resolves with the parsed JSON (undefined for 204), rejects with ApiError
  // (or the AbortError of opts.signal).
  async request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, body, opts);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError('The box sent an answer the page cannot read', res.status, 'internal', '', 'http');
    }
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, opts);
  }
  put<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, body, opts);
  }
  patch<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, body, opts);
  }
  del(path: string, opts?: RequestOptions): Promise<void> {
    return this.request<void>('DELETE', path, undefined, opts);
  }

  // GETs a file (a log download, a support package, the recovery key) with the token.
  async download(path: string, opts: RequestOptions = {}, fallbackName = 'download'): Promise<Download> {
    const res = await this.send('GET', path, undefined, { timeoutMs: 600000, ...opts });
    const blob = await res.blob();
    const filename = filenameFromDisposition(res.headers.get('Content-Disposition')) || fallbackName;
    return { blob, filename };
  }

  private async send(method: string, path: string, body: unknown, opts: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const auth = opts.auth ?? true;
    const token = auth ? this.token : null;
    if (token) headers['Authorization'] = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), opts.timeoutMs ?? this.timeoutMs);
    const onOuterAbort = () => timeout.abort();
    opts.signal?.addEventListener('abort', onOuterAbort);
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), {
        method,
        headers,
        body: payload,
        signal: timeout.signal,
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e; // the caller gave up: not the box's fault
      this.onReachability(false);
      throw new ApiError(kUnreachable, 0, 'unreachable', '', timeout.signal.aborted ? 'timeout' : 'network');
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }
    this.onReachability(true);
    if (res.ok) return res;
    throw await this.errorOf(res, Boolean(token), opts);
  }

  private async errorOf(res: Response, hadToken: boolean, opts: RequestOptions): Promise<ApiError> {
    let code = '';
    let apiMessage = '';
    try {
      const j = (await res.json()) as { error?: { code?: string; message?: string } };
      code = j?.error?.code ?? '';
      apiMessage = j?.error?.message ?? '';
    } catch {
      /* not the API's JSON (a proxy's page): described by the status below */
    }
    const status = res.status;
    let message = apiMessage || `The box answered with HTTP ${status}`;
    if (status === 401 && hadToken) {
      message = kSessionEnded;
      if (!opts.keepSessionOn401) {
        this.setToken(null);
        this.onUnauthenticated();
      }
    } else if (status === 403 && hadToken && this.role) {
      message = `Your role (${this.role}) cannot do this`;
    }
    return new ApiError(message, status, code || (status === 401 ? 'unauthenticated' : 'internal'), apiMessage, 'http');
  }
}

// A person's message for any thrown value.
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}
