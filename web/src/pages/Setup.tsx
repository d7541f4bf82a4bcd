// First start: the setup code from the daemon's console, the first admin's name and password.

import { useRef } from 'preact/hooks';
import type { ApiClient } from '../api/client';
import { useAction, useForm } from '../app/hooks';
import { Button, ErrorBanner, TextField } from '../components/ui';
import { all, password, required, sameAs, setupCode, userName } from '../lib/validate';

export function SetupPage({ client, onDone }: { client: ApiClient; onDone: () => void }) {
  const form = useForm({ code: '', user: 'admin', password: '', repeat: '' });
  const action = useAction();
  const ref = useRef<HTMLFormElement>(null);
  const { values, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = form.validate(
      {
        code: setupCode,
        user: all(required('User name'), userName),
        password,
        repeat: all(required('Repeat the password'), sameAs(() => values.password)),
      },
      ref.current,
    );
    if (!ok) return;
    const done = await action.run(async () => {
      await client.post('/setup', {
        setup_code: values.code.trim().toUpperCase(),
        user: values.user.trim(),
        password: values.password,
      }, { auth: false });
      return true;
    });
    if (done) onDone();
  };

  return (
    <main class="center-page">
      <form class="auth-card" ref={ref} onSubmit={submit} noValidate>
        <div class="auth-brand">Fieldstack</div>
        <h1 id="page-title" tabIndex={-1}>
          Set the admin password
        </h1>
        <p class="lead">
          This box has no admin yet. Its console (or <code>journalctl -u fieldstack</code>) shows a setup code
          once, at its first start: whoever can read it may set the first admin.
        </p>
        <ErrorBanner
          message={action.error}
          hint={action.error.includes('exist') ? 'An admin exists already: reload the page to sign in.' : undefined}
        />
        <TextField
          label="Setup code"
          value={values.code}
          onValue={set('code')}
          error={errors.code}
          autoComplete="off"
          spellcheck={false}
          class="mono-input"
          placeholder="ABCD-EFGH-…"
        />
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
          autoComplete="new-password"
          hint="At least 12 characters. A short sentence is easy to type and hard to guess."
        />
        <TextField
          label="Repeat password"
          type="password"
          value={values.repeat}
          onValue={set('repeat')}
          error={errors.repeat}
          autoComplete="new-password"
        />
        <Button type="submit" variant="primary" busy={action.busy} class="btn-wide">
          Set password
        </Button>
      </form>
    </main>
  );
}

