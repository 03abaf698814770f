import { html } from '../html.js';
import { Notice, OutcomeBadge } from './ui.js';

/** The answer of POST /webhooks/{id}/test: what the destination said to the sample event. */
export function TestResult({ result, onClose }) {
  if (result.running) return html`<${Notice} kind="info">Sending a test event…<//>`;
  const a = result.attempt;
  const ok = result.status === 'delivered';
  return html`<${Notice} kind=${ok ? 'success' : 'error'} onClose=${onClose}>
    <div class="test-result">
      <strong>Test <span class="mono">${result.event}</span>:</strong>
      ${a ? html`<${OutcomeBadge} outcome=${a.outcome} />` : html`<span>${result.status ?? 'not attempted'}</span>`}
      ${a?.response && html`<span>HTTP <strong class="mono">${a.response.status}</strong></span>`}
      ${a && html`<span>${Math.round(a.latency_ms)} ms</span>`}
      ${a?.error && html`<span>${a.error}</span>`}
      ${result.delivery_id && html`<a href=${`#/deliveries/${result.delivery_id}`}>View delivery</a>`}
    </div>
    ${a?.response?.body && html`<pre class="excerpt">${a.response.body}</pre>`}
  <//>`;
}
