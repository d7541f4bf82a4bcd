// The app's top: finds out whether the box needs its first admin (GET /setup) and who is signed
// in (GET /me with the token of sessionStorage), then shows setup, sign-in or the signed-in
// shell. A 401 anywhere ends the session and comes back here with "Your session ended".
// After "Restart" it waits for a new boot_id of GET /setup and reloads the page (new UI files
// after an upgrade, a clean state); the notice to show after that reload waits in
// sessionStorage (kNoticeKey).

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiClient, errorMessage, kSessionEnded, kUnreachable } from '../api/client';
import type { Me } from '../api/types';
import { Button, Loading } from '../components/ui';
import { SetupPage } from '../pages/Setup';
import { LoginPage } from '../pages/Login';
import { WaitForBox } from '../pages/WaitForBox';
import { navigate, useRoute } from '../router';
import { Shell } from './Shell';

type Phase = 'boot' | 'unreachable' | 'ready' | 'restarting' | 'shutdown';

// A notice for the sign-in page that survives one reload (set before reloading after a restart).
export const kNoticeKey = 'fieldstack.notice';

function takeStoredNotice(): string {
  try {
    const t = window.sessionStorage.getItem(kNoticeKey) ?? '';
    window.sessionStorage.removeItem(kNoticeKey);
    return t;
  } catch {
    return '';
  }
}

export function App() {
  const route = useRoute();
  const [phase, setPhase] = useState<Phase>('boot');
  const [bootError, setBootError] = useState('');
  const [setupNeeded, setSetupNeeded] = useState(false);
  const [me, setMe] = useState<Me | null>(null);
  const [notice, setNotice] = useState<{ text: string; tone: 'error' | 'info' } | null>(null);

  const client = useMemo(() => new ApiClient(), []);
  // The daemon's boot_id when the page started, and the one a restart waits to see replaced.
  const bootId = useRef('');

  // A 401 on any request: back to sign-in, saying why.
  useEffect(() => {
    client.onUnauthenticated = () => {
      client.role = null;
      setMe(null);
      setNotice({ text: kSessionEnded, tone: 'error' });
    };
  }, [client]);

  const boot = useCallback(async () => {
    setPhase('boot');
    try {
      const setup = await client.get<{ needed: boolean; boot_id?: string }>('/setup', { auth: false });
      bootId.current = setup.boot_id ?? '';
      setSetupNeeded(setup.needed);
      const stored = takeStoredNotice();
      let who: Me | null = null;
      if (!setup.needed && client.token) {
        try {
          who = await client.get<Me>('/me');
          client.role = who.role;
          setMe(who);
        } catch {
          // 401 was handled (notice set); otherwise sign in again.
        }
      }
      if (stored && !who) setNotice({ text: stored, tone: 'info' });
      setPhase('ready');
    } catch (e) {
      setBootError(errorMessage(e));
      setPhase('unreachable');
    }
  }, [client]);

  useEffect(() => {
    void boot();
  }, [boot]);

  // While unreachable at start, try again every 5 s.
  useEffect(() => {
    if (phase !== 'unreachable') return;
    const t = setInterval(() => void boot(), 5000);
    return () => clearInterval(t);
  }, [phase, boot]);

  // Keep the address bar in step with what is shown.
  useEffect(() => {
    if (phase !== 'ready') return;
    if (setupNeeded) {
      if (route.name !== 'setup') navigate('#/setup', true);
    } else if (!me) {
      if (route.name !== 'login') navigate('#/login', true);
    } else if (route.name === 'login' || route.name === 'setup') {
      navigate('#/', true);
    }
  }, [phase, setupNeeded, me, route.name]);

  const signedIn = (who: Me) => {
    client.role = who.role;
    setNotice(null);
    setMe(who);
    navigate('#/');
  };

  const signOut = async () => {
    try {
      await client.post('/logout', {}, { keepSessionOn401: true });
    } catch {
      // Offline or already ended: forgetting the token here is what matters.
    }
    client.setToken(null);
    client.role = null;
    setMe(null);
    setNotice({ text: 'You signed out', tone: 'info' });
    navigate('#/login');
  };

  const powerOff = (action: 'restart' | 'shutdown', bootIdBefore?: string) => {
    if (bootIdBefore !== undefined) bootId.current = bootIdBefore;
    setPhase(action === 'restart' ? 'restarting' : 'shutdown');
  };

  // The session is gone on the box (the password changed): back to sign-in, saying why.
  const endSession = (text: string) => {
    client.setToken(null);
    client.role = null;
    setMe(null);
    setNotice({ text, tone: 'info' });
    navigate('#/login');
  };

  if (phase === 'boot') {
    return (
      <main class="center-page">
        <Loading label="Connecting to the box…" />
      </main>
    );
  }
  if (phase === 'unreachable') {
    return (
      <main class="center-page">
        <div class="auth-card">
          <h1>Fieldstack</h1>
          <div class="banner banner-error">
            <div role="alert">{bootError || kUnreachable}</div>
            <p class="banner-hint">Check the cable or Wi-Fi between this computer and the box. Trying again every 5 s.</p>
          </div>
          <Button variant="primary" onClick={() => void boot()}>
            Try again
          </Button>
        </div>
      </main>
    );
  }
  if (phase === 'restarting' || phase === 'shutdown') {
    return (
      <WaitForBox
        client={client}
        action={phase === 'restarting' ? 'restart' : 'shutdown'}
        bootId={bootId.current}
        onBack={() => {
          // The reloaded page asks GET /me whether the session outlived the restart (sessions
          // live in the daemon's memory, so it normally did not): if not, sign-in says why.
          try {
            window.sessionStorage.setItem(kNoticeKey, 'The box restarted. Sign in again.');
          } catch {
            /* storage refused: the sign-in page comes without the notice */
          }
          window.location.reload();
        }}
      />
    );
  }
  if (setupNeeded) {
    return (
      <SetupPage
        client={client}
        onDone={() => {
          setSetupNeeded(false);
          setNotice({ text: 'The admin password is set. Sign in with it.', tone: 'info' });
          navigate('#/login');
        }}
      />
    );
  }
  if (!me) {
    return <LoginPage client={client} notice={notice} onSignedIn={signedIn} />;
  }
  return (
    <Shell client={client} me={me} route={route} onSignOut={signOut} powerOff={powerOff} endSession={endSession} />
  );
}
