import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { useResource } from '../hooks.js';
import { formatTime, pretty, prettyBody } from '../format.js';
import { ConfirmDialog, ErrorNotice, Loading, Notice, OutcomeBadge, StatusBadge, Time, WriteButton } from './ui.js';
import { replayNotice } from './delivery-log.js';

function Headers({ headers, label }) {
  const entries = Object.entries(headers ?? {});
  if (!entries.length) return html`<p class="muted small">No headers.</p>`;
  return html`<table class="headers">
    <caption class="sr-only">${label}</caption>
    <tbody>
      ${entries.map(([name, value]) => html`<tr><th scope="row" class="mono">${name}</th><td class="mono">${value}</td></tr>`)}
    </tbody>
  </table>`;
}

/** One HTTP exchange: request as sent (secrets masked by the gateway), response as received. */
function Exchange({ request, response, error, latency }) {
  return html`<div class="exchange">
    <div>
      <h4>Request</h4>
      <p class="mono small"><strong>${request.method}</strong> ${request.url}</p>
      <details>
        <summary>Headers (${Object.keys(request.headers ?? {}).length})</summary>
        <${Headers} headers=${request.headers} label="Request headers" />
      </details>
      <h5>Body as sent</h5>
      <pre class="excerpt">${request.body === null ? '(none)' : prettyBody(request.body)}</pre>
    </div>
    <div>
      <h4>Response${latency !== undefined ? html` <span class="muted small">after ${Math.round(latency)} ms</span>` : ''}</h4>
      ${response
        ? html`<p class="mono"><strong>HTTP ${response.status}</strong></p>
            <details>
              <summary>Headers (${Object.keys(response.headers ?? {}).length})</summary>
              <${Headers} headers=${response.headers} label="Response headers" />
            </details>
            <h5>Body excerpt</h5>
            <pre class="excerpt">${response.body ? prettyBody(response.body) : '(empty)'}</pre>`
        : html`<p class="muted">No response.</p>`}
      ${error && html`<p class="field-error"><span aria-hidden="true">✕ </span><strong>Error:</strong> ${error}</p>`}
    </div>
  </div>`;
}

function Attempt({ attempt }) {
  return html`<li class="attempt">
    <div class="attempt-head">
      <h3>Attempt ${attempt.number}${attempt.chain > 1 ? html` <span class="muted small">(chain ${attempt.chain}, a replay)</span>` : ''}</h3>
      <${OutcomeBadge} outcome=${attempt.outcome} />
      ${attempt.response && html`<span class="mono">HTTP ${attempt.response.status}</span>`}
      <span>${Math.round(attempt.latency_ms)} ms</span>
      <time datetime=${attempt.started_at}>${formatTime(attempt.started_at)}</time>
    </div>
    ${attempt.steps?.length
      ? html`<ol class="steps">
          ${attempt.steps.map(
            (s) => html`<li><h4 class="step-name">Step: ${s.name}</h4>
              <${Exchange}
                request=${{ method: s.method, url: s.url, headers: s.request_headers, body: s.request_body }}
                response=${s.response_status === null ? null : { status: s.response_status, headers: s.response_headers, body: s.response_body }}
                error=${s.error}
                latency=${s.latency_ms}
              /></li>`,
          )}
        </ol>`
      : html`<${Exchange} request=${attempt.request} response=${attempt.response} error=${attempt.error} />`}
  </li>`;
}

/** Attempts in the current chain (`attempt_count`; older gateways called it `attempts`). */
export const attemptCount = (d) => d.attempt_count ?? (Array.isArray(d.attempts) ? d.attempts.filter((a) => a.chain === d.chain).length : d.attempts);

export function DeliveryDetail({ id }) {
  // Poll only while something can still change (and until the first answer).
  const [status, setStatus] = useState(null);
  const live = status === null || status === 'pending' || status === 'delivering';
  const delivery = useResource(() => api.get(`/deliveries/${id}`), [id], { interval: live ? 3_000 : 0 });
  const [notice, setNotice] = useState(null);
  const [error, setError] = useState(null);
  const [confirmErase, setConfirmErase] = useState(false);
  const [erased, setErased] = useState(null);
  const d = delivery.data;
  useEffect(() => setStatus(d?.status ?? null), [d?.status]);

  // Once erased, this delivery no longer exists: say what went, instead of polling a 404.
  if (erased) {
    return html`<section aria-labelledby="erased-title">
      <h1 id="erased-title">Event erased</h1>
      <${Notice} kind="success">
        Event <span class="mono">${erased.id}</span> is gone${' '}
        ${`with ${erased.deliveries} ${erased.deliveries === 1 ? 'delivery' : 'deliveries'} (${erased.cancelled} pending, now cancelled) and ${erased.attempts} ${erased.attempts === 1 ? 'attempt' : 'attempts'}.`}
      <//>
      <p><a href=${`#/webhooks/${erased.subscription_id}`}>Back to the subscription</a> · <a href="#/deliveries">Delivery log</a></p>
    </section>`;
  }
  if (!d) return delivery.error ? html`<${ErrorNotice} error=${delivery.error} />` : html`<${Loading} />`;
  /** Runs an action, shows what it says, and reads the delivery again. */
  const act = (run) => async () => {
    setError(null);
    try {
      setNotice(await run());
      await delivery.reload();
    } catch (err) {
      setError(err);
    }
  };
  const replay = act(async () => {
    const answer = await api.post(`/deliveries/${id}/replay`);
    return answer.replayed_as_new_delivery ? replayNotice(id, answer) : 'Replay queued: a new attempt chain starts now.';
  });
  const skip = act(async () => {
    await api.post(`/deliveries/${id}/skip`);
    return html`Skipped: key <span class="mono">${d.ordering_key}</span> goes on; this delivery stays failed.`;
  });
  const erase = async () => {
    setError(null);
    try {
      const result = await api.del(`/events/${encodeURIComponent(d.event_id)}`);
      setErased({ ...result, subscription_id: d.subscription_id });
      setStatus('erased');
    } catch (err) {
      setError(err);
    } finally {
      setConfirmErase(false);
    }
  };
  const attempts = [...d.attempts].reverse();
  return html`<section aria-labelledby="delivery-title">
    <p class="crumbs">
      <a href="#/deliveries">Delivery log</a> <span aria-hidden="true">›</span>
      <a href=${`#/webhooks/${d.subscription_id}`} class="mono">${d.subscription_id}</a> <span aria-hidden="true">›</span>
      <span class="mono">${d.id}</span>
    </p>
    <div class="page-head">
      <div>
        <h1 id="delivery-title"><span class="mono">${d.event}</span> delivery</h1>
        <p class="head-meta">
          <${StatusBadge} status=${d.paused ? 'paused' : d.status} />
          <span class="sep" aria-hidden="true">·</span> ${attemptCount(d)} ${attemptCount(d) === 1 ? 'attempt' : 'attempts'}${d.chain > 1 ? ` in chain ${d.chain}` : ''}
          ${d.last_status_code && html`<span class="sep" aria-hidden="true">·</span> last response <span class="mono">HTTP ${d.last_status_code}</span>`}
          ${d.next_attempt_at && html`<span class="sep" aria-hidden="true">·</span> next attempt <${Time} iso=${d.next_attempt_at} />`}
        </p>
      </div>
      <div class="toolbar">
        <${WriteButton} class="primary" onClick=${replay} disabled=${d.status === 'pending' || d.status === 'delivering'}>Replay<//>
        ${d.blocks_key && html`<${WriteButton} onClick=${skip}>Skip<//>`}
        <a class="button" href=${`#/webhooks/${d.subscription_id}/mapping?delivery=${d.id}`}>Open in mapping editor</a>
        <${WriteButton} class="danger" onClick=${() => setConfirmErase(true)}>Erase event<//>
      </div>
    </div>
    ${notice && html`<${Notice} kind="success" onClose=${() => setNotice(null)}>${notice}<//>`}
    <${ErrorNotice} error=${error} />
    <dl class="settings card">
      <div><dt>Delivery id</dt><dd class="mono">${d.id}</dd></div>
      <div><dt>webhook-id</dt><dd class="mono">${d.webhook_id}</dd></div>
      <div><dt>Event id</dt><dd class="mono">${d.event_id}</dd></div>
      <div><dt>Created</dt><dd>${formatTime(d.created_at)}</dd></div>
      <div><dt>Ordering key</dt><dd>${d.ordering_key === null || d.ordering_key === undefined ? html`<span class="muted">none: not ordered</span>` : html`<span class="mono">${d.ordering_key}</span>`}</dd></div>
      ${d.waiting_for && html`<div><dt>Waits for</dt><dd><a class="mono" href=${`#/deliveries/${d.waiting_for.delivery_id}`}>${d.waiting_for.delivery_id}</a> <span class="muted">(${d.waiting_for.reason})</span></dd></div>`}
      ${d.blocks_key && html`<div><dt>Blocks its key</dt><dd class="blocking">Deliveries of this key wait until it is replayed or skipped.</dd></div>`}
      ${d.replay_of && html`<div><dt>Replay of</dt><dd><a class="mono" href=${`#/deliveries/${d.replay_of}`}>${d.replay_of}</a></dd></div>`}
      ${d.last_error && html`<div><dt>Last error</dt><dd>${d.last_error}</dd></div>`}
    </dl>
    <section class="card" aria-labelledby="attempts-title">
      <h2 id="attempts-title">Attempts, newest first</h2>
      ${attempts.length === 0 ? html`<p class="muted">No attempt yet.</p>` : html`<ol class="attempts" reversed>${attempts.map((a) => html`<${Attempt} key=${a.id} attempt=${a} />`)}</ol>`}
    </section>
    ${d.payload &&
    html`<details class="card">
      <summary><h2>Event payload</h2></summary>
      <pre class="excerpt">${pretty(d.payload)}</pre>
    </details>`}
    <${ConfirmDialog}
      open=${confirmErase}
      title="Erase this event?"
      confirmLabel="Erase event"
      danger
      onConfirm=${erase}
      onCancel=${() => setConfirmErase(false)}
    >
      <p>Event <span class="mono">${d.event_id}</span> is deleted with every delivery of it, to every subscription, and every attempt with its request and response bodies. Pending deliveries are cancelled. This cannot be undone.</p>
    <//>
  </section>`;
}
