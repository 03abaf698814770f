import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { navigate } from '../hooks.js';
import { eventMatches } from '../format.js';
import { CodeEditor } from './code-editor.js';
import { ErrorNotice, Field, Loading, Notice, WriteButton, useSession } from './ui.js';

const FALLBACK_CONNECTORS = [{ name: 'webhook', title: 'Webhook', description: 'A signed HTTP POST to any URL.', options_schema: { type: 'object', properties: {} }, secret_options: [] }];
const MASK = '********';

/** Loads what the form offers: connectors and named templates (either may not exist yet). */
function useFormCatalog() {
  const [catalog, setCatalog] = useState(null);
  useEffect(() => {
    Promise.allSettled([api.get('/connectors'), api.get('/mappings')]).then(([connectors, mappings]) =>
      setCatalog({
        connectors: connectors.status === 'fulfilled' ? connectors.value.data : FALLBACK_CONNECTORS,
        connectorsError: connectors.status === 'rejected' ? connectors.reason : null,
        mappings: mappings.status === 'fulfilled' ? mappings.value.data : null,
      }),
    );
  }, []);
  return catalog;
}

function emptyForm() {
  return {
    connector: 'webhook',
    url: '',
    description: '',
    events: [],
    enabled: true,
    headers: [],
    authType: 'none',
    auth: { username: '', password: '', token: '', name: '', value: '' },
    authTouched: false,
    filter: '',
    mappingMode: 'none',
    mappingName: '',
    mappingInline: '',
    options: {},
    optionsTouched: false,
    retryMode: 'default',
    maxAttempts: '',
    schedule: '',
    timeout: '',
    rateLimit: '',
    // 'default': left out, so the connector's default ordering (PagerDuty's) or none applies.
    orderingMode: 'default',
    orderingKey: '',
    orderingOnFailure: 'continue',
  };
}

function formFromSubscription(sub, mappings) {
  const named = sub.mapping && (mappings ? mappings.some((m) => m.name === sub.mapping) : /^[\w./-]+$/.test(sub.mapping));
  return {
    ...emptyForm(),
    connector: sub.connector,
    url: sub.url ?? '',
    description: sub.description ?? '',
    events: [...sub.events],
    enabled: sub.enabled,
    initialEnabled: sub.enabled,
    headers: Object.entries(sub.headers ?? {}).map(([name, value]) => ({ name, value })),
    authType: sub.auth?.type ?? 'none',
    auth: { username: sub.auth?.username ?? '', password: '', token: '', name: sub.auth?.name ?? '', value: '' },
    filter: sub.filter ?? '',
    mappingMode: !sub.mapping ? 'none' : named ? 'named' : 'inline',
    mappingName: named ? sub.mapping : '',
    mappingInline: named ? '' : (sub.mapping ?? ''),
    // Secret options come back masked: they stay empty until re-entered.
    options: Object.fromEntries(Object.entries(sub.connector_options ?? {}).filter(([, v]) => v !== MASK)),
    initialConnector: sub.connector,
    initialOptions: Object.entries(sub.connector_options ?? {}).filter(([, v]) => v !== MASK).map(([name]) => name),
    retryMode: sub.retry?.schedule ? 'schedule' : sub.retry?.max_attempts ? 'max' : 'default',
    maxAttempts: sub.retry?.max_attempts ? String(sub.retry.max_attempts) : '',
    schedule: sub.retry?.schedule ? sub.retry.schedule.join(', ') : '',
    timeout: sub.timeout ? String(sub.timeout) : '',
    rateLimit: sub.rate_limit ? String(sub.rate_limit) : '',
    orderingMode: sub.ordering ? 'key' : 'none',
    orderingKey: sub.ordering?.key ?? '',
    orderingOnFailure: sub.ordering?.on_failure ?? 'continue',
  };
}

const numberOrNull = (text) => (text.trim() === '' ? null : Number(text));

/** The API body: a full one to create; to edit, every field but the secret ones left untouched. */
function toBody(form, connector, editing) {
  const body = {
    // A wildcard covers the single types under it: send only the wildcard.
    events: form.events.filter((p) => !form.events.some((q) => q !== p && eventMatches(q, p))),
    description: form.description.trim() || null,
    headers: Object.fromEntries(form.headers.filter((h) => h.name.trim()).map((h) => [h.name.trim(), h.value])),
    filter: form.filter.trim() || null,
    mapping: form.mappingMode === 'named' ? form.mappingName || null : form.mappingMode === 'inline' ? form.mappingInline.trim() || null : null,
    retry:
      form.retryMode === 'max'
        ? { max_attempts: Number(form.maxAttempts) }
        : form.retryMode === 'schedule'
          ? { schedule: form.schedule.split(/[,\s]+/).filter(Boolean).map((s) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : s)) }
          : null,
    timeout: numberOrNull(form.timeout),
    rate_limit: numberOrNull(form.rateLimit),
  };
  if (connector?.url !== 'none') body.url = form.url.trim();
  body.connector = form.connector;
  // Sent only when changed: saving other fields must not overwrite why the gateway disabled it.
  if (!editing || form.enabled !== form.initialEnabled) body.enabled = form.enabled;
  if (!editing || form.authTouched) {
    const a = form.auth;
    body.auth =
      form.authType === 'basic' ? { type: 'basic', username: a.username, password: a.password }
      : form.authType === 'bearer' ? { type: 'bearer', token: a.token }
      : form.authType === 'header' ? { type: 'header', name: a.name, value: a.value }
      : null;
  }
  if (!editing || form.optionsTouched) {
    // A patch merges options: one the form no longer has is cleared with null.
    const cleared = editing && form.connector === form.initialConnector ? form.initialOptions.filter((name) => !(name in form.options)) : [];
    body.connector_options = { ...form.options, ...Object.fromEntries(cleared.map((name) => [name, null])) };
  }
  // A new subscription leaves unset fields out, so the gateway's and the connector's defaults apply.
  if (!editing) for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
  // An explicit null turns a connector's default ordering off.
  if (form.orderingMode === 'none') body.ordering = null;
  if (form.orderingMode === 'key') body.ordering = { key: form.orderingKey.trim(), on_failure: form.orderingOnFailure };
  return body;
}

/** Errors by top-level field: `$.events[0]` -> events. */
function errorsByField(error) {
  const map = {};
  for (const d of error?.details ?? []) {
    const field = (d.path ?? '').replace(/^\$\.?/, '').split(/[.[]/)[0] || 'form';
    (map[field] ??= []).push(d);
  }
  return map;
}

function EventsPicker({ value, onChange, errors }) {
  const { eventTypes } = useSession();
  const groups = new Map();
  for (const t of eventTypes) {
    const ns = t.name.split('.')[0];
    if (!groups.has(ns)) groups.set(ns, []);
    groups.get(ns).push(t);
  }
  const has = (p) => value.includes(p);
  const toggle = (pattern, on) => onChange(on ? [...value, pattern] : value.filter((p) => p !== pattern));
  const unknown = value.filter((p) => p !== '*' && !p.endsWith('.*') && !eventTypes.some((t) => t.name === p));
  return html`<fieldset class=${'events-picker' + (errors.length ? ' has-error' : '')} aria-describedby="events-hint">
    <legend>Events</legend>
    <p class="hint" id="events-hint">Pick event types from the catalog, or a whole family with its wildcard.</p>
    <label class="check strong"><input type="checkbox" checked=${has('*')} onChange=${(e) => toggle('*', e.currentTarget.checked)} /> Every event (<code>*</code>)</label>
    <div class="event-groups">
      ${[...groups].map(
        ([ns, types]) => html`<fieldset class="event-group">
          <legend class="mono">${ns}</legend>
          ${types.length > 1 &&
          html`<label class="check"><input type="checkbox" checked=${has(`${ns}.*`)} disabled=${has('*')} onChange=${(e) => toggle(`${ns}.*`, e.currentTarget.checked)} /> All <code>${ns}.*</code></label>`}
          ${types.map((t) => {
            const covered = value.some((p) => p !== t.name && eventMatches(p, t.name));
            return html`<label class="check" title=${t.description}>
              <input type="checkbox" value=${t.name} checked=${has(t.name) || covered} disabled=${covered} onChange=${(e) => toggle(t.name, e.currentTarget.checked)} />
              <span class="mono">${t.name}</span>
            </label>`;
          })}
        </fieldset>`,
      )}
      ${unknown.map((p) => html`<label class="check"><input type="checkbox" checked onChange=${() => toggle(p, false)} /> <span class="mono">${p}</span> <span class="muted">(not in the catalog)</span></label>`)}
    </div>
    ${errors.map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.message}</p>`)}
  </fieldset>`;
}

function HeadersEditor({ rows, onChange, errors }) {
  const set = (i, key, val) => onChange(rows.map((r, j) => (j === i ? { ...r, [key]: val } : r)));
  return html`<fieldset class=${errors.length ? 'has-error' : ''}>
    <legend>Custom headers <span class="muted">(optional)</span></legend>
    ${rows.map(
      (r, i) => html`<div class="row">
        <label for=${`header-name-${i}`} class="sr-only">Header ${i + 1} name</label>
        <input id=${`header-name-${i}`} placeholder="X-Team" value=${r.name} onInput=${(e) => set(i, 'name', e.currentTarget.value)} />
        <label for=${`header-value-${i}`} class="sr-only">Header ${i + 1} value</label>
        <input id=${`header-value-${i}`} placeholder="value" value=${r.value} onInput=${(e) => set(i, 'value', e.currentTarget.value)} />
        <button type="button" onClick=${() => onChange(rows.filter((_, j) => j !== i))} aria-label=${`Remove header ${r.name || i + 1}`}>Remove</button>
      </div>`,
    )}
    <button type="button" onClick=${() => onChange([...rows, { name: '', value: '' }])}>+ Add header</button>
    ${errors.map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.message}</p>`)}
  </fieldset>`;
}

function AuthEditor({ form, update, editing, errors }) {
  const a = form.auth;
  const set = (key) => (e) => update({ auth: { ...a, [key]: e.currentTarget.value }, authTouched: true });
  const keep = editing && !form.authTouched && form.authType !== 'none';
  const secretPlaceholder = keep ? 'unchanged (type to replace)' : '';
  return html`<fieldset class=${errors.length ? 'has-error' : ''}>
    <legend>Authentication <span class="muted">(optional)</span></legend>
    <div class="field">
      <label for="auth-type">Type</label>
      <select id="auth-type" value=${form.authType} onChange=${(e) => update({ authType: e.currentTarget.value, authTouched: true })}>
        <option value="none">None</option>
        <option value="basic">Basic (username and password)</option>
        <option value="bearer">Bearer token</option>
        <option value="header">Custom header</option>
      </select>
    </div>
    ${form.authType === 'basic' &&
    html`<div class="row">
      <${Field} id="auth-username" label="Username"><input id="auth-username" value=${a.username} onInput=${set('username')} autocomplete="off" /><//>
      <${Field} id="auth-password" label="Password"><input id="auth-password" type="password" value=${a.password} placeholder=${secretPlaceholder} onInput=${set('password')} autocomplete="new-password" /><//>
    </div>`}
    ${form.authType === 'bearer' &&
    html`<${Field} id="auth-token" label="Token"><input id="auth-token" type="password" value=${a.token} placeholder=${secretPlaceholder} onInput=${set('token')} autocomplete="off" /><//>`}
    ${form.authType === 'header' &&
    html`<div class="row">
      <${Field} id="auth-name" label="Header name"><input id="auth-name" value=${a.name} onInput=${set('name')} placeholder="X-Api-Key" /><//>
      <${Field} id="auth-value" label="Header value"><input id="auth-value" type="password" value=${a.value} placeholder=${secretPlaceholder} onInput=${set('value')} autocomplete="off" /><//>
    </div>`}
    ${keep && html`<p class="hint">Secrets are never shown again; the current credentials stay unless you change this section.</p>`}
    ${errors.map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.message}</p>`)}
  </fieldset>`;
}

/** Connector options, drawn from the connector's JSON Schema (flat properties). */
function ConnectorOptions({ connector, form, update, editing, errors }) {
  const schema = connector?.options_schema ?? {};
  const props = Object.entries(schema.properties ?? {});
  if (!props.length) return null;
  const required = new Set(schema.required ?? []);
  const secret = new Set(connector.secret_options ?? []);
  const set = (name, value) => update({ options: { ...form.options, [name]: value }, optionsTouched: true });
  return html`<fieldset>
    <legend>${connector.title ?? connector.name} options</legend>
    ${props.map(([name, p]) => {
      const id = `opt-${name}`;
      const value = form.options[name];
      const label = p.title ?? name;
      const hint = [p.description, secret.has(name) ? (editing ? 'Stored encrypted and never shown; re-enter it when you change these options.' : 'Stored encrypted and never shown again.') : ''].filter(Boolean).join(' ');
      const own = errors.filter((e) => e.path === `$.connector_options.${name}` || e.path?.startsWith(`$.connector_options.${name}.`) || e.path?.startsWith(`$.connector_options.${name}[`));
      let input;
      if (p.type === 'boolean') {
        return html`<label class="check"><input id=${id} type="checkbox" checked=${!!value} onChange=${(e) => set(name, e.currentTarget.checked)} /> ${label}</label>`;
      } else if (Array.isArray(p.enum)) {
        input = html`<select id=${id} value=${value ?? ''} onChange=${(e) => set(name, e.currentTarget.value || undefined)}>
          <option value="">${required.has(name) ? 'Choose…' : p.default !== undefined ? `(default: ${p.default})` : '(default)'}</option>
          ${p.enum.map((v) => html`<option value=${v}>${v}</option>`)}
        </select>`;
      } else if (p.type === 'number' || p.type === 'integer') {
        input = html`<input id=${id} type="number" value=${value ?? ''} placeholder=${p.default ?? ''} onInput=${(e) => set(name, e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value))} />`;
      } else if (p.type === 'object' || p.type === 'array') {
        input = html`<textarea id=${id} rows="3" class="mono" value=${value === undefined ? '' : JSON.stringify(value)} onInput=${(e) => {
          try {
            set(name, e.currentTarget.value ? JSON.parse(e.currentTarget.value) : undefined);
          } catch {
            // keep typing: applied once it parses
          }
        }}></textarea>`;
      } else {
        input = html`<input id=${id} type=${secret.has(name) ? 'password' : p.format === 'uri' ? 'url' : 'text'} autocomplete="off" value=${value ?? ''} placeholder=${secret.has(name) && editing ? 'unchanged (re-enter to change options)' : (p.default ?? '')} onInput=${(e) => set(name, e.currentTarget.value || undefined)} />`;
      }
      return html`<${Field} id=${id} label=${label} hint=${hint} optional=${!required.has(name)} errors=${own}>${input}<//>`;
    })}
    ${errors.filter((e) => !props.some(([name]) => e.path?.startsWith(`$.connector_options.${name}`))).map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.message}</p>`)}
  </fieldset>`;
}

/** Ordered delivery per key: none, the connector's default, or a JSONata key and a failure policy. */
function OrderingEditor({ form, update, connector, editing, errors }) {
  const connectorDefault = !editing && connector?.defaults?.ordering;
  const mode = form.orderingMode === 'default' ? (connectorDefault ? 'default' : 'none') : form.orderingMode;
  return html`<fieldset class=${errors.length ? 'has-error' : ''}>
    <legend>Order</legend>
    <p class="hint">Ordered deliveries with the same key go one at a time, in the order their events were accepted; other keys do not wait.</p>
    <div class="radio-row">
      <label class="check"><input type="radio" name="ordering-mode" checked=${mode === 'none'} onChange=${() => update({ orderingMode: 'none' })} /> None: every event on its own</label>
      ${connectorDefault && html`<label class="check"><input type="radio" name="ordering-mode" checked=${mode === 'default'} onChange=${() => update({ orderingMode: 'default' })} /> The connector's default (${connector.title ?? connector.name}: by its dedup key)</label>`}
      <label class="check"><input type="radio" name="ordering-mode" checked=${mode === 'key'} onChange=${() => update({ orderingMode: 'key' })} /> By key</label>
    </div>
    ${mode === 'key' &&
    html`<div class="row">
      <${Field} id="ordering-key" label="Ordering key" hint="A JSONata expression on the event, e.g. data.conversation_id; * for one order across the subscription. An event whose key gives nothing is not ordered.">
        <input id="ordering-key" class="mono" value=${form.orderingKey} onInput=${(e) => update({ orderingKey: e.currentTarget.value })} placeholder="data.conversation_id" />
      <//>
      <${Field} id="ordering-on-failure" label="On a permanent failure">
        <select id="ordering-on-failure" value=${form.orderingOnFailure} onChange=${(e) => update({ orderingOnFailure: e.currentTarget.value })}>
          <option value="continue">Continue: the next delivery of the key goes</option>
          <option value="block">Block the key until the failed one is replayed or skipped</option>
        </select>
      <//>
    </div>`}
    ${errors.map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.line !== undefined ? `line ${e.line}, column ${e.column}: ` : ''}${e.message}</p>`)}
  </fieldset>`;
}

export function SubscriptionForm({ id }) {
  const { canWrite, flashSecret } = useSession();
  const catalog = useFormCatalog();
  const [form, setForm] = useState(id ? null : emptyForm());
  const [loadError, setLoadError] = useState(null);
  const [error, setError] = useState(null);
  const [saving, setSaving] = useState(false);
  const editing = Boolean(id);

  useEffect(() => {
    if (!id || !catalog) return;
    api.get(`/webhooks/${id}`).then((sub) => setForm(formFromSubscription(sub, catalog.mappings)), setLoadError);
  }, [id, catalog]);

  if (loadError) return html`<${ErrorNotice} error=${loadError} />`;
  if (!form || !catalog) return html`<${Loading} />`;

  const update = (patch) => setForm((f) => ({ ...f, ...patch }));
  const connector = catalog.connectors.find((c) => c.name === form.connector);
  const errs = errorsByField(error);
  const input = (key) => (e) => update({ [key]: e.currentTarget.value });
  const marks = (field) => (errs[field] ?? []).filter((d) => d.line !== undefined);

  const submit = async (e) => {
    e.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const body = toBody(form, connector, editing);
      if (editing) {
        await api.patch(`/webhooks/${id}`, body);
        navigate(`/webhooks/${id}`);
      } else {
        const created = await api.post('/webhooks', body);
        flashSecret({ id: created.id, secret: created.signing_secret, warning: created._warning });
        navigate(`/webhooks/${created.id}`);
      }
    } catch (err) {
      setError(err);
      setSaving(false);
      window.scrollTo({ top: 0 });
    }
  };

  return html`<form class="sub-form" onSubmit=${submit} aria-labelledby="form-title" novalidate>
    <p class="crumbs"><a href="#/">Subscriptions</a> <span aria-hidden="true">›</span> ${editing ? html`<a href=${`#/webhooks/${id}`} class="mono">${id}</a>` : 'New'}</p>
    <h1 id="form-title">${editing ? 'Edit subscription' : 'New subscription'}</h1>
    ${!canWrite && html`<${Notice} kind="warning">Read-only key: you can look at this form but not save it.<//>`}
    ${error && html`<${ErrorNotice} error=${error} />`}
    ${catalog.connectorsError && html`<${ErrorNotice} error=${catalog.connectorsError} what="The connector list (GET /api/v1/connectors)" />`}

    <div class="card">
      <h2>Destination</h2>
      <${Field} id="connector" label="Connector" hint=${connector?.description}>
        <select id="connector" value=${form.connector} onChange=${(e) => update({ connector: e.currentTarget.value, options: {}, optionsTouched: true })}>
          ${catalog.connectors.map((c) => html`<option value=${c.name}>${c.title ?? c.name}</option>`)}
        </select>
      <//>
      ${connector?.url !== 'none' &&
      html`<${Field} id="url" label="Endpoint URL" errors=${errs.url ?? []} hint="HTTPS, unless the gateway allows insecure URLs for development.">
        <input id="url" type="url" required value=${form.url} onInput=${input('url')} placeholder="https://example.com/webhooks/sluice" aria-invalid=${errs.url ? 'true' : undefined} />
      <//>`}
      <${ConnectorOptions} connector=${connector} form=${form} update=${update} editing=${editing} errors=${errs.connector_options ?? []} />
      <${Field} id="description" label="Description" optional errors=${errs.description ?? []}>
        <input id="description" value=${form.description} onInput=${input('description')} placeholder="Ops alerts for failed calls" />
      <//>
      <label class="check"><input type="checkbox" checked=${form.enabled} onChange=${(e) => update({ enabled: e.currentTarget.checked })} /> Enabled</label>
    </div>

    <div class="card">
      <h2>What to send</h2>
      <${EventsPicker} value=${form.events} onChange=${(events) => update({ events })} errors=${errs.events ?? []} />
      <${Field} id="filter" label="Filter" optional errors=${errs.filter ?? []} hint="A JSONata predicate on the event; only events where it is true are delivered. Example: data.call.duration > 60 (calls longer than a minute)">
        <${CodeEditor} id="filter" value=${form.filter} onInput=${(filter) => update({ filter })} minRows=${2} marks=${marks('filter')} describedBy="filter-hint" />
      <//>
      <fieldset class=${errs.mapping ? 'has-error' : ''}>
        <legend>Mapping <span class="muted">(optional)</span></legend>
        <div class="radio-row">
          <label class="check"><input type="radio" name="mapping-mode" value="none" checked=${form.mappingMode === 'none'} onChange=${() => update({ mappingMode: 'none' })} /> ${connector?.default_mapping ? `Connector's default (${connector.default_mapping})` : 'None (send the event envelope)'}</label>
          <label class="check"><input type="radio" name="mapping-mode" value="named" checked=${form.mappingMode === 'named'} onChange=${() => update({ mappingMode: 'named' })} /> A template from <code>mappings/</code></label>
          <label class="check"><input type="radio" name="mapping-mode" value="inline" checked=${form.mappingMode === 'inline'} onChange=${() => update({ mappingMode: 'inline' })} /> Inline JSONata</label>
        </div>
        ${form.mappingMode === 'named' &&
        (catalog.mappings
          ? html`<${Field} id="mapping-name" label="Template">
              <select id="mapping-name" value=${form.mappingName} onChange=${input('mappingName')}>
                <option value="">Choose…</option>
                ${catalog.mappings.map((m) => html`<option value=${m.name}>${m.name}${m.error ? ' (broken)' : ''}</option>`)}
              </select>
            <//>`
          : html`<${Field} id="mapping-name" label="Template name" hint="The template list is unavailable; type the name of a file in mappings/ (without .jsonata).">
              <input id="mapping-name" value=${form.mappingName} onInput=${input('mappingName')} />
            <//>`)}
        ${form.mappingMode === 'inline' &&
        html`<div class="field">
          <label for="mapping-inline">Template</label>
          <${CodeEditor} id="mapping-inline" value=${form.mappingInline} onInput=${(mappingInline) => update({ mappingInline })} marks=${marks('mapping')} />
        </div>`}
        ${(errs.mapping ?? []).map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.line !== undefined ? `line ${e.line}, column ${e.column}: ` : ''}${e.message}</p>`)}
        <p class="hint">Try templates against real events in the <a href=${editing ? `#/webhooks/${id}/mapping` : '#/mapping'}>mapping editor</a>.</p>
      </fieldset>
      <${HeadersEditor} rows=${form.headers} onChange=${(headers) => update({ headers })} errors=${errs.headers ?? []} />
      <${AuthEditor} form=${form} update=${update} editing=${editing} errors=${errs.auth ?? []} />
    </div>

    <div class="card">
      <h2>Delivery</h2>
      <fieldset class=${errs.retry ? 'has-error' : ''}>
        <legend>Retries</legend>
        <div class="radio-row">
          <label class="check"><input type="radio" name="retry-mode" checked=${form.retryMode === 'default'} onChange=${() => update({ retryMode: 'default' })} /> Default (10 attempts over about 24 h)</label>
          <label class="check"><input type="radio" name="retry-mode" checked=${form.retryMode === 'max'} onChange=${() => update({ retryMode: 'max' })} /> Number of attempts</label>
          <label class="check"><input type="radio" name="retry-mode" checked=${form.retryMode === 'schedule'} onChange=${() => update({ retryMode: 'schedule' })} /> Custom schedule</label>
        </div>
        ${form.retryMode === 'max' && html`<${Field} id="max-attempts" label="Attempts"><input id="max-attempts" type="number" min="1" value=${form.maxAttempts} onInput=${input('maxAttempts')} /><//>`}
        ${form.retryMode === 'schedule' &&
        html`<${Field} id="schedule" label="Delay before each attempt" hint="Comma-separated; seconds or s/m/h units, e.g. 0s, 30s, 2m, 10m, 1h">
          <input id="schedule" value=${form.schedule} onInput=${input('schedule')} placeholder="0s, 30s, 2m, 10m" class="mono" />
        <//>`}
        ${(errs.retry ?? []).map((e) => html`<p class="field-error"><span aria-hidden="true">✕ </span>${e.path}: ${e.message}</p>`)}
      </fieldset>
      <div class="row">
        <${Field} id="timeout" label="Timeout (seconds)" optional errors=${errs.timeout ?? []}>
          <input id="timeout" type="number" min="1" max="300" value=${form.timeout} onInput=${input('timeout')} placeholder="10" />
        <//>
        <${Field} id="rate-limit" label="Rate limit (deliveries per second)" optional errors=${errs.rate_limit ?? []}>
          <input id="rate-limit" type="number" min="0" step="any" value=${form.rateLimit} onInput=${input('rateLimit')} placeholder=${connector?.defaults?.rate_limit ? `${connector.defaults.rate_limit} (connector default)` : 'no limit'} />
        <//>
      </div>
      <${OrderingEditor} form=${form} update=${update} connector=${connector} editing=${editing} errors=${errs.ordering ?? []} />
    </div>

    ${(errs.form ?? []).length > 0 && html`<${ErrorNotice} error=${{ message: 'Please fix:', details: errs.form }} />`}
    <div class="toolbar">
      <${WriteButton} type="submit" class="primary" disabled=${saving}>${saving ? 'Saving…' : editing ? 'Save changes' : 'Create subscription'}<//>
      <a class="button" href=${editing ? `#/webhooks/${id}` : '#/'}>Cancel</a>
    </div>
  </form>`;
}
