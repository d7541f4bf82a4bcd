// The signed-in frame: a header (the box's name, who is signed in, theme, sign out), the main
// navigation (a side bar; a top bar on narrow screens) with the active-alert count, and the page.

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import type { Alert, Device, Me } from '../api/types';
import { Button } from '../components/ui';
import { AccountsPage } from '../pages/Accounts';
import { AlertsPage } from '../pages/Alerts';
import { BandwidthPage } from '../pages/Bandwidth';
import { CachePage } from '../pages/Cache';
import { ComputePage, PipelineFormPage, PipelinePage } from '../pages/Compute';
import { DashboardPage } from '../pages/Dashboard';
import { DevicePage } from '../pages/Device';
import { DiagnosticsPage } from '../pages/Diagnostics';
import { LogsPage } from '../pages/Logs';
import { ShareFormPage, SharesPage } from '../pages/Shares';
import { SupportPage } from '../pages/Support';
import { UsersPage } from '../pages/Users';
import type { Route, RouteName } from '../router';
import { href } from '../router';
import { ThemeToggle } from './theme';
import { AppContext, type AppState } from './context';

const kNav: Array<{ label: string; route: RouteName; also?: RouteName[] }> = [
  { label: 'Dashboard', route: 'dashboard' },
  { label: 'Shares', route: 'shares', also: ['shareNew', 'shareEdit'] },
  { label: 'Users and keys', route: 'users' },
  { label: 'Storage accounts', route: 'accounts', also: ['accountEdit'] },
  { label: 'Bandwidth', route: 'bandwidth' },
  { label: 'Cache', route: 'cache' },
  { label: 'Compute', route: 'compute', also: ['pipelineNew', 'pipeline', 'pipelineEdit'] },
  { label: 'Logs', route: 'logs' },
  { label: 'Alerts', route: 'alerts' },
  { label: 'Diagnostics', route: 'diagnostics' },
  { label: 'Support', route: 'support' },
  { label: 'Device', route: 'device' },
];

function Page({ route }: { route: Route }) {
  switch (route.name) {
    case 'dashboard':
      return <DashboardPage />;
    case 'shares':
      return <SharesPage />;
    case 'shareNew':
      return <ShareFormPage />;
    case 'shareEdit':
      return <ShareFormPage name={route.params['name']} />;
    case 'users':
      return <UsersPage />;
    case 'accounts':
      return <AccountsPage />;
    case 'accountEdit':
      return <AccountsPage edit={route.params['name']} />;
    case 'bandwidth':
      return <BandwidthPage />;
    case 'cache':
      return <CachePage />;
    case 'compute':
      return <ComputePage />;
    case 'pipelineNew':
      return <PipelineFormPage />;
    case 'pipeline':
      return <PipelinePage name={route.params['name']!} />;
    case 'pipelineEdit':
      return <PipelineFormPage name={route.params['name']} />;
    case 'logs':
      return <LogsPage />;
    case 'alerts':
      return <AlertsPage />;
    case 'diagnostics':
      return <DiagnosticsPage />;
    case 'support':
      return <SupportPage />;
    case 'device':
      return <DevicePage />;
    default:
      return (
        <div class="page">
          <h1 tabIndex={-1} id="page-title">
            Page not found
          </h1>
          <p>
            There is no page at <code>#{route.path}</code>. <a href="#/">Open the start page</a>.
          </p>
        </div>
      );
  }
}

function worst(alerts: Alert[]): string {
  if (alerts.some((a) => a.severity === 'critical')) return 'critical';
  if (alerts.some((a) => a.severity === 'warning')) return 'warning';
  return 'info';
}

export function Shell({
  client,
  me,
  route,
  onSignOut,
  powerOff,
  endSession,
}: {
  client: ApiClient;
  me: Me;
  route: Route;
  onSignOut: () => void;
  powerOff: AppState['powerOff'];
  endSession: AppState['endSession'];
}) {
  const [device, setDevice] = useState<Device | null>(null);
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [online, setOnline] = useState(true);
  const [signingOut, setSigningOut] = useState(false);

  useEffect(() => {
    client.onReachability = setOnline;
    return () => {
      client.onReachability = () => {};
    };
  }, [client]);

  const refreshDevice = useCallback(() => {
    client.get<Device>('/device').then(setDevice, () => {});
  }, [client]);
  const refreshAlerts = useCallback(() => {
    client.get<{ alerts: Alert[] }>('/alerts').then((r) => setAlerts(r.alerts), () => {});
  }, [client]);

  useEffect(() => {
    refreshDevice();
    refreshAlerts();
    const t = setInterval(() => {
      if (!document.hidden) refreshAlerts();
    }, 15000);
    return () => clearInterval(t);
  }, [refreshDevice, refreshAlerts]);

  // Move the focus to the new page's heading when the page changes (not at the first render),
  // so keyboard and screen-reader users start at the top of what they asked for.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('page-title')?.focus({ preventScroll: false });
    window.scrollTo(0, 0);
  }, [route.path]);

  const pageLabel = kNav.find((n) => n.route === route.name || n.also?.includes(route.name))?.label ?? 'Fieldstack';
  useEffect(() => {
    document.title = `${pageLabel} · ${device?.name ?? 'Fieldstack'}`;
  }, [pageLabel, device?.name]);

  const state: AppState = useMemo(
    () => ({ client, me, device, refreshDevice, alerts, refreshAlerts, powerOff, endSession }),
    [client, me, device, refreshDevice, alerts, refreshAlerts, powerOff, endSession],
  );

  const count = alerts?.length ?? 0;
  return (
    <AppContext.Provider value={state}>
      <a class="skip-link" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById('page-title')?.focus();
      }}>
        Skip to the page
      </a>
      <div class="shell">
        <header class="topbar">
          <div class="brand">
            <svg class="brand-mark" viewBox="0 0 24 24" aria-hidden="true" width="22" height="22">
              <rect x="3" y="4" width="18" height="5" rx="1.5" />
              <rect x="3" y="10.5" width="18" height="5" rx="1.5" />
              <rect x="3" y="17" width="18" height="3.5" rx="1.5" />
            </svg>
            <span class="brand-name">Fieldstack</span>
            <span class="device-name" title="Device name">
              {device?.name ?? '\u00a0'}
            </span>
          </div>
          <div class="topbar-right">
            <span class={`conn ${online ? 'conn-ok' : 'conn-lost'}`} role="status">
              <span class="dot" aria-hidden="true" />
              {online ? 'Connected' : 'Offline'}
            </span>
            <span class="who">
              <span class="who-user">{me.user}</span>
              <span class={`role role-${me.role}`}>{me.role}</span>
            </span>
            <ThemeToggle />
            <Button
              variant="ghost"
              busy={signingOut}
              onClick={() => {
                setSigningOut(true);
                onSignOut();
              }}
            >
              Sign out
            </Button>
          </div>
        </header>
        <nav aria-label="Main" class="sidenav">
          <ul>
            {kNav.map((n) => {
              const active = route.name === n.route || Boolean(n.also?.includes(route.name));
              return (
                <li key={n.route}>
                  <a
                    href={href(n.route)}
                    aria-current={active ? 'page' : undefined}
                    aria-describedby={n.route === 'alerts' && count > 0 ? 'alert-count-desc' : undefined}
                  >
                    {n.label}
                    {n.route === 'alerts' && count > 0 ? (
                      <span class={`count-badge sev-${worst(alerts ?? [])}`} aria-hidden="true">
                        {count}
                      </span>
                    ) : null}
                  </a>
                </li>
              );
            })}
          </ul>
          <span id="alert-count-desc" hidden>
            {count === 1 ? '1 active alert' : `${count} active alerts`}
          </span>
        </nav>
        <main id="main" class="main">
          <Page route={route} />
        </main>
      </div>
    </AppContext.Provider>
  );
}
