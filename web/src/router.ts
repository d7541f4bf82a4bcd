// A tiny hash router: "#/shares/photos" -> {name: 'shareEdit', params: {name: 'photos'}}.
// Hash routes need nothing from the server (it answers index.html for the page itself) and
// survive reloads. parseHash and href are pure; useRoute follows `hashchange`.

import { useEffect, useState } from 'preact/hooks';

export type RouteName =
  | 'setup'
  | 'login'
  | 'dashboard'
  | 'shares'
  | 'shareNew'
  | 'shareEdit'
  | 'users'
  | 'accounts'
  | 'accountEdit'
  | 'bandwidth'
  | 'cache'
  | 'compute'
  | 'pipelineNew'
  | 'pipeline'
  | 'pipelineEdit'
  | 'logs'
  | 'alerts'
  | 'diagnostics'
  | 'support'
  | 'device'
  | 'notFound';

export interface Route {
  name: RouteName;
  params: Record<string, string>;
  path: string; // the hash without "#", e.g. "/shares/photos"
}

// Order matters: the first match wins ("/shares/new" before "/shares/:name").
const kPatterns: Array<[RouteName, string]> = [
  ['dashboard', '/'],
  ['setup', '/setup'],
  ['login', '/login'],
  ['shares', '/shares'],
  ['shareNew', '/shares/new'],
  ['shareEdit', '/shares/:name'],
  ['users', '/users'],
  ['accounts', '/accounts'],
  ['accountEdit', '/accounts/:name'],
  ['bandwidth', '/bandwidth'],
  ['cache', '/cache'],
  ['compute', '/compute'],
  ['pipelineNew', '/compute/new'],
  ['pipeline', '/compute/pipelines/:name'],
  ['pipelineEdit', '/compute/pipelines/:name/edit'],
  ['logs', '/logs'],
  ['alerts', '/alerts'],
  ['diagnostics', '/diagnostics'],
  ['support', '/support'],
  ['device', '/device'],
];

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export function parseHash(hash: string): Route {
  let path = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = path.indexOf('?');
  if (q >= 0) path = path.slice(0, q);
  if (!path.startsWith('/')) path = '/' + path;
  const parts = split(path);
  for (const [name, pattern] of kPatterns) {
    const want = split(pattern);
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      const w = want[i]!;
      if (w.startsWith(':')) {
        const v = decode(parts[i]!);
        if (v === null || v === '') ok = false;
        else params[w.slice(1)] = v;
      } else if (w !== parts[i]) {
        ok = false;
      }
    }
    if (ok) return { name, params, path };
  }
  return { name: 'notFound', params: {}, path };
}

// The hash of a route: href('shareEdit', {name: 'a b'}) -> "#/shares/a%20b".
export function href(name: RouteName, params: Record<string, string> = {}): string {
  const pattern = kPatterns.find(([n]) => n === name)?.[1] ?? '/';
  const path = pattern
    .split('/')
    .map((seg) => (seg.startsWith(':') ? encodeURIComponent(params[seg.slice(1)] ?? '') : seg))
    .join('/');
  return '#' + (path === '' ? '/' : path);
}

export function navigate(hash: string, replace = false): void {
  if (window.location.hash === hash) return;
  if (replace) {
    window.history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    window.location.hash = hash;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
