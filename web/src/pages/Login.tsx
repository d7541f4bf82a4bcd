// Sign-in: POST /api/v1/login; the session token goes to sessionStorage.

import { useRef } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import type { Me, Session } from '../api/types';
import { useAction, useForm } from '../app/hooks';
import { Button, ErrorBanner, Notice, TextField } from '../components/ui';
import { required } from '../lib/validate';

export function LoginPage({
  client,
  notice,
  onSignedIn,
}: {
  client: ApiClient;
  notice: { text: string; tone: 'error' | 'info' } | null;
  onSignedIn: (me: Me) => void;
}) {
  const form = useForm({ user: '', password: '' });
  const action = useAction();
  const ref = useRef<HTMLFormElement>(null);
  const { values, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!form.validate({ user: required('User name'), password: required('Password') }, ref.current)) return;
    const session = await action.run(() =>
      client.post<Session>('/login', { user: values.user.trim(), password: values.password }, { auth: false }),
    );
    if (!session) return;
    client.setToken(session.token);
    onSignedIn({ user: session.user, role: session.role, api_token: false });
  };

  // One alert at a time: the sign-in's own error wins over why we came here.
  const showNotice = notice && !action.error;
  return (
    <main class="center-page">
      <form class="auth-card" ref={ref} onSubmit={submit} noValidate>
        <div class="auth-brand">Fieldstack</div>
        <h1 id="page-title" tabIndex={-1}>
          Sign in
        </h1>
        {showNotice && notice.tone === 'error' ? <ErrorBanner message={notice.text} hint="Sign in again to go on." /> : null}
        {showNotice && notice.tone === 'info' ? <Notice>{notice.text}</Notice> : null}
        <ErrorBanner message={action.error} />
        <TextField
          label="User name"
          value={values.user}
          onValue={set('user')}
          error={errors.user}
          autoComplete="username"
          autoCapitalize="none"
          spellcheck={false}
        />
        <TextField
          label="Password"
          type="password"
          value={values.password}
          onValue={set('password')}
          error={errors.password}
          autoComplete="current-password"
        />
        <Button type="submit" variant="primary" busy={action.busy} class="btn-wide">
          Sign in
        </Button>
      </form>
    </main>
  );
}
