// Storage accounts: the clouds shares upload to, with whether each answers now. Secrets (keys,
// SAS tokens, S3 secret keys) are write-only: the box says only whether one is set.

import { useEffect, useRef } from 'preact/hooks';
import type { AccountType, StorageAccount } from '../api/types';
import { atLeast } from '../api/types';
import { useApp } from '../app/context';
import { useAction, useForm, useLoad } from '../app/hooks';
import { ActionsHeader, Button, Empty, ErrorBanner, Loading, PageHeader, RowActions, Section, SelectField, StatusWord, TextField } from '../components/ui';
import {
  absolutePath,
  all,
  azureAccount,
  base64Key,
  endpoint,
  freeText,
  identifier,
  region,
  required,
  sasToken,
  type Validator,
} from '../lib/validate';
import { href, navigate } from '../router';

type AccountValues = {
  name: string;
  type: string;
  endpoint: string;
  account: string;
  key: string;
  sas: string;
  region: string;
  accessKeyId: string;
  secret: string;
  path: string;
};

const kBlank: AccountValues = {
  name: '',
  type: 'azure',
  endpoint: '',
  account: '',
  key: '',
  sas: '',
  region: '',
  accessKeyId: '',
  secret: '',
  path: '',
};

function secretState(a: StorageAccount): string {
  switch (a.type) {
    case 'azure':
      return a.has_key ? 'key set' : a.has_sas ? 'SAS set' : 'no key';
    case 's3':
      return a.has_credentials ? 'key set' : 'no key';
    default:
      return 'no key';
  }
}

function where(a: StorageAccount): string {
  if (a.type === 'localfs') return a.path;
  if (a.type === 'azure') return a.endpoint || (a.account ? `${a.account} (Azure)` : '—');
  return a.endpoint + (a.region ? ` (${a.region})` : '');
}

function AccountForm({
  editing,
  onDone,
}: {
  editing: StorageAccount | null;
  onDone: () => void;
}) {
  const { client } = useApp();
  const form = useForm<AccountValues>(kBlank);
  const save = useAction();
  const ref = useRef<HTMLFormElement>(null);
  const { values: v, errors, set } = form;
  const type = v.type as AccountType;

  useEffect(() => {
    form.setErrors({});
    save.setError('');
    if (editing) {
      form.setValues({
        ...kBlank,
        name: editing.name,
        type: editing.type,
        endpoint: editing.endpoint,
        account: editing.account,
        region: editing.region,
        path: editing.path,
      });
    } else {
      form.setValues(kBlank);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [editing?.name]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const rules: Partial<Record<keyof AccountValues, Validator>> = {};
    if (!editing) rules.name = all(required('Name'), identifier);
    if (type === 'azure') {
      rules.endpoint = endpoint; // empty: the account's public endpoint, filled in below
      rules.account = editing ? azureAccount : all(required('Account name'), azureAccount);
      rules.key = base64Key;
      rules.sas = (s) =>
        sasToken(s) ||
        (!editing && !v.key.trim() && !s.trim() ? 'Give the account key or a SAS token' : '');
    } else if (type === 's3') {
      rules.endpoint = editing ? endpoint : all(required('Endpoint'), endpoint);
      rules.region = region;
      rules.accessKeyId = (s) =>
        freeText(256)(s) ||
        (!editing && !s.trim() ? 'Access key ID is required' : '') ||
        (s.trim() && !v.secret ? '' : '');
      rules.secret = (s) =>
        freeText(256)(s) ||
        (!editing && !s ? 'Secret access key is required' : '') ||
        (editing && v.accessKeyId.trim() && !s ? 'Give the secret with a new access key ID' : '');
    } else {
      rules.path = editing ? absolutePath : all(required('Folder'), absolutePath);
    }
    if (!form.validate(rules, ref.current)) return;

    const body: Record<string, string> = {};
    const put = (key: string, value: string, always = false) => {
      if (always || value !== '') body[key] = value;
    };
    if (type === 'azure') {
      const account = v.account.trim();
      const ep = v.endpoint.trim() || (account ? `https://${account}.blob.core.windows.net` : '');
      put('endpoint', ep, Boolean(editing));
      put('account', account, Boolean(editing));
      put('key', v.key.trim()); // empty: unchanged
      put('sas', v.sas.trim());
    } else if (type === 's3') {
      put('endpoint', v.endpoint.trim(), Boolean(editing));
      put('region', v.region.trim(), Boolean(editing));
      put('access_key_id', v.accessKeyId.trim());
      put('secret_access_key', v.secret);
    } else {
      put('path', v.path.trim());
    }
    const ok = await save.run(async () => {
      if (editing) await client.patch(`/storage-accounts/${encodeURIComponent(editing.name)}`, body);
      else await client.post('/storage-accounts', { name: v.name.trim(), type, ...body });
      return true;
    });
    if (ok) {
      form.setValues(kBlank);
      onDone();
    }
  };

  const title = editing ? `Edit account ${editing.name}` : 'New account';
  const keep = editing ? 'Leave empty to keep the one set.' : undefined;
  return (
    <Section title={title} id="account-form">
      <ErrorBanner message={save.error} />
      <form class="form" ref={ref} onSubmit={submit} noValidate aria-label={title}>
        <div class="form-grid">
          <TextField
            label="Name"
            value={v.name}
            onValue={set('name')}
            error={errors.name}
            disabled={Boolean(editing)}
            autoCapitalize="none"
            spellcheck={false}
            hint={editing ? undefined : 'How shares name this account.'}
          />
          <SelectField
            label="Type"
            value={v.type}
            onValue={set('type')}
            disabled={Boolean(editing)}
            options={[
              { value: 'azure', label: 'azure' },
              { value: 's3', label: 's3' },
              { value: 'localfs', label: 'localfs' },
            ]}
            hint={
              type === 'azure'
                ? 'Azure Blob storage.'
                : type === 's3'
                  ? 'Amazon S3 or an S3-compatible service.'
                  : 'A folder on the box, e.g. a removable disk to ship.'
            }
          />
          {type === 'azure' || type === 's3' ? (
            <TextField
              label="Endpoint"
              value={v.endpoint}
              onValue={set('endpoint')}
              error={errors.endpoint}
              spellcheck={false}
              placeholder={type === 'azure' ? 'https://ACCOUNT.blob.core.windows.net' : 'https://s3.eu-west-1.amazonaws.com'}
              hint={type === 'azure' ? 'Empty: https://ACCOUNT.blob.core.windows.net.' : undefined}
            />
          ) : null}
          {type === 'azure' ? (
            <>
              <TextField
                label="Account name"
                value={v.account}
                onValue={set('account')}
                error={errors.account}
                autoCapitalize="none"
                spellcheck={false}
              />
              <TextField
                label="Account key"
                type="password"
                value={v.key}
                onValue={set('key')}
                error={errors.key}
                autoComplete="off"
                spellcheck={false}
                hint={keep ?? 'Or a SAS token below.'}
              />
              <TextField
                label="SAS token"
                type="password"
                value={v.sas}
                onValue={set('sas')}
                error={errors.sas}
                autoComplete="off"
                spellcheck={false}
                hint={keep}
              />
            </>
          ) : null}
          {type === 's3' ? (
            <>
              <TextField
                label="Region"
                value={v.region}
                onValue={set('region')}
                error={errors.region}
                placeholder="us-east-1"
                spellcheck={false}
              />
              <TextField
                label="Access key ID"
                value={v.accessKeyId}
                onValue={set('accessKeyId')}
                error={errors.accessKeyId}
                autoComplete="off"
                spellcheck={false}
                hint={keep}
              />
              <TextField
                label="Secret access key"
                type="password"
                value={v.secret}
                onValue={set('secret')}
                error={errors.secret}
                autoComplete="off"
                spellcheck={false}
                hint={keep}
              />
            </>
          ) : null}
          {type === 'localfs' ? (
            <TextField
              label="Folder"
              value={v.path}
              onValue={set('path')}
              error={errors.path}
              spellcheck={false}
              placeholder="/mnt/usb"
              hint="An existing absolute folder on the box."
            />
          ) : null}
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" busy={save.busy}>
            {editing ? 'Save account' : 'Add account'}
          </Button>
          {editing ? (
            <Button onClick={() => navigate(href('accounts'))} disabled={save.busy}>
              Cancel
            </Button>
          ) : null}
        </div>
      </form>
    </Section>
  );
}

export function AccountsPage({ edit }: { edit?: string }) {
  const { client, me } = useApp();
  const accounts = useLoad(
    (signal) => client.get<{ storage_accounts: StorageAccount[] }>('/storage-accounts', { signal }),
    [],
    15000,
  );
  const isAdmin = atLeast(me.role, 'admin');
  const del = useAction();
  const list = accounts.data?.storage_accounts;
  const editing = edit ? (list?.find((a) => a.name === edit) ?? null) : null;

  useEffect(() => {
    if (edit && editing) document.getElementById('account-form')?.scrollIntoView({ block: 'start' });
  }, [edit, Boolean(editing)]);

  const remove = async (name: string) => {
    const ok = await del.run(async () => {
      await client.del(`/storage-accounts/${encodeURIComponent(name)}`);
      return true;
    });
    if (ok) {
      if (edit === name) navigate(href('accounts'));
      await accounts.reload();
    }
  };

  const missing = edit && list && !editing ? `There is no storage account “${edit}”.` : '';
  return (
    <div class="page">
      <PageHeader title="Storage accounts" />
      <ErrorBanner message={del.error || accounts.error || missing} />
      {list === undefined ? (
        accounts.error ? null : <Loading />
      ) : list.length === 0 ? (
        <Empty>No storage accounts yet. Cloud shares upload to one.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Endpoint or folder</th>
                <th scope="col">Credentials</th>
                <th scope="col">Reachable</th>
                <ActionsHeader />
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <tr key={a.name} class={edit === a.name ? 'row-selected' : undefined}>
                  <th scope="row">{a.name}</th>
                  <td>{a.type}</td>
                  <td class="wrap-anywhere">{where(a)}</td>
                  <td>{secretState(a)}</td>
                  <td>{a.reachable ? <StatusWord tone="ok">yes</StatusWord> : <StatusWord tone="fail">no</StatusWord>}</td>
                  <RowActions>
                    {isAdmin ? (
                      <>
                        <Button aria-label={`Edit ${a.name}`} onClick={() => navigate(href('accountEdit', { name: a.name }))}>
                          Edit
                        </Button>
                        <Button
                          variant="danger"
                          aria-label={`Delete ${a.name}`}
                          busy={del.busy}
                          onClick={() => void remove(a.name)}
                        >
                          Delete
                        </Button>
                      </>
                    ) : null}
                  </RowActions>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {isAdmin ? (
        <AccountForm
          editing={editing}
          onDone={() => {
            void accounts.reload();
            if (edit) navigate(href('accounts'));
          }}
        />
      ) : null}
    </div>
  );
}
