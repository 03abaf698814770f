// Small shared building blocks: badges, notices, fields, buttons, dialogs.
import { createContext } from 'preact';
import { useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import { html } from '../html.js';
import { OUTCOME, STATUS, formatTime, timeAgo } from '../format.js';

/** What every screen may need: can this key write, and the event catalog. */
export const Session = createContext({ canWrite: false, role: 'read', eventTypes: [], flashSecret: () => {}, secret: null });

export const useSession = () => useContext(Session);

export function StatusBadge({ status }) {
  const known = STATUS[status] ?? { icon: '?', label: status ?? 'None' };
  return html`<span class="badge status-${status ?? 'none'}"><span aria-hidden="true">${known.icon}</span> ${known.label}</span>`;
}

export function OutcomeBadge({ outcome }) {
  const known = OUTCOME[outcome] ?? { icon: '?', label: outcome, status: 'none' };
  return html`<span class="badge status-${known.status}"><span aria-hidden="true">${known.icon}</span> ${known.label}</span>`;
}

export function EnabledBadge({ sub }) {
  return sub.enabled
    ? html`<span class="badge status-delivered"><span aria-hidden="true">●</span> Enabled</span>`
    : html`<span class="badge status-cancelled" title=${sub.disabled_reason ?? ''}><span aria-hidden="true">⏸</span> Disabled</span>`;
}

export function Time({ iso }) {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime=${iso} title=${formatTime(iso)}>${timeAgo(iso)}</time>`;
}

export function Notice({ kind = 'info', children, onClose }) {
  const role = kind === 'error' ? 'alert' : 'status';
  const icon = { info: 'ℹ', success: '✓', error: '✕', warning: '⚠' }[kind];
  return html`<div class="notice notice-${kind}" role=${role}>
    <span class="notice-icon" aria-hidden="true">${icon}</span>
    <div class="notice-body">${children}</div>
    ${onClose && html`<button type="button" class="link" onClick=${onClose}>Dismiss</button>`}
  </div>`;
}

/** An API error with its details, one line each (paths and template positions included). */
export function ErrorNotice({ error, what }) {
  if (!error) return null;
  if (error.status === 404 && what) {
    return html`<${Notice} kind="warning">${what} is not available on this gateway yet (HTTP 404).<//>`;
  }
  return html`<${Notice} kind="error">
    <strong>${error.message}</strong>
    ${error.details?.length > 0 &&
    html`<ul class="details">
      ${error.details.map((d) => html`<li>${detailText(d)}</li>`)}
    </ul>`}
  <//>`;
}

export function detailText(d) {
  // Template messages often name their position already; say it once.
  const positioned = d.line !== undefined && !/line \d+, column \d+/.test(d.message);
  const where = positioned ? `line ${d.line}, column ${d.column}` : d.line !== undefined ? undefined : d.path;
  const token = d.token ? ` (near “${d.token}”)` : '';
  return `${where ? where + ': ' : ''}${d.message}${token}`;
}

export function Field({ id, label, hint, errors = [], children, optional }) {
  const hintId = hint ? `${id}-hint` : undefined;
  return html`<div class=${'field' + (errors.length ? ' has-error' : '')}>
    <label for=${id}>${label}${optional && html` <span class="muted">(optional)</span>`}</label>
    ${children}
    ${hint && html`<p class="hint" id=${hintId}>${hint}</p>`}
    ${errors.map((e) => html`<p class="field-error" id=${`${id}-error`}><span aria-hidden="true">✕ </span>${detailText({ ...e, path: undefined })}</p>`)}
  </div>`;
}

/** A button that changes something: disabled for read keys, and says why. */
export function WriteButton({ children, class: cls = '', ...props }) {
  const { canWrite } = useSession();
  return html`<button
    type="button"
    class=${cls}
    ...${props}
    disabled=${!canWrite || props.disabled}
    aria-describedby=${!canWrite ? 'readonly-note' : props['aria-describedby']}
    title=${!canWrite ? 'Needs an admin key' : props.title}
  >
    ${children}
  </button>`;
}

/** A modal confirmation (native <dialog>: focus trap and Escape for free). */
export function ConfirmDialog({ open, title, children, confirmLabel, danger, onConfirm, onCancel }) {
  const ref = useRef(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return html`<dialog ref=${ref} aria-labelledby=${titleId} onClose=${() => open && onCancel()}>
    <form method="dialog" onSubmit=${(e) => { e.preventDefault(); onConfirm(); }}>
      <h2 id=${titleId}>${title}</h2>
      <div>${children}</div>
      <div class="actions">
        <button type="button" onClick=${onCancel}>Cancel</button>
        <button type="submit" class=${danger ? 'danger' : 'primary'}>${confirmLabel}</button>
      </div>
    </form>
  </dialog>`;
}

export function CopyButton({ text, label = 'Copy' }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (or not a secure context): fall back to the selection.
      const field = document.createElement('textarea');
      field.value = text;
      document.body.append(field);
      field.select();
      document.execCommand('copy');
      field.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return html`<button type="button" onClick=${copy}>${copied ? '✓ Copied' : label}</button>`;
}

/** The signing secret, shown once after create or rotate; it lives in memory only. */
export function SecretNotice({ secret, onDismiss }) {
  return html`<section class="secret" aria-labelledby="secret-title">
    <h2 id="secret-title">Signing secret</h2>
    <p class="warning"><strong><span aria-hidden="true">⚠ </span>${secret.warning || 'Store this signing secret now: it is shown only once.'}</strong></p>
    <div class="secret-value">
      <label for="signing-secret" class="sr-only">Signing secret</label>
      <input id="signing-secret" readonly value=${secret.secret} onFocus=${(e) => e.currentTarget.select()} />
      <${CopyButton} text=${secret.secret} label="Copy secret" />
    </div>
    <button type="button" class="primary" onClick=${onDismiss}>I have stored it</button>
  </section>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}
