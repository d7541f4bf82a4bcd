// A modal dialog on the native <dialog> (role=dialog; the browser traps focus, makes the page
// behind it inert and closes it on Escape). Focus returns to where it was. With `onSubmit` the
// body and actions are one form (Enter in a field submits; the submit button is an action) and
// the first field gets the focus; otherwise the first action button does.

import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';
import { Button } from './ui';

export function Dialog({
  title,
  children,
  onClose,
  actions,
  onSubmit,
}: {
  title: string;
  children?: ComponentChildren;
  onClose: () => void;
  actions: ComponentChildren;
  onSubmit?: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    const before = document.activeElement as HTMLElement | null;
    if (!d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    // A form's first field, else the first action button (not the dialog's text).
    const first = onSubmit
      ? d.querySelector<HTMLElement>('.dialog-body input:not([disabled]), .dialog-body select:not([disabled]), .dialog-body textarea')
      : null;
    (first ?? d.querySelector<HTMLElement>('.dialog-actions button'))?.focus();
    return () => {
      if (d.open) d.close();
      before?.focus?.();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="dialog"
      aria-labelledby={`${id}-t`}
      aria-modal="true"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={`${id}-t`} class="dialog-title">
        {title}
      </h2>
      {onSubmit ? (
        <form
          noValidate
          aria-labelledby={`${id}-t`}
          onSubmit={(e) => {
            e.preventDefault();
            onSubmit();
          }}
        >
          <div class="dialog-body">{children}</div>
          <div class="dialog-actions">{actions}</div>
        </form>
      ) : (
        <>
          <div class="dialog-body">{children}</div>
          <div class="dialog-actions">{actions}</div>
        </>
      )}
    </dialog>
  );
}

// A dialog's buttons: Cancel (disabled while `busy`) and then the dialog's own action(s).
export function CancelAnd({ onCancel, busy, children }: { onCancel: () => void; busy?: boolean; children: ComponentChildren }) {
  return (
    <>
      <Button onClick={onCancel} disabled={busy}>
        Cancel
      </Button>
      {children}
    </>
  );
}
