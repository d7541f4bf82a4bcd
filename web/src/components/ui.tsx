// Building blocks of every page: labelled fields with their messages, the error banner,
// buttons that show they are busy, status words and empty states.

import type { ComponentChildren, JSX } from 'preact';
import { useId } from 'preact/hooks';
import type { Severity } from '../api/types';

// The one place a page shows what went wrong (role=alert, the text as it is). Renders nothing
// without a message, so a page never has an empty alert.
export function ErrorBanner({ message, hint }: { message: string; hint?: string }) {
  if (!message) return null;
  return (
    <div class="banner banner-error">
      <div role="alert">{message}</div>
      {hint ? <p class="banner-hint">{hint}</p> : null}
    </div>
  );
}

export function Notice({ children, tone = 'info' }: { children: ComponentChildren; tone?: 'info' | 'ok' | 'warn' }) {
  return (
    <div class={`banner banner-${tone}`} role="status">
      {children}
    </div>
  );
}

interface FieldProps {
  label: string;
  error?: string;
  hint?: ComponentChildren;
  class?: string;
}

function describedBy(id: string, error?: string, hint?: unknown): string | undefined {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-err` : ''].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

function FieldFrame({
  id,
  label,
  error,
  hint,
  class: cls,
  children,
}: FieldProps & { id: string; children: ComponentChildren }) {
  return (
    <div class={`field ${cls ?? ''}`}>
      <label for={id}>{label}</label>
      {children}
      {hint ? (
        <p class="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p class="field-error" id={`${id}-err`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

type InputAttrs = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'value' | 'onInput' | 'label' | 'class'>;

export function TextField({
  label,
  error,
  hint,
  value,
  onValue,
  class: cls,
  id: givenId,
  ...rest
}: FieldProps & InputAttrs & { value: string; onValue: (v: string) => void }) {
  const generated = useId();
  const id = (givenId as string | undefined) ?? generated;
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint} class={cls}>
      <input
        id={id}
        type="text"
        value={value}
        onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...rest}
      />
    </FieldFrame>
  );
}

export function TextAreaField({
  label,
  error,
  hint,
  value,
  onValue,
  rows = 3,
  class: cls,
  disabled,
}: FieldProps & { value: string; onValue: (v: string) => void; rows?: number; disabled?: boolean }) {
  const id = useId();
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint} class={cls}>
      <textarea
        id={id}
        rows={rows}
        value={value}
        disabled={disabled}
        onInput={(e) => onValue((e.currentTarget as HTMLTextAreaElement).value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(id, error, hint)}
      />
    </FieldFrame>
  );
}

export function SelectField({
  label,
  error,
  hint,
  value,
  onValue,
  options,
  disabled,
  class: cls,
}: FieldProps & {
  value: string;
  onValue: (v: string) => void;
  options: Array<{ value: string; label: string; disabled?: boolean }>;
  disabled?: boolean;
}) {
  const id = useId();
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint} class={cls}>
      <select
        id={id}
        value={value}
        disabled={disabled}
        onChange={(e) => onValue((e.currentTarget as HTMLSelectElement).value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy(id, error, hint)}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value} disabled={o.disabled}>
            {o.label}
          </option>
        ))}
      </select>
    </FieldFrame>
  );
}

export function CheckboxField({
  label,
  checked,
  onChecked,
  hint,
  disabled,
}: {
  label: string;
  checked: boolean;
  onChecked: (v: boolean) => void;
  hint?: ComponentChildren;
  disabled?: boolean;
}) {
  const id = useId();
  return (
    <div class="field field-check">
      <input
        id={id}
        type="checkbox"
        checked={checked}
        disabled={disabled}
        onChange={(e) => onChecked((e.currentTarget as HTMLInputElement).checked)}
        aria-describedby={hint ? `${id}-hint` : undefined}
      />
      <label for={id}>{label}</label>
      {hint ? (
        <p class="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

type ButtonAttrs = JSX.ButtonHTMLAttributes<HTMLButtonElement>;

// A button that is disabled while `busy` (its request runs) and says so to screen readers.
export function Button({
  busy,
  variant = 'secondary',
  children,
  disabled,
  type = 'button',
  class: cls,
  ...rest
}: ButtonAttrs & { busy?: boolean; variant?: 'primary' | 'secondary' | 'danger' | 'ghost' }) {
  return (
    <button
      type={type as 'button' | 'submit' | 'reset'}
      class={`btn btn-${variant} ${busy ? 'is-busy' : ''} ${cls ?? ''}`}
      disabled={Boolean(disabled) || busy}
      aria-busy={busy ? 'true' : undefined}
      {...rest}
    >
      {children}
    </button>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1 tabIndex={-1} id="page-title">
        {title}
      </h1>
      {children ? <div class="page-actions">{children}</div> : null}
    </div>
  );
}

export function SeverityBadge({ severity }: { severity: Severity }) {
  const label = severity === 'critical' ? 'Critical' : severity === 'warning' ? 'Warning' : 'Info';
  return (
    <span class={`badge sev-${severity}`}>
      <span class="dot" aria-hidden="true" />
      {label}
    </span>
  );
}

// A word with a colour: pass/ok (green), warn (amber), fail (red), muted.
export function StatusWord({ tone, children }: { tone: 'ok' | 'warn' | 'fail' | 'muted'; children: ComponentChildren }) {
  return (
    <span class={`status status-${tone}`}>
      <span class="dot" aria-hidden="true" />
      {children}
    </span>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status">
      {label}
    </p>
  );
}

// A section of a page with its h2.
export function Section({
  title,
  children,
  actions,
  class: cls,
  id,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
  class?: string;
  id?: string;
}) {
  const hid = useId();
  return (
    <section class={`card ${cls ?? ''}`} aria-labelledby={hid} id={id}>
      <div class="card-header">
        <h2 id={hid}>{title}</h2>
        {actions ? <div class="card-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

// A table's last column, pinned to the right edge: the header (named for screen readers only)
// and a row's cell holding its buttons.
export function ActionsHeader() {
  return (
    <th scope="col" class="row-actions">
      <span class="sr-only">Actions</span>
    </th>
  );
}

export function RowActions({ children }: { children: ComponentChildren }) {
  return (
    <td class="row-actions">
      <div class="row-actions-inner">{children}</div>
    </td>
  );
}
