import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../html.js';
import { ApiError, api, query } from '../api.js';
import { navigate, useDebounced, useResource } from '../hooks.js';
import { eventMatches, pretty, timeAgo } from '../format.js';
import { CodeEditor } from './code-editor.js';
import { ErrorNotice, Notice, WriteButton, detailText, useSession } from './ui.js';
import { TestResult } from './test-result.js';

const PREVIEW_DELAY_MS = 300;
const INLINE = '';

/** A preview's 422 details, split by which editor they belong to (the code says which failed). */
function splitErrors(error) {
  const out = { template: [], filter: [], other: [] };
  if (!error || error.status !== 422) return out;
  const target = /^filter/.test(error.code) ? 'filter' : /^(template|mapping)/.test(error.code) ? 'template' : null;
  const details = error.details.length ? error.details : [{ message: error.message }];
  for (const d of details) {
    if (/filter/.test(d.path ?? '')) out.filter.push(d);
    else if (/template|mapping/.test(d.path ?? '')) out.template.push(d);
    else if (target) out[target].push(d);
    else out.other.push(d);
  }
  return out;
}

function PositionedErrors({ id, title, errors }) {
  if (!errors.length) return null;
  return html`<div class="editor-errors" id=${id} role="alert">
    <strong><span aria-hidden="true">✕ </span>${title}</strong>
    <ul>
      ${errors.map((d) => html`<li>${d.line !== undefined ? html`<span class="pos">Line ${d.line}, column ${d.column}</span>: ` : ''}${d.message}${d.token ? html` (near <code>${d.token}</code>)` : ''}</li>`)}
    </ul>
  </div>`;
}

/** Where the sample event comes from: recent deliveries of the subscription, or catalog examples. */
function EventPicker({ choice, onChoose, recent, examples, extraDelivery }) {
  return html`<div class="field">
    <label for="event-source">Event to try</label>
    <select id="event-source" value=${choice} onChange=${(e) => onChoose(e.currentTarget.value)}>
      <option value="custom">Custom (edit below)</option>
      ${extraDelivery && !recent.some((d) => d.id === extraDelivery) && html`<option value=${`delivery:${extraDelivery}`}>Delivery ${extraDelivery}</option>`}
      ${recent.length > 0 &&
      html`<optgroup label="Recent events">
        ${recent.map((d) => html`<option value=${`delivery:${d.id}`}>${d.event} · ${timeAgo(d.created_at)} · ${d.status}</option>`)}
      </optgroup>`}
      <optgroup label="Catalog examples">
        ${examples.map((t) => html`<option value=${`example:${t.name}`}>${t.name} (example)</option>`)}
      </optgroup>
    </select>
  </div>`;
}

/** `{filter: {matches}}` from the preview API (`filter_matches` accepted too). */
const filterMatches = (result) => result.filter?.matches ?? result.filter_matches;

function OutputPanel({ preview, hasFilter, pending, eventError }) {
  const { result, error } = preview;
  let body;
  if (eventError) body = html`<${Notice} kind="error">The event is not valid JSON: ${eventError}<//>`;
  else if (error?.status === 404) body = html`<${Notice} kind="warning">The preview API (<code>POST /api/v1/mappings/preview</code>) is not available on this gateway yet.<//>`;
  else if (error && error.status !== 422) body = html`<${ErrorNotice} error=${error} />`;
  else if (error) body = html`<p class="muted">No output while the template or filter has errors (see them beside the editor).</p>`;
  else if (!result) body = html`<p class="muted">Waiting for a template and an event…</p>`;
  else
    body = html`
      ${hasFilter &&
      filterMatches(result) !== undefined &&
      (filterMatches(result)
        ? html`<p class="filter-result ok-text" id="filter-result"><span aria-hidden="true">✓ </span>Filter matches: this event would be delivered.</p>`
        : html`<p class="filter-result bad-text" id="filter-result"><span aria-hidden="true">✕ </span>Filter does not match: this event would be skipped.</p>`)}
      <pre class="excerpt output" id="preview-output" tabindex="0" aria-label="Output">${result.output === undefined ? '(no output: the template returned nothing, so nothing would be sent)' : pretty(result.output)}</pre>`;
  return html`<section aria-labelledby="output-title" class="output-panel">
    <h2 id="output-title">Output <span class="muted small" role="status" aria-live="polite">${pending ? 'updating…' : result || error ? 'up to date' : ''}</span></h2>
    ${body}
  </section>`;
}

export function MappingEditor({ subscriptionId, deliveryId }) {
  const { eventTypes } = useSession();
  const subs = useResource(() => api.get('/webhooks'), []);
  const sub = useResource(() => (subscriptionId ? api.get(`/webhooks/${subscriptionId}`) : Promise.resolve(null)), [subscriptionId]);
  const mappings = useResource(() => api.get('/mappings'), []);
  const recent = useResource(() => api.get(`${subscriptionId ? `/webhooks/${subscriptionId}/deliveries` : '/deliveries'}${query({ limit: 20 })}`), [subscriptionId]);

  const [templateName, setTemplateName] = useState(INLINE);
  const [template, setTemplate] = useState('');
  const [filter, setFilter] = useState('');
  const [choice, setChoice] = useState('custom');
  const [eventText, setEventText] = useState('');
  const [preview, setPreview] = useState({ result: null, error: null });
  const [notice, setNotice] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [test, setTest] = useState(null);
  const started = useRef({ template: false, event: false });

  const s = sub.data;
  const templates = mappings.data?.data ?? [];
  const examples = eventTypes.filter((t) => !s || s.events.some((p) => eventMatches(p, t.name)));
  const recentDeliveries = recent.data?.data ?? [];

  // Start from the subscription's own template and filter, once they are known.
  useEffect(() => {
    if (started.current.template || (subscriptionId && !s) || (!mappings.data && !mappings.error)) return;
    started.current.template = true;
    if (!s) return;
    setFilter(s.filter ?? '');
    const named = s.mapping && templates.find((m) => m.name === s.mapping);
    if (named) {
      setTemplateName(named.name);
      setTemplate(named.source ?? '');
    } else setTemplate(s.mapping ?? '');
  }, [s, mappings.data, mappings.error]);

  const chooseEvent = async (value) => {
    setChoice(value);
    const [kind, name] = value.split(/:(.*)/s);
    if (kind === 'example') {
      const type = eventTypes.find((t) => t.name === name);
      if (type) setEventText(pretty(type.example));
    } else if (kind === 'delivery') {
      try {
        const d = await api.get(`/deliveries/${name}`);
        setEventText(pretty(d.payload));
      } catch (err) {
        setActionError(err);
      }
    }
  };

  // Start from the delivery asked for, else the newest real event, else a catalog example.
  useEffect(() => {
    if (started.current.event || (!recent.data && !recent.error) || !eventTypes.length) return;
    started.current.event = true;
    if (deliveryId) chooseEvent(`delivery:${deliveryId}`);
    else if (recentDeliveries.length) chooseEvent(`delivery:${recentDeliveries[0].id}`);
    else if (examples.length) chooseEvent(`example:${examples[0].name}`);
  }, [recent.data, recent.error, eventTypes]);

  const inputs = useDebounced(JSON.stringify({ templateName, template, filter, eventText }), PREVIEW_DELAY_MS);
  const current = JSON.stringify({ templateName, template, filter, eventText });
  let event;
  let eventError = null;
  try {
    event = eventText.trim() ? JSON.parse(eventText) : undefined;
  } catch (err) {
    eventError = err.message;
  }

  useEffect(() => {
    const settled = JSON.parse(inputs);
    let parsed;
    try {
      parsed = settled.eventText.trim() ? JSON.parse(settled.eventText) : undefined;
    } catch {
      return;
    }
    if (parsed === undefined) return;
    let stale = false;
    const body = { event: parsed };
    // No template at all means "no mapping": the preview answers with the envelope as is.
    if (settled.templateName) body.mapping = settled.templateName;
    else if (settled.template.trim()) body.template = settled.template;
    if (settled.filter.trim()) body.filter = settled.filter;
    // Templates may read $subscription: preview them with the real one.
    if (subscriptionId) body.subscription_id = subscriptionId;
    api.post('/mappings/preview', body).then(
      (result) => !stale && setPreview({ result, error: null, key: inputs }),
      (error) => !stale && setPreview({ result: null, error: error instanceof ApiError ? error : new ApiError(0, null), key: inputs }),
    );
    return () => {
      stale = true;
    };
  }, [inputs]);

  const errors = splitErrors(preview.error);
  const named = templates.find((m) => m.name === templateName);
  const mappingValue = templateName || template.trim() || null;
  // A test send goes through the subscription as saved: say so when the draft differs.
  const unsaved = Boolean(s) && (mappingValue !== (s.mapping || null) || (filter.trim() || null) !== (s.filter || null));

  const save = async () => {
    setActionError(null);
    setNotice(null);
    try {
      await api.patch(`/webhooks/${subscriptionId}`, { mapping: mappingValue, filter: filter.trim() || null });
      setNotice('Saved: new deliveries use this template and filter.');
      sub.reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const sendTest = async () => {
    setActionError(null);
    setTest({ running: true });
    try {
      const name = event?.event;
      const body = name && s.events.some((p) => eventMatches(p, name)) ? { event: name } : {};
      setTest(await api.post(`/webhooks/${subscriptionId}/test`, body));
    } catch (err) {
      setTest(null);
      setActionError(err);
    }
  };

  return html`<section aria-labelledby="mapping-title" class="mapping-editor">
    <p class="crumbs">
      ${s ? html`<a href="#/">Subscriptions</a> <span aria-hidden="true">›</span> <a href=${`#/webhooks/${s.id}`} class="mono">${s.id}</a> <span aria-hidden="true">›</span> Mapping` : 'Mapping editor'}
    </p>
    <div class="page-head">
      <h1 id="mapping-title">Mapping editor</h1>
      <div class="field inline-field">
        <label for="mapping-subscription">Subscription</label>
        <select id="mapping-subscription" value=${subscriptionId ?? ''} onChange=${(e) => navigate(e.currentTarget.value ? `/webhooks/${e.currentTarget.value}/mapping` : '/mapping')}>
          <option value="">None (scratchpad)</option>
          ${(subs.data?.data ?? []).map((x) => html`<option value=${x.id}>${x.description || x.url || x.id}</option>`)}
        </select>
      </div>
    </div>
    <p class="muted">Type a JSONata template and see what the destination would receive for a real event, as you type. The filter is evaluated on the same event.</p>
    ${mappings.error && html`<${ErrorNotice} error=${mappings.error} what="The template list (GET /api/v1/mappings)" />`}
    <${ErrorNotice} error=${sub.error} />

    <div class="editor-grid">
      <div class="editor-col">
        <div class="card">
          <div class="field">
            <label for="template-source">Template</label>
            <select id="template-source" value=${templateName} onChange=${(e) => {
              const name = e.currentTarget.value;
              setTemplateName(name);
              if (name) setTemplate(templates.find((m) => m.name === name)?.source ?? '');
            }}>
              <option value=${INLINE}>Inline (write your own)</option>
              ${templates.map((m) => html`<option value=${m.name}>${m.name}${m.error ? ' (broken)' : ''}</option>`)}
            </select>
            ${named && html`<p class="hint">From <code>mappings/${named.name}.jsonata</code>. Editing it here makes an inline copy; the file itself stays as it is.</p>`}
            ${named?.error && html`<${Notice} kind="error">This template does not load: ${typeof named.error === 'string' ? named.error : detailText(named.error)}<//>`}
          </div>
          <div class="field">
            <label for="template-editor">JSONata template</label>
            <${CodeEditor}
              id="template-editor"
              value=${template}
              minRows=${12}
              placeholder=${'Empty: the event envelope is sent as is. Try: { "text": event & " for " & data.call.id }'}
              marks=${errors.template}
              describedBy=${errors.template.length ? 'template-errors' : undefined}
              onInput=${(text) => {
                setTemplate(text);
                setTemplateName(INLINE);
              }}
            />
          </div>
          <${PositionedErrors} id="template-errors" title="Template error" errors=${errors.template} />
          <div class="field">
            <label for="filter-editor">Filter <span class="muted">(optional JSONata predicate)</span></label>
            <${CodeEditor} id="filter-editor" value=${filter} minRows=${2} marks=${errors.filter} describedBy=${errors.filter.length ? 'filter-errors' : undefined} onInput=${setFilter} placeholder="data.call.duration > 60" />
          </div>
          <${PositionedErrors} id="filter-errors" title="Filter error" errors=${errors.filter} />
          ${errors.other.length > 0 && html`<${Notice} kind="error">${errors.other.map((d) => html`<div>${detailText(d)}</div>`)}<//>`}
          ${s &&
          html`<div class="toolbar">
            <${WriteButton} class="primary" onClick=${save} disabled=${errors.template.length + errors.filter.length > 0}>Save to subscription<//>
            <${WriteButton} onClick=${sendTest} aria-describedby="send-test-hint">Send test with saved template<//>
          </div>
          <p class="hint" id="send-test-hint">${unsaved
            ? html`<strong>Unsaved changes are not sent:</strong> the test uses the template and filter saved on the subscription. Save first to test this draft.`
            : 'The test sends this event type through the subscription as saved.'}</p>`}
          ${notice && html`<${Notice} kind="success" onClose=${() => setNotice(null)}>${notice}<//>`}
          <${ErrorNotice} error=${actionError} />
          ${test && html`<${TestResult} result=${test} onClose=${() => setTest(null)} />`}
        </div>
      </div>
      <div class="editor-col">
        <div class="card">
          <${OutputPanel} preview=${preview} hasFilter=${Boolean(filter.trim())} pending=${preview.key !== current && event !== undefined && !eventError} eventError=${eventError} />
        </div>
        <div class="card">
          <${EventPicker} choice=${choice} onChoose=${chooseEvent} recent=${recentDeliveries} examples=${examples} extraDelivery=${deliveryId} />
          <div class="field">
            <label for="event-editor">Event (JSON)</label>
            <${CodeEditor} id="event-editor" value=${eventText} minRows=${10} onInput=${(text) => {
              setEventText(text);
              setChoice('custom');
            }} />
          </div>
        </div>
      </div>
    </div>
  </section>`;
}
