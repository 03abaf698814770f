// The dashboard's root: sign-in, the session (key, role, catalog), the layout and the routes.
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, session } from './api.js';
import { useRoute } from './hooks.js';
import { Session, Loading, Notice } from './components/ui.js';
import { SignIn, detectRole } from './components/sign-in.js';
import { SubscriptionsList } from './components/subscriptions-list.js';
import { SubscriptionDetail } from './components/subscription-detail.js';
import { SubscriptionForm } from './components/subscription-form.js';
import { DeliveriesPage } from './components/delivery-log.js';
import { DeliveryDetail } from './components/delivery-detail.js';
import { MappingEditor } from './components/mapping-editor.js';

function Screen({ route }) {
  const { path, params } = route;
  let m;
  if (path === '/' || path === '/webhooks') return html`<${SubscriptionsList} />`;
  if (path === '/webhooks/new') return html`<${SubscriptionForm} />`;
  if ((m = path.match(/^\/webhooks\/([^/]+)\/edit$/))) return html`<${SubscriptionForm} key=${m[1]} id=${m[1]} />`;
  if ((m = path.match(/^\/webhooks\/([^/]+)\/mapping$/))) return html`<${MappingEditor} key=${m[1] + (params.get('delivery') ?? '')} subscriptionId=${m[1]} deliveryId=${params.get('delivery')} />`;
  if ((m = path.match(/^\/webhooks\/([^/]+)$/))) return html`<${SubscriptionDetail} key=${m[1]} id=${m[1]} />`;
  if (path === '/deliveries') return html`<${DeliveriesPage} />`;
  if ((m = path.match(/^\/deliveries\/([^/]+)$/))) return html`<${DeliveryDetail} key=${m[1]} id=${m[1]} />`;
  if (path === '/mapping') return html`<${MappingEditor} key="scratch" deliveryId=${params.get('delivery')} />`;
  return html`<${Notice} kind="warning">There is no page at <code>${path}</code>. <a href="#/">Back to subscriptions</a><//>`;
}

/** Which top-level section a path belongs to, for aria-current in the navigation. */
function section(path) {
  if (path === '/mapping' || path.endsWith('/mapping')) return '#/mapping';
  if (path.startsWith('/deliveries')) return '#/deliveries';
  return '#/';
}

function NavLink({ href, current, children }) {
  const active = section(current) === href;
  return html`<a href=${href} aria-current=${active ? 'page' : undefined}>${children}</a>`;
}

function Shell({ role, onSignOut }) {
  const route = useRoute();
  const [eventTypes, setEventTypes] = useState([]);
  const [secret, setSecret] = useState(null);
  useEffect(() => {
    api.get('/event-types').then((r) => setEventTypes(r.data ?? []), () => setEventTypes([]));
  }, []);
  // Leaving the page where a secret was shown forgets it: it is shown once.
  useEffect(() => {
    if (secret && route.path !== `/webhooks/${secret.id}`) setSecret(null);
  }, [route.path]);
  const value = useMemo(() => ({ role, canWrite: role === 'admin', eventTypes, secret, flashSecret: setSecret }), [role, eventTypes, secret]);
  return html`<${Session.Provider} value=${value}>
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="topbar">
      <a class="brand" href="#/"><span class="brand-mark" aria-hidden="true">≋</span> Sluice</a>
      <nav aria-label="Main">
        <${NavLink} href="#/" current=${route.path}>Subscriptions<//>
        <${NavLink} href="#/deliveries" current=${route.path}>Delivery log<//>
        <${NavLink} href="#/mapping" current=${route.path}>Mapping editor<//>
        <a href="/docs">API reference</a>
      </nav>
      <div class="who">
        <span class=${'badge role-' + role}>${role === 'admin' ? 'Admin key' : 'Read-only key'}</span>
        <button type="button" class="link" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    ${role !== 'admin' &&
    html`<p class="readonly-note" id="readonly-note" role="note">
      <strong>Read-only:</strong> you signed in with a read key. You can look at everything, but changes (create, edit, replay, test sends) need an admin key, so those controls are disabled.
    </p>`}
    <main id="main" tabindex="-1">
      <${Screen} route=${route} />
    </main>
  <//>`;
}

function App() {
  const [state, setState] = useState(() => (session.key ? { phase: 'checking' } : { phase: 'signed-out' }));
  useEffect(() => {
    if (state.phase !== 'checking') return;
    detectRole(session.key).then(
      (role) => setState({ phase: 'signed-in', role }),
      (err) => {
        session.clear();
        setState({ phase: 'signed-out', reason: err.message });
      },
    );
  }, [state.phase]);
  useEffect(() => {
    const onUnauthorized = () => {
      session.clear();
      setState({ phase: 'signed-out', reason: 'Your API key is no longer accepted; sign in again.' });
    };
    window.addEventListener('sluice:unauthorized', onUnauthorized);
    return () => window.removeEventListener('sluice:unauthorized', onUnauthorized);
  }, []);

  if (state.phase === 'checking') return html`<main id="main"><${Loading} what="Checking your key" /></main>`;
  if (state.phase === 'signed-out') {
    return html`<${SignIn}
      reason=${state.reason}
      onSignedIn=${(key, role) => {
        session.set(key);
        setState({ phase: 'signed-in', role });
      }}
    />`;
  }
  return html`<${Shell}
    role=${state.role}
    onSignOut=${() => {
      session.clear();
      setState({ phase: 'signed-out' });
    }}
  />`;
}

render(html`<${App} />`, document.getElementById('app'));
