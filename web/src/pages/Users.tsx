// Users and keys: management users (admin: add, change role or password, delete), S3/Blob
// access keys (admin: add, change share rights, delete), API tokens (every user: their own; an
// admin sees all) and the signed-in user's own password. Secrets (a new key's secret, a new
// token) are shown once.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import type { AccessKey, Role, Token, User } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useForm, useLoad } from '../app/hooks';
import { CancelAnd, Dialog } from '../components/Dialog';
import { ActionsHeader, Button, Empty, ErrorBanner, Loading, PageHeader, RowActions, Section, SelectField, TextField } from '../components/ui';
import { formatTime } from '../lib/format';
import {
  all,
  freeText,
  identifier,
  integer,
  password,
  required,
  sameAs,
  shareRights,
  splitList,
  userName,
} from '../lib/validate';

const kRoles: Role[] = ['reader', 'operator', 'admin'];

function Secret({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="secret">
      <span class="secret-label">{label}</span>
      <code class="secret-value">{value}</code>
      <Button
        variant="ghost"
        aria-label={`Copy ${label.toLowerCase()}`}
        onClick={() => {
          navigator.clipboard?.writeText(value).then(
            () => setCopied(true),
            () => setCopied(false),
          );
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </Button>
    </div>
  );
}

function UsersSection({ setError }: { setError: (m: string) => void }) {
  const { client, me } = useApp();
  const users = useLoad((signal) => client.get<{ users: User[] }>('/users', { signal }), []);
  const form = useForm({ name: '', role: 'operator', password: '' });
  const add = useAction();
  const del = useAction();
  const [editing, setEditing] = useState<User | null>(null);
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!form.validate({ name: all(required('User name'), userName), password }, ref.current)) return;
    const ok = await add.run(async () => {
      await client.post('/users', { name: v.name.trim(), role: v.role, password: v.password });
      return true;
    });
    if (ok) {
      form.setValues({ name: '', role: 'operator', password: '' });
      await users.reload();
    }
  };

  const remove = async (name: string) => {
    const ok = await del.run(async () => {
      await client.del(`/users/${encodeURIComponent(name)}`);
      return true;
    });
    if (ok) await users.reload();
  };

  const error = add.error || del.error || users.error;
  useEffect(() => setError(error), [error]);
  return (
    <Section title="Users">
      {users.data === undefined ? (
        users.error ? null : <Loading />
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Password changed</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {users.data.users.map((u) => (
                <tr key={u.name}>
                  <th scope="row">
                    {u.name}
                    {u.name === me.user ? <span class="muted"> (you)</span> : null}
                  </th>
                  <td>
                    <span class={`role role-${u.role}`}>{u.role}</span>
                  </td>
                  <td>{formatTime(u.created)}</td>
                  <td>{formatTime(u.password_changed)}</td>
                  <RowActions>
                    <Button
                      aria-label={`Edit ${u.name}`}
                      disabled={u.name === me.user}
                      title={u.name === me.user ? 'Change your own password under “Change my password”' : undefined}
                      onClick={() => setEditing(u)}
                    >
                      Edit
                    </Button>
                    <Button
                      variant="danger"
                      aria-label={`Delete ${u.name}`}
                      busy={del.busy}
                      disabled={u.name === me.user}
                      title={u.name === me.user ? 'You cannot delete yourself while signed in' : undefined}
                      onClick={() => void remove(u.name)}
                    >
                      Delete
                    </Button>
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing ? (
        <EditUserDialog
          user={editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void users.reload();
          }}
        />
      ) : null}
      <form class="subform" ref={ref} onSubmit={submit} noValidate aria-labelledby="new-user-title">
        <h3 id="new-user-title">New user</h3>
        <div class="form-grid form-grid-3">
          <TextField
            label="User name"
            value={v.name}
            onValue={set('name')}
            error={errors.name}
            autoComplete="off"
            autoCapitalize="none"
            spellcheck={false}
          />
          <SelectField
            label="Role"
            value={v.role}
            onValue={set('role')}
            options={kRoles.map((r) => ({ value: r, label: r }))}
            hint="reader: looks; operator: also refreshes, acknowledges, runs diagnostics; admin: everything."
          />
          <TextField
            label="Password"
            type="password"
            value={v.password}
            onValue={set('password')}
            error={errors.password}
            autoComplete="new-password"
            hint="At least 12 characters."
          />
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" busy={add.busy}>
            Add user
          </Button>
        </div>
      </form>
    </Section>
  );
}

function AccessKeysSection({ setError }: { setError: (m: string) => void }) {
  const { client } = useApp();
  const keys = useLoad((signal) => client.get<{ access_keys: AccessKey[] }>('/access-keys', { signal }), []);
  const form = useForm({ user: '', read: '*', write: '' });
  const add = useAction();
  const del = useAction();
  const [created, setCreated] = useState<AccessKey | null>(null);
  const [editing, setEditing] = useState<AccessKey | null>(null);
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = form.validate(
      { user: all(required('User'), identifier), read: shareRights, write: shareRights },
      ref.current,
    );
    if (!ok) return;
    const key = await add.run(() =>
      client.post<AccessKey>('/access-keys', {
        user: v.user.trim(),
        read: splitList(v.read),
        write: splitList(v.write),
      }),
    );
    if (key) {
      setCreated(key);
      form.setValues({ user: '', read: '*', write: '' });
      await keys.reload();
    }
  };

  const remove = async (id: string) => {
    const ok = await del.run(async () => {
      await client.del(`/access-keys/${encodeURIComponent(id)}`);
      return true;
    });
    if (ok) await keys.reload();
  };

  const error = add.error || del.error || keys.error;
  useEffect(() => setError(error), [error]);
  return (
    <Section title="Access keys">
      <p class="muted section-lead">For S3 and Azure Blob clients of the box (the key id is also the Blob account name).</p>
      {keys.data === undefined ? (
        keys.error ? null : <Loading />
      ) : keys.data.access_keys.length === 0 ? (
        <Empty>No access keys.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Key id</th>
                <th scope="col">User</th>
                <th scope="col">Read shares</th>
                <th scope="col">Write shares</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {keys.data.access_keys.map((k) => (
                <tr key={k.id}>
                  <th scope="row">
                    <code>{k.id}</code>
                  </th>
                  <td>{k.user}</td>
                  <td>{k.read.join(', ') || '—'}</td>
                  <td>{k.write.join(', ') || '—'}</td>
                  <RowActions>
                    <Button aria-label={`Edit key ${k.id}`} onClick={() => setEditing(k)}>
                      Edit
                    </Button>
                    <Button
                      variant="danger"
                      aria-label={`Delete key ${k.id}`}
                      busy={del.busy}
                      onClick={() => void remove(k.id)}
                    >
                      Delete
                    </Button>
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing ? (
        <EditKeyDialog
          accessKey={editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void keys.reload();
          }}
        />
      ) : null}
      {created ? (
        <div class="secret-box" role="status">
          <p>
            <strong>New access key for {created.user}.</strong> The secret is shown only now: copy it to the client.
          </p>
          <Secret label="Access key ID" value={created.id} />
          <Secret label="Secret" value={created.secret ?? ''} />
          <Button variant="ghost" onClick={() => setCreated(null)}>
            Done, hide it
          </Button>
        </div>
      ) : null}
      <form class="subform" ref={ref} onSubmit={submit} noValidate aria-labelledby="new-key-title">
        <h3 id="new-key-title">New access key</h3>
        <div class="form-grid form-grid-3">
          <TextField
            label="User"
            value={v.user}
            onValue={set('user')}
            error={errors.user}
            autoComplete="off"
            spellcheck={false}
            hint="Who or what uses it (a label in the audit log)."
          />
          <TextField
            label="Read shares"
            value={v.read}
            onValue={set('read')}
            error={errors.read}
            spellcheck={false}
            hint="Comma-separated share names; * for all."
          />
          <TextField
            label="Write shares"
            value={v.write}
            onValue={set('write')}
            error={errors.write}
            spellcheck={false}
            hint="Comma-separated share names; * for all."
          />
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" busy={add.busy}>
            Create key
          </Button>
        </div>
      </form>
    </Section>
  );
}

function TokensSection({ setError }: { setError: (m: string) => void }) {
  const { client, me } = useApp();
  const tokens = useLoad((signal) => client.get<{ tokens: Token[] }>('/tokens', { signal }), []);
  const form = useForm({ name: '', role: me.role, days: '' });
  const add = useAction();
  const del = useAction();
  const [created, setCreated] = useState<Token | null>(null);
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = form.validate({ name: all(required('Token name'), freeText(64)), days: integer(1, 3650) }, ref.current);
    if (!ok) return;
    const body: Record<string, unknown> = { name: v.name.trim(), role: v.role };
    if (v.days.trim()) body['expires_in_s'] = Number(v.days) * 86400;
    const t = await add.run(() => client.post<Token>('/tokens', body));
    if (t) {
      setCreated(t);
      form.setValues({ name: '', role: me.role, days: '' });
      await tokens.reload();
    }
  };

  const revoke = async (id: string) => {
    const ok = await del.run(async () => {
      await client.del(`/tokens/${encodeURIComponent(id)}`);
      return true;
    });
    if (ok) await tokens.reload();
  };

  const error = add.error || del.error || tokens.error;
  useEffect(() => setError(error), [error]);
  return (
    <Section title="API tokens">
      <p class="muted section-lead">For scripts and monitoring: send as “Authorization: Bearer TOKEN”.</p>
      {tokens.data === undefined ? (
        tokens.error ? null : <Loading />
      ) : tokens.data.tokens.length === 0 ? (
        <Empty>No API tokens.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {tokens.data.tokens.map((t) => (
                <tr key={t.id}>
                  <th scope="row">{t.name}</th>
                  <td>{t.user}</td>
                  <td>
                    <span class={`role role-${t.role}`}>{t.role}</span>
                  </td>
                  <td>{formatTime(t.created)}</td>
                  <td>{t.expires ? formatTime(t.expires) : 'never'}</td>
                  <RowActions>
                    <Button
                      variant="danger"
                      aria-label={`Revoke token ${t.name}`}
                      busy={del.busy}
                      onClick={() => void revoke(t.id)}
                    >
                      Revoke
                    </Button>
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {created ? (
        <div class="secret-box" role="status">
          <p>
            <strong>New token “{created.name}”.</strong> It is shown only now: copy it to the script.
          </p>
          <Secret label="Token" value={created.token ?? ''} />
          <Button variant="ghost" onClick={() => setCreated(null)}>
            Done, hide it
          </Button>
        </div>
      ) : null}
      <form class="subform" ref={ref} onSubmit={submit} noValidate aria-labelledby="new-token-title">
        <h3 id="new-token-title">New token</h3>
        <div class="form-grid form-grid-3">
          <TextField
            label="Token name"
            value={v.name}
            onValue={set('name')}
            error={errors.name}
            autoComplete="off"
            hint="What it is for, e.g. “nightly backup check”."
          />
          <SelectField
            label="Role"
            value={v.role}
            onValue={set('role')}
            options={kRoles.filter((r) => atLeast(me.role, r)).map((r) => ({ value: r, label: r }))}
            hint="At most your own role."
          />
          <TextField
            label="Expires in (days)"
            type="number"
            min={1}
            inputMode="numeric"
            value={v.days}
            onValue={set('days')}
            error={errors.days}
            placeholder="never"
            hint="Empty: it lasts until revoked."
          />
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" busy={add.busy}>
            Create token
          </Button>
        </div>
      </form>
    </Section>
  );
}

// Changes a user's role or password (PATCH /users/{name}); only what changed is sent.
function EditUserDialog({ user, onClose, onSaved }: { user: User; onClose: () => void; onSaved: () => void }) {
  const { client } = useApp();
  const form = useForm({ role: user.role as string, password: '', repeat: '' });
  const save = useAction();
  const { values: v, errors, set } = form;

  const submit = async () => {
    const ok = form.validate({
      password: (p) => (p === '' ? '' : password(p)),
      repeat: (r) => (v.password === '' && r === '' ? '' : sameAs(() => v.password)(r)),
    });
    if (!ok) return;
    const body: Record<string, unknown> = {};
    if (v.role !== user.role) body['role'] = v.role;
    if (v.password) body['password'] = v.password;
    if (Object.keys(body).length === 0) {
      onClose();
      return;
    }
    const done = await save.run(async () => {
      await client.patch<User>(`/users/${encodeURIComponent(user.name)}`, body);
      return true;
    });
    if (done) onSaved();
  };

  return (
    <Dialog
      title={`Edit user ${user.name}`}
      onClose={onClose}
      onSubmit={() => void submit()}
      actions={
        <CancelAnd onCancel={onClose} busy={save.busy}>
          <Button type="submit" variant="primary" busy={save.busy}>
            Save user
          </Button>
        </CancelAnd>
      }
    >
      <SelectField
        label="Role"
        value={v.role}
        onValue={set('role')}
        options={kRoles.map((r) => ({ value: r, label: r }))}
        hint="reader: looks; operator: also refreshes, acknowledges, runs diagnostics; admin: everything."
      />
      <TextField
        label="New password"
        type="password"
        value={v.password}
        onValue={set('password')}
        error={errors.password}
        autoComplete="new-password"
        hint="Empty: the password stays. A new one signs the user out everywhere (API tokens stay)."
      />
      <TextField
        label="Repeat new password"
        type="password"
        value={v.repeat}
        onValue={set('repeat')}
        error={errors.repeat}
        autoComplete="new-password"
      />
      <ErrorBanner message={save.error} />
    </Dialog>
  );
}

// Changes the shares an access key may read and write (PATCH /access-keys/{id}).
function EditKeyDialog({ accessKey, onClose, onSaved }: { accessKey: AccessKey; onClose: () => void; onSaved: () => void }) {
  const { client } = useApp();
  const form = useForm({ read: accessKey.read.join(', '), write: accessKey.write.join(', ') });
  const save = useAction();
  const { values: v, errors, set } = form;

  const submit = async () => {
    if (!form.validate({ read: shareRights, write: shareRights })) return;
    const done = await save.run(async () => {
      await client.patch<AccessKey>(`/access-keys/${encodeURIComponent(accessKey.id)}`, {
        read: splitList(v.read),
        write: splitList(v.write),
      });
      return true;
    });
    if (done) onSaved();
  };

  return (
    <Dialog
      title={`Edit key ${accessKey.id}`}
      onClose={onClose}
      onSubmit={() => void submit()}
      actions={
        <CancelAnd onCancel={onClose} busy={save.busy}>
          <Button type="submit" variant="primary" busy={save.busy}>
            Save key
          </Button>
        </CancelAnd>
      }
    >
      <p class="muted">For {accessKey.user}. S3 and Blob clients using it get the new rights at their next request.</p>
      <TextField
        label="Read shares"
        value={v.read}
        onValue={set('read')}
        error={errors.read}
        spellcheck={false}
        hint="Comma-separated share names; * for all; empty for none."
      />
      <TextField
        label="Write shares"
        value={v.write}
        onValue={set('write')}
        error={errors.write}
        spellcheck={false}
        hint="Comma-separated share names; * for all; empty for none."
      />
      <ErrorBanner message={save.error} />
    </Dialog>
  );
}

// The signed-in user's own password (PUT /me/password). The box then ends every session of
// the user, this one too: the app goes back to sign-in.
function MyPasswordSection() {
  const { client, me, endSession } = useApp();
  const form = useForm({ current: '', next: '', repeat: '' });
  const save = useAction();
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = form.validate(
      {
        current: required('Current password'),
        next: all(password, (p) => (p === v.current ? 'Use a password other than the current one' : '')),
        repeat: all(required('Repeat the new password'), sameAs(() => v.next)),
      },
      ref.current,
    );
    if (!ok) return;
    const done = await save.run(async () => {
      try {
        await client.put('/me/password', { old_password: v.current, new_password: v.next }, { keepSessionOn401: true });
      } catch (err) {
        // 400 naming old_password: the current password is wrong.
        if (err instanceof ApiError && err.status === 400 && /old_password/.test(err.apiMessage)) {
          form.setErrors({ current: 'This is not your current password' });
          setTimeout(() => ref.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
          return false;
        }
        throw err;
      }
      return true;
    });
    if (done) endSession('Your password was changed. Sign in with the new one.');
  };

  return (
    <Section title="Change my password">
      <p class="muted section-lead">
        For {me.user}. Changing it signs you out everywhere (your API tokens stay): sign in again with the new password.
      </p>
      <ErrorBanner message={save.error} />
      <form class="form" ref={ref} onSubmit={submit} noValidate aria-label="Change my password">
        <div class="form-grid form-grid-3">
          <TextField
            label="Current password"
            type="password"
            value={v.current}
            onValue={set('current')}
            error={errors.current}
            autoComplete="current-password"
          />
          <TextField
            label="New password"
            type="password"
            value={v.next}
            onValue={set('next')}
            error={errors.next}
            autoComplete="new-password"
            hint="At least 12 characters."
          />
          <TextField
            label="Repeat new password"
            type="password"
            value={v.repeat}
            onValue={set('repeat')}
            error={errors.repeat}
            autoComplete="new-password"
          />
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" busy={save.busy}>
            Change password
          </Button>
        </div>
      </form>
    </Section>
  );
}

export function UsersPage() {
  const { me } = useApp();
  const isAdmin = atLeast(me.role, 'admin');
  // Each section reports its error here so that the page has one alert at most.
  const [errors, setErrors] = useState<Record<string, string>>({});
  const reporter = useMemo(() => {
    const one = (key: string) => (m: string) => setErrors((p) => (p[key] === m ? p : { ...p, [key]: m }));
    return { users: one('users'), keys: one('keys'), tokens: one('tokens') };
  }, []);
  const message = Object.values(errors).find(Boolean) ?? '';
  return (
    <div class="page">
      <PageHeader title="Users and keys" />
      <ErrorBanner message={message} />
      {isAdmin ? (
        <>
          <UsersSection setError={reporter.users} />
          <AccessKeysSection setError={reporter.keys} />
        </>
      ) : (
        <p class="muted">Only admins see and manage users and access keys. You can manage your own API tokens.</p>
      )}
      <TokensSection setError={reporter.tokens} />
      {me.api_token ? null : <MyPasswordSection />}
    </div>
  );
}
