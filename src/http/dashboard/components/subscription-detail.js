import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { useResource, navigate } from '../hooks.js';
import { describeRetry, formatTime } from '../format.js';
import { ConfirmDialog, EnabledBadge, ErrorNotice, Loading, Notice, SecretNotice, StatusBadge, Time, WriteButton, useSession } from './ui.js';
import { DeliveryLog, replayNotice } from './delivery-log.js';
import { SuccessRate, destinationLabel } from './subscriptions-list.js';
import { TestResult } from './test-result.js';

/** Keys stopped by a failed delivery (ordering.on_failure "block"), each with Replay and Skip. */
function BlockedKeys({ sub, refreshToken, onChange }) {
  const keys = useResource(() => api.get(`/webhooks/${sub.id}/blocked-keys`), [sub.id, refreshToken], { interval: 5_000 });
  const [notice, setNotice] = useState(null);
  const [error, setError] = useState(null);
  const rows = keys.data?.data ?? [];
  if (sub.ordering?.on_failure !== 'block' && rows.length === 0) return null;
  const act = (run) => async () => {
    setError(null);
    setNotice(null);
    try {
      setNotice(await run());
      await keys.reload();
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="card" aria-labelledby="blocked-title">
    <h2 id="blocked-title">Blocked keys</h2>
    <p class="muted">A failed delivery stops its key: the deliveries behind it wait until it is replayed (sent again, before them) or skipped (it stays failed, the next one goes).</p>
    ${notice && html`<${Notice} kind="success" onClose=${() => setNotice(null)}>${notice}<//>`}
    <${ErrorNotice} error=${error || keys.error} />
    ${keys.data && (rows.length === 0
      ? html`<p class="muted empty">No key is blocked.</p>`
      : html`<div class="table-wrap"><table class="log">
          <caption class="sr-only">Blocked keys, oldest first</caption>
          <thead><tr><th scope="col">Key</th><th scope="col">Blocked since</th><th scope="col">Waiting</th><th scope="col">Failed delivery</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            ${rows.map((k) => html`<tr key=${k.delivery.id} data-blocked-key=${k.ordering_key}>
              <td class="mono">${k.ordering_key}</td>
              <td><${Time} iso=${k.blocked_since} /></td>
              <td>${k.waiting}</td>
              <td><a class="mono" href=${`#/deliveries/${k.delivery.id}`}>${k.delivery.id}</a>${k.delivery.last_error && html`<div class="small muted">${k.delivery.last_error}</div>`}</td>
              <td><div class="row-actions">
                <${WriteButton} class="small-button" onClick=${act(async () => replayNotice(k.delivery.id, await api.post(`/deliveries/${k.delivery.id}/replay`)))} aria-label=${`Replay ${k.delivery.id}`}>Replay<//>
                <${WriteButton} class="small-button" onClick=${act(async () => {
                  await api.post(`/deliveries/${k.delivery.id}/skip`);
                  return html`Skipped: key <span class="mono">${k.ordering_key}</span> goes on without <span class="mono">${k.delivery.id}</span>.`;
                })} aria-label=${`Skip ${k.delivery.id}`}>Skip<//>
              </div></td>
            </tr>`)}
          </tbody>
        </table></div>`)}
  </section>`;
}

function Settings({ sub }) {
  const rows = [
    ['Destination', sub.url ? html`<span class="mono">${sub.url}</span>` : html`<span class="muted">set by the ${sub.connector} connector</span>`],
    ['Connector', sub.connector],
    ['Events', sub.events.map((e) => html`<span class="tag mono">${e}</span> `)],
    ['Filter', sub.filter ? html`<code class="block">${sub.filter}</code>` : html`<span class="muted">none: every matching event</span>`],
    ['Mapping', sub.mapping ? html`<code class="block">${sub.mapping}</code>` : html`<span class="muted">${sub.connector === 'webhook' ? 'none: the event envelope as is' : "the connector's default template"}</span>`],
    ['Custom headers', Object.keys(sub.headers ?? {}).length ? Object.entries(sub.headers).map(([k, v]) => html`<div class="mono small">${k}: ${v}</div>`) : html`<span class="muted">none</span>`],
    ['Auth', sub.auth ? `${sub.auth.type}${sub.auth.username ? ` (${sub.auth.username})` : sub.auth.name ? ` (${sub.auth.name})` : ''}, secret hidden` : html`<span class="muted">none</span>`],
    ['Retries', describeRetry(sub.retry)],
    ['Timeout', sub.timeout ? `${sub.timeout} s` : html`<span class="muted">default</span>`],
    ['Rate limit', sub.rate_limit ? `${sub.rate_limit} per second` : html`<span class="muted">none</span>`],
    ['Ordering', sub.ordering
      ? html`one at a time per key <code class="block">${sub.ordering.key}</code><span class="small">on a permanent failure: ${sub.ordering.on_failure === 'block' ? 'block the key until the failed delivery is replayed or skipped' : 'continue with the next'}</span>`
      : html`<span class="muted">none: every event on its own</span>`],
    ['Signing secret', html`<span class="mono">${sub.signing_secret_prefix}…</span>${sub.previous_secret_expires_at ? html` <span class="small muted">(the previous one also signs until ${formatTime(sub.previous_secret_expires_at)})</span>` : ''}`],
    ['Created', formatTime(sub.created_at)],
  ];
  return html`<dl class="settings">
    ${rows.map(([term, value]) => html`<div><dt>${term}</dt><dd>${value}</dd></div>`)}
  </dl>`;
}

export function SubscriptionDetail({ id }) {
  const { secret, flashSecret } = useSession();
  const sub = useResource(() => api.get(`/webhooks/${id}`), [id], { interval: 10_000 });
  const [confirm, setConfirm] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [test, setTest] = useState(null);
  const [refreshToken, setRefreshToken] = useState(0);

  if (!sub.data) return sub.error ? html`<${ErrorNotice} error=${sub.error} /><p><a href="#/">Back to subscriptions</a></p>` : html`<${Loading} />`;
  const s = sub.data;

  const act = async (what, run) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await run();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setConfirm(null);
    }
  };
  const toggle = () =>
    act('toggle', async () => {
      await api.patch(`/webhooks/${id}`, { enabled: !s.enabled });
      setNotice(s.enabled ? 'Subscription disabled: new events are not delivered to it.' : 'Subscription enabled.');
      await sub.reload();
    });
  const rotate = () =>
    act('rotate', async () => {
      const r = await api.post(`/webhooks/${id}/rotate-secret`);
      flashSecret({ id, secret: r.signing_secret, warning: r._warning });
      await sub.reload();
    });
  const remove = () =>
    act('delete', async () => {
      await api.del(`/webhooks/${id}`);
      navigate('/');
    });
  const sendTest = () =>
    act('test', async () => {
      setTest({ running: true });
      try {
        setTest(await api.post(`/webhooks/${id}/test`, {}));
        setRefreshToken((n) => n + 1);
        sub.reload();
      } catch (err) {
        setTest(null);
        throw err;
      }
    });

  return html`<section aria-labelledby="sub-title">
    <p class="crumbs"><a href="#/">Subscriptions</a> <span aria-hidden="true">›</span> <span class="mono">${s.id}</span></p>
    <div class="page-head">
      <div>
        <h1 id="sub-title">${s.description || destinationLabel(s)}</h1>
        <p class="head-meta">
          <${EnabledBadge} sub=${s} />
          ${!s.enabled && s.disabled_reason && html`<span class="muted"> — ${s.disabled_reason}</span>`}
          <span class="sep" aria-hidden="true">·</span>
          Last delivery: ${s.last_delivery_status ? html`<${StatusBadge} status=${s.last_delivery_status} /> <${Time} iso=${s.last_delivery_at} />` : html`<span class="muted">none yet</span>`}
          <span class="sep" aria-hidden="true">·</span>
          Success, 24 h: <${SuccessRate} sub=${s} />
        </p>
      </div>
    </div>

    ${secret && secret.id === id && html`<${SecretNotice} secret=${secret} onDismiss=${() => flashSecret(null)} />`}

    <div class="toolbar" role="group" aria-label="Subscription actions">
      <${WriteButton} class="primary" onClick=${sendTest} disabled=${busy}>Send test event<//>
      <${WriteButton} onClick=${() => navigate(`/webhooks/${id}/edit`)}>Edit<//>
      <a class="button" href=${`#/webhooks/${id}/mapping`}>Mapping editor</a>
      <${WriteButton} onClick=${toggle} disabled=${busy}>${s.enabled ? 'Disable' : 'Enable'}<//>
      <${WriteButton} onClick=${() => setConfirm('rotate')} disabled=${busy}>Rotate secret<//>
      <${WriteButton} class="danger" onClick=${() => setConfirm('delete')} disabled=${busy}>Delete<//>
    </div>

    <${ErrorNotice} error=${error} />
    ${notice && html`<${Notice} kind="success" onClose=${() => setNotice(null)}>${notice}<//>`}
    ${test && html`<${TestResult} result=${test} onClose=${() => setTest(null)} />`}

    <details class="card" open>
      <summary><h2>Settings</h2></summary>
      <${Settings} sub=${s} />
    </details>

    <${BlockedKeys} sub=${s} refreshToken=${refreshToken} onChange=${() => setRefreshToken((n) => n + 1)} />

    <${DeliveryLog} subscription=${s} refreshToken=${refreshToken} />

    <${ConfirmDialog}
      open=${confirm === 'delete'}
      title="Delete this subscription?"
      confirmLabel="Delete subscription"
      danger
      onConfirm=${remove}
      onCancel=${() => setConfirm(null)}
    >
      <p><span class="mono">${destinationLabel(s)}</span> stops receiving events at once; its pending deliveries are cancelled. This cannot be undone.</p>
    <//>
    <${ConfirmDialog}
      open=${confirm === 'rotate'}
      title="Rotate the signing secret?"
      confirmLabel="Rotate secret"
      onConfirm=${rotate}
      onCancel=${() => setConfirm(null)}
    >
      <p>A new secret is shown once. The current one keeps signing beside it for a while (24 hours by default), so receivers can switch over.</p>
    <//>
  </section>`;
}
