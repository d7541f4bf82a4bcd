import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, filenameFromDisposition, kTokenKey, type StorageLike } from './client';

class MemoryStorage implements StorageLike {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

function setup(respond: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const storage = new MemoryStorage();
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fetchFn = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    return respond(String(url), init ?? {});
  });
  const onUnauthenticated = vi.fn();
  const onReachability = vi.fn();
  const client = new ApiClient({ fetch: fetchFn as unknown as typeof fetch, storage, onUnauthenticated, onReachability });
  return { client, storage, calls, onUnauthenticated, onReachability };
}

// The ApiError a request fails with (the test fails if it succeeds).
function failure(p: Promise<unknown>): Promise<ApiError> {
  return p.then(
    () => {
      throw new Error('the request succeeded');
    },
    (e: unknown) => e as ApiError,
  );
}

function header(init: RequestInit, name: string): string | undefined {
  return (init.headers as Record<string, string>)[name];
}

describe('ApiClient', () => {
  it('sends the token as a bearer header and parses JSON', async () => {
    const t = setup(() => json(200, { user: 'admin', role: 'admin', api_token: false }));
    t.client.setToken('fss_abc');
    expect(t.storage.getItem(kTokenKey)).toBe('fss_abc');
    const me = await t.client.get<{ user: string }>('/me');
    expect(me.user).toBe('admin');
    expect(t.calls[0]!.url).toBe('/api/v1/me');
    expect(header(t.calls[0]!.init, 'Authorization')).toBe('Bearer fss_abc');
    expect(t.onReachability).toHaveBeenCalledWith(true);
  });

  it('sends no token on public routes and JSON bodies with their type', async () => {
    const t = setup(() => json(200, { token: 'fss_x', user: 'a', role: 'admin', expires: '' }));
    t.client.setToken('fss_old');
    await t.client.post('/login', { user: 'a', password: 'p' }, { auth: false });
    const init = t.calls[0]!.init;
    expect(header(init, 'Authorization')).toBeUndefined();
    expect(header(init, 'Content-Type')).toBe('application/json');
    expect(init.method).toBe('POST');
    expect(init.body).toBe('{"user":"a","password":"p"}');
  });

  it('builds queries, leaving out empty values', async () => {
    const t = setup(() => json(200, { entries: [], next_offset: null }));
    await t.client.get('/logs/copy', { query: { share: 'a b', result: '', limit: 50, path: undefined } });
    expect(t.calls[0]!.url).toBe('/api/v1/logs/copy?share=a%20b&limit=50');
  });

  it('resolves 204 with undefined', async () => {
    const t = setup(() => new Response(null, { status: 204 }));
    await expect(t.client.del('/users/bob')).resolves.toBeUndefined();
  });

  it('shows the API error message as it is', async () => {
    const t = setup(() => json(400, { error: { code: 'invalid_argument', message: "field 'name' is required" } }));
    t.client.setToken('fss_abc');
    const e = await failure(t.client.post('/shares', {}));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toBe("field 'name' is required");
    expect(e.status).toBe(400);
    expect(e.code).toBe('invalid_argument');
  });

  it('ends the session on 401 and says so', async () => {
    const t = setup(() => json(401, { error: { code: 'unauthenticated', message: 'the token has expired' } }));
    t.client.setToken('fss_abc');
    const e = await failure(t.client.get('/shares'));
    expect(e.message).toBe('Your session ended');
    expect(t.storage.getItem(kTokenKey)).toBeNull();
    expect(t.onUnauthenticated).toHaveBeenCalledTimes(1);
  });

  it('keeps the session on 401 when asked, and for a failed sign-in', async () => {
    const t = setup(() => json(401, { error: { code: 'unauthenticated', message: 'wrong user name or password' } }));
    const login = await failure(t.client.post('/login', { user: 'a', password: 'b' }, { auth: false }));
    expect(login.message).toBe('wrong user name or password');
    expect(t.onUnauthenticated).not.toHaveBeenCalled();
    t.client.setToken('fss_abc');
    await t.client.get('/me', { keepSessionOn401: true }).catch(() => {});
    expect(t.onUnauthenticated).not.toHaveBeenCalled();
    expect(t.storage.getItem(kTokenKey)).toBe('fss_abc');
  });

  it('names the role on 403', async () => {
    const t = setup(() => json(403, { error: { code: 'permission_denied', message: 'needs the admin role' } }));
    t.client.setToken('fss_abc');
    t.client.role = 'reader';
    const e = await failure(t.client.post('/shares', { name: 'x' }));
    expect(e.message).toBe('Your role (reader) cannot do this');
    expect(e.apiMessage).toBe('needs the admin role');
  });

  it('keeps the API message on 403 before anyone signed in (a wrong setup code)', async () => {
    const t = setup(() => json(403, { error: { code: 'permission_denied', message: 'wrong setup code' } }));
    const e = await failure(t.client.post('/setup', {}, { auth: false }));
    expect(e.message).toBe('wrong setup code');
  });

  it('says the box cannot be reached when fetch fails', async () => {
    const t = setup(() => {
      throw new TypeError('Failed to fetch');
    });
    const e = await failure(t.client.get('/device'));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toBe('The box cannot be reached');
    expect(e.status).toBe(0);
    expect(e.kind).toBe('network');
    expect(t.onReachability).toHaveBeenCalledWith(false);
  });

  it('times out a request that hangs', async () => {
    vi.useFakeTimers();
    try {
      const storage = new MemoryStorage();
      const fetchFn = (_u: RequestInfo | URL, init?: RequestInit) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        });
      const client = new ApiClient({ fetch: fetchFn as typeof fetch, storage, timeoutMs: 1000 });
      const p = failure(client.get('/device'));
      await vi.advanceTimersByTimeAsync(1001);
      const e = await p;
      expect(e.message).toBe('The box cannot be reached');
      expect(e.kind).toBe('timeout');
    } finally {
      vi.useRealTimers();
    }
  });

  it('describes an answer that is not the API JSON by its status', async () => {
    const t = setup(() => new Response('<html>Bad gateway</html>', { status: 502 }));
    const e = await failure(t.client.get('/device'));
    expect(e.message).toBe('The box answered with HTTP 502');
  });

  it('downloads files with the token and the name from Content-Disposition', async () => {
    const t = setup(
      () =>
        new Response('line\n', {
          status: 200,
          headers: { 'Content-Disposition': 'attachment; filename="fieldstack-copy.log"' },
        }),
    );
    t.client.setToken('fss_abc');
    const d = await t.client.download('/logs/copy', { query: { format: 'jsonl' } });
    expect(d.filename).toBe('fieldstack-copy.log');
    expect(await d.blob.text()).toBe('line\n');
    expect(header(t.calls[0]!.init, 'Authorization')).toBe('Bearer fss_abc');
    expect(t.calls[0]!.url).toBe('/api/v1/logs/copy?format=jsonl');
  });
});

describe('filenameFromDisposition', () => {
  it('reads quoted, bare and RFC 5987 names', () => {
    expect(filenameFromDisposition('attachment; filename="a b.tar.zst"')).toBe('a b.tar.zst');
    expect(filenameFromDisposition('attachment; filename=plain.key')).toBe('plain.key');
    expect(filenameFromDisposition("attachment; filename*=UTF-8''caf%C3%A9.log")).toBe('café.log');
    expect(filenameFromDisposition(null)).toBe('');
  });
});
