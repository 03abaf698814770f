import { html } from '../html.js';
import { api, query } from '../api.js';
import { useResource, navigate } from '../hooks.js';
import { EnabledBadge, ErrorNotice, Loading, StatusBadge, Time, WriteButton } from './ui.js';

const DAY_MS = 86_400_000;

/**
 * Success over the last 24 h. Uses `stats_24h` when the API provides it; otherwise counts the
 * newest 100 deliveries (enough for a glance; the label says when the window was cut short).
 */
export function SuccessRate({ sub }) {
  const stats = useResource(async () => {
    if (sub.stats_24h) return { ...sub.stats_24h, partial: false };
    const since = Date.now() - DAY_MS;
    const page = await api.get(`/webhooks/${sub.id}/deliveries${query({ limit: 100 })}`);
    const recent = page.data.filter((d) => new Date(d.created_at).getTime() >= since);
    const count = (status) => recent.filter((d) => d.status === status).length;
    return { delivered: count('delivered'), failed: count('failed'), partial: recent.length === page.data.length && page.next_cursor !== null };
  }, [sub.id, sub.last_delivery_at, sub.stats_24h?.delivered, sub.stats_24h?.failed]);
  if (!stats.data) return html`<span class="muted">${stats.error ? 'unknown' : '…'}</span>`;
  const { delivered, failed, partial } = stats.data;
  const total = delivered + failed;
  if (total === 0) return html`<span class="muted">no finished deliveries</span>`;
  const rate = Math.round((delivered / total) * 100);
  const icon = rate === 100 ? '✓' : rate >= 90 ? '◐' : '✕';
  return html`<span class=${'rate ' + (rate === 100 ? 'rate-good' : rate >= 90 ? 'rate-warn' : 'rate-bad')}>
    <span aria-hidden="true">${icon} </span>${rate}%<span class="muted"> (${delivered} of ${total}${partial ? ', latest 100' : ''})</span>
  </span>`;
}

export function destinationLabel(sub) {
  return sub.url || `${sub.connector} connector`;
}

export function SubscriptionsList() {
  const subs = useResource(() => api.get('/webhooks'), [], { interval: 10_000 });
  return html`<section aria-labelledby="subs-title">
    <div class="page-head">
      <h1 id="subs-title">Subscriptions</h1>
      <${WriteButton} class="primary" onClick=${() => navigate('/webhooks/new')}>+ New subscription<//>
    </div>
    <${ErrorNotice} error=${subs.error} />
    ${subs.loading && !subs.data && html`<${Loading} />`}
    ${subs.data &&
    (subs.data.data.length === 0
      ? html`<div class="empty card">
          <p>No subscriptions yet. A subscription sends the events you pick to a URL (or Slack, PagerDuty, Zapier, n8n, HubSpot), signed, with retries.</p>
        </div>`
      : html`<div class="table-wrap"><table class="subs">
          <caption class="sr-only">Subscriptions and their health</caption>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col">Destination</th>
              <th scope="col">Events</th>
              <th scope="col">Last delivery</th>
              <th scope="col">Success, 24 h</th>
            </tr>
          </thead>
          <tbody>
            ${subs.data.data.map(
              (sub) => html`<tr key=${sub.id}>
                <td data-label="State">
                  <${EnabledBadge} sub=${sub} />
                  ${!sub.enabled && sub.disabled_reason && html`<div class="small muted">${sub.disabled_reason}</div>`}
                </td>
                <td data-label="Destination">
                  <a href=${`#/webhooks/${sub.id}`} class="strong">${sub.description || destinationLabel(sub)}</a>
                  <div class="small muted mono">${sub.description ? destinationLabel(sub) : sub.id}</div>
                  ${sub.connector !== 'webhook' && html`<span class="tag">${sub.connector}</span>`}
                </td>
                <td data-label="Events">${sub.events.map((e) => html`<span class="tag mono">${e}</span> `)}</td>
                <td data-label="Last delivery">
                  ${sub.last_delivery_status ? html`<${StatusBadge} status=${sub.last_delivery_status} /> <${Time} iso=${sub.last_delivery_at} />` : html`<span class="muted">none yet</span>`}
                </td>
                <td data-label="Success, 24 h"><${SuccessRate} sub=${sub} /></td>
              </tr>`,
            )}
          </tbody>
        </table></div>`)}
  </section>`;
}
