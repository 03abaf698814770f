import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { api, query } from '../api.js';
import { useResource } from '../hooks.js';
import { STATUS, eventMatches } from '../format.js';
import { attemptCount } from './delivery-detail.js';
import { destinationLabel } from './subscriptions-list.js';
import { ErrorNotice, Loading, Notice, StatusBadge, Time, WriteButton, useSession } from './ui.js';

const REFRESH_MS = 3_000;

function ResponseCell({ d }) {
  if (d.last_status_code) return html`<span class="mono">HTTP ${d.last_status_code}</span>`;
  if (d.last_error) return html`<span class="small" title=${d.last_error}>${d.last_error.length > 40 ? d.last_error.slice(0, 40) + '…' : d.last_error}</span>`;
  return html`<span class="muted">—</span>`;
}

function latencyOf(d) {
  const ms = d.latency_ms ?? d.last_latency_ms;
  return ms === undefined || ms === null ? html`<span class="muted">—</span>` : `${Math.round(ms)} ms`;
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** "Replay failed since…": every matching delivery of one subscription, as new attempt chains. */
function BulkReplay({ subscriptionId, onDone }) {
  const [status, setStatus] = useState('failed');
  const [since, setSince] = useState(() => localInputValue(new Date(Date.now() - 86_400_000)));
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      // One call queues at most SLUICE_REPLAY_LIMIT; follow the cursor through the whole selection.
      let total = 0;
      let cursor;
      do {
        const r = await api.post(`/webhooks/${subscriptionId}/replay`, { status: status || undefined, since: since ? new Date(since).toISOString() : undefined, cursor });
        total += r.replayed;
        cursor = r.next_cursor ?? undefined;
      } while (cursor);
      setResult(total);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="bulk-replay" onSubmit=${submit} aria-label="Replay in bulk">
    <span class="strong">Replay</span>
    <label for="bulk-status" class="sr-only">Which deliveries</label>
    <select id="bulk-status" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
      <option value="failed">failed</option>
      <option value="delivered">delivered</option>
      <option value="cancelled">cancelled</option>
      <option value="">all</option>
    </select>
    <label for="bulk-since">deliveries since</label>
    <input id="bulk-since" type="datetime-local" value=${since} onInput=${(e) => setSince(e.currentTarget.value)} />
    <${WriteButton} type="submit">Replay<//>
    ${result !== null && html`<span role="status" class="ok-text"><span aria-hidden="true">✓ </span>${result} ${result === 1 ? 'delivery' : 'deliveries'} queued again</span>`}
    ${error && html`<${ErrorNotice} error=${error} />`}
  </form>`;
}

/** What a replay answer says: a new attempt chain, or (an ordered key's earlier delivery) a new delivery at the end of its key. */
export function replayNotice(id, answer) {
  if (!answer?.replayed_as_new_delivery) return html`Replay of <span class="mono">${id}</span> queued.`;
  return html`Replay of <span class="mono">${id}</span> queued as the new delivery <a class="mono" href=${`#/deliveries/${answer.id}`}>${answer.id}</a>, at the end of key <span class="mono">${answer.ordering_key}</span>'s queue.`;
}

/** The delivery log of one subscription, or of all when `subscription` is absent. */
export function DeliveryLog({ subscription, refreshToken = 0 }) {
  const { eventTypes } = useSession();
  const [status, setStatus] = useState('');
  const [event, setEvent] = useState('');
  const [cursors, setCursors] = useState([]);
  const [auto, setAuto] = useState(true);
  const [notice, setNotice] = useState(null);
  const [error, setError] = useState(null);
  const cursor = cursors[cursors.length - 1];
  const base = subscription ? `/webhooks/${subscription.id}/deliveries` : '/deliveries';
  const path = base + query({ status, event, limit: 25, cursor });
  const log = useResource(() => api.get(path), [path, refreshToken], { interval: auto ? REFRESH_MS : 0 });
  const names = eventTypes.map((t) => t.name).filter((n) => !subscription || subscription.events.some((p) => eventMatches(p, n)));
  // Across all subscriptions, rows name each by its description (the id on hover).
  const subs = useResource(() => (subscription ? Promise.resolve(null) : api.get('/webhooks')), [Boolean(subscription)]);
  const subName = (id) => {
    const sub = subs.data?.data.find((x) => x.id === id);
    return sub ? sub.description || destinationLabel(sub) : id;
  };

  const filterBy = (set) => (e) => {
    set(e.currentTarget.value);
    setCursors([]);
  };
  const act = (run) => async (d) => {
    setError(null);
    setNotice(null);
    try {
      setNotice(await run(d));
      await log.reload();
    } catch (err) {
      setError(err);
    }
  };
  const replay = act(async (d) => replayNotice(d.id, await api.post(`/deliveries/${d.id}/replay`)));
  const skip = act(async (d) => {
    await api.post(`/deliveries/${d.id}/skip`);
    return html`Key <span class="mono">${d.ordering_key}</span> goes on without <span class="mono">${d.id}</span> (it stays failed).`;
  });

  return html`<section class="card" aria-labelledby="log-title">
    <div class="section-head">
      <h2 id="log-title">Delivery log</h2>
      <div class="filters" role="group" aria-label="Filter deliveries">
        <label for="log-status">Status</label>
        <select id="log-status" value=${status} onChange=${filterBy(setStatus)}>
          <option value="">All</option>
          ${Object.entries(STATUS).map(([value, s]) => html`<option value=${value}>${s.label}</option>`)}
        </select>
        <label for="log-event">Event</label>
        <select id="log-event" value=${event} onChange=${filterBy(setEvent)}>
          <option value="">All</option>
          ${names.map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
        <label class="check"><input type="checkbox" checked=${auto} onChange=${(e) => setAuto(e.currentTarget.checked)} /> Auto-refresh</label>
        <button type="button" onClick=${() => log.reload()}>Refresh</button>
      </div>
    </div>
    ${subscription && html`<${BulkReplay} subscriptionId=${subscription.id} onDone=${() => log.reload()} />`}
    ${notice && html`<${Notice} kind="success" onClose=${() => setNotice(null)}>${notice}<//>`}
    <${ErrorNotice} error=${error || log.error} />
    ${!log.data && !log.error && html`<${Loading} what="Loading deliveries" />`}
    ${log.data &&
    (log.data.data.length === 0
      ? html`<p class="muted empty">No deliveries${status || event ? ' match these filters' : ' yet'}.</p>`
      : html`<div class="table-wrap"><table class="log">
          <caption class="sr-only">Deliveries, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Event</th>
              ${!subscription && html`<th scope="col">Subscription</th>`}
              <th scope="col">Status</th>
              <th scope="col">Response</th>
              <th scope="col">Latency</th>
              <th scope="col">Attempts</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            ${log.data.data.map(
              (d) => html`<tr key=${d.id} data-delivery=${d.id}>
                <td><${Time} iso=${d.last_attempt_at ?? d.created_at} /></td>
                <td><span class="mono">${d.event}</span>${d.ordering_key !== null && d.ordering_key !== undefined && html`<div class="small muted">key <span class="mono" title="ordering key">${d.ordering_key}</span></div>`}</td>
                ${!subscription && html`<td><a class="small" href=${`#/webhooks/${d.subscription_id}`} title=${d.subscription_id}>${subName(d.subscription_id)}</a></td>`}
                <td>
                  <${StatusBadge} status=${d.paused ? 'paused' : d.status} />
                  ${d.waiting_for
                    ? html`<div class="small muted">waits for <a class="mono" href=${`#/deliveries/${d.waiting_for.delivery_id}`} title=${d.waiting_for.reason}>${d.waiting_for.delivery_id}</a></div>`
                    : d.status === 'pending' && d.next_attempt_at && html`<div class="small muted">next <${Time} iso=${d.next_attempt_at} /></div>`}
                  ${d.blocks_key && html`<div class="small blocking">blocks its key</div>`}
                </td>
                <td><${ResponseCell} d=${d} /></td>
                <td>${latencyOf(d)}</td>
                <td>${attemptCount(d)}${d.chain > 1 ? html` <span class="small muted" title="Replays start a new chain">(chain ${d.chain})</span>` : ''}</td>
                <td>
                  <div class="row-actions">
                    <a href=${`#/deliveries/${d.id}`} aria-label=${`Details of ${d.id}`}>Details</a>
                    <${WriteButton} class="small-button" onClick=${() => replay(d)} disabled=${d.status === 'pending' || d.status === 'delivering'} aria-label=${`Replay ${d.id}`}>Replay<//>
                    ${d.blocks_key && html`<${WriteButton} class="small-button" onClick=${() => skip(d)} aria-label=${`Skip ${d.id}`}>Skip<//>`}
                  </div>
                </td>
              </tr>`,
            )}
          </tbody>
        </table></div>`)}
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>‹ Newer</button>
      <span class="muted small">Page ${cursors.length + 1}${auto ? ' · refreshing every 3 s' : ''}</span>
      <button type="button" disabled=${!log.data?.next_cursor} onClick=${() => setCursors([...cursors, log.data.next_cursor])}>Older ›</button>
    </nav>
  </section>`;
}

export function DeliveriesPage() {
  return html`<div>
    <div class="page-head"><h1>Delivery log</h1></div>
    <p class="muted">Every outbound call across all subscriptions. Open a delivery to see each attempt as sent and received.</p>
    <${DeliveryLog} />
  </div>`;
}
