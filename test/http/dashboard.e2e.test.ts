import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { ADMIN_KEY, REPO_ROOT, fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';

/**
 * The dashboard in a real headless Chromium against a real gateway and a loopback receiver:
 * what an ops engineer does in the browser, end to end. Screenshots of the main screens land in
 * test-artifacts/screenshots/ (the README's come from there).
 */

const SCREENSHOTS = path.join(REPO_ROOT, 'test-artifacts/screenshots');
const STEP_MS = 10_000;

let gateway: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  [gateway, receiver, browser] = await Promise.all([
    startGateway(),
    startReceiver(),
    launchChromium(),
  ]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await receiver?.close();
  await gateway?.stop();
});

async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gateway.url });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  // Script errors and CSP violations fail the test: the page must run under its own policy.
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of (4\d\d)/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(gateway.url + '/');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Subscriptions', level: 1 }).waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

/** The delivery log row of one delivery, once it shows `text`. */
const logRow = (page: Page, deliveryId: string, text: string) => page.locator(`tr[data-delivery="${deliveryId}"]`, { hasText: text });

describe('dashboard (Chromium)', () => {
  it('erases an event from the delivery detail, after a confirmation', async () => {
    // A receiver of its own: the other tests count what theirs received.
    const own = await startReceiver();
    const sub = (await gateway.api('POST', '/api/v1/webhooks', { url: `${own.url}/erase`, events: ['call.failed'], description: 'Erasure receiver' })).body;
    const posted = await gateway.api('POST', '/api/v1/events', { ...fixture('call.failed'), id: 'evt_dashboard_erase' });
    const deliveryId: string = posted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.id).id;
    // Delivered before the page opens, so the page shows it at once (it polls a pending one
    // every 3 s); a loaded machine may take a while to deliver, hence the roomy bound.
    await waitFor(async () => (await gateway.api('GET', `/api/v1/deliveries/${deliveryId}`)).body.status === 'delivered', 30_000, 'the delivery to be delivered');
    const { page, problems } = await openPage();
    await signIn(page, ADMIN_KEY);
    await page.goto(`${gateway.url}/#/deliveries/${deliveryId}`);
    await page.locator('.page-head').getByText('Delivered').waitFor();

    // Cancel first: nothing happens.
    await page.getByRole('button', { name: 'Erase event' }).click();
    const dialog = page.getByRole('dialog', { name: 'Erase this event?' });
    await dialog.getByText('evt_dashboard_erase').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // Until it is gone, the dialog's own "Erase event" button matches too.
    await dialog.waitFor({ state: 'hidden' });
    expect((await gateway.api('GET', `/api/v1/deliveries/${deliveryId}`)).status).toBe(200);

    await page.getByRole('button', { name: 'Erase event' }).click();
    await dialog.getByRole('button', { name: 'Erase event' }).click();
    await page.getByRole('heading', { name: 'Event erased' }).waitFor();
    await page.getByText(/with 1 delivery \(0 pending, now cancelled\) and 1 attempt/).waitFor();
    await shot(page, 'event-erased');
    expect((await gateway.api('GET', `/api/v1/deliveries/${deliveryId}`)).status).toBe(404);
    expect(problems).toEqual([]);
    await page.context().close();
    await own.close();
  }, 60_000);

  it('serves the page with a strict Content-Security-Policy and vendored modules', async () => {
    const res = await fetch(gateway.url + '/');
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const vendor = await fetch(gateway.url + '/assets/vendor/preact.module.js');
    expect(vendor.status).toBe(200);
    expect(vendor.headers.get('content-type')).toMatch(/javascript/);
    expect(vendor.headers.get('cache-control')).toMatch(/max-age=86400/);
    // Only the three vendored modules are exposed, not node_modules.
    expect((await fetch(gateway.url + '/assets/vendor/package.json')).status).toBe(404);
  });

  it('creates a subscription, shows its secret once, tests, fails, replays and edits a mapping', async () => {
    const { page, problems } = await openPage();
    await page.goto(gateway.url + '/');
    await page.getByLabel('API key').waitFor();
    await shot(page, 'sign-in');
    await signIn(page, ADMIN_KEY);
    await page.getByText('Admin key').waitFor();

    // Create, with a one-attempt retry schedule so a failure is final at once.
    await page.getByRole('button', { name: '+ New subscription' }).click();
    await page.getByLabel('Endpoint URL').fill(`${receiver.url}/hook`);
    await page.getByLabel('Description').fill('Ops receiver');
    await page.getByLabel('call.ended').check();
    await page.getByLabel('Custom schedule').check();
    await page.getByLabel('Delay before each attempt').fill('0s');
    // The filter example is one that matches real call events (they carry data.call.duration).
    expect(await page.locator('#filter-hint').textContent()).toContain('data.call.duration > 60');
    await shot(page, 'subscription-form');
    await page.getByRole('button', { name: 'Create subscription' }).click();

    // The secret, once, with its warning and a working copy button.
    const secretField = page.getByRole('textbox', { name: 'Signing secret' });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^whsec_/);
    await page.getByText('it is shown only once').waitFor();
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByRole('button', { name: '✓ Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    const subscriptionId = page.url().split('/webhooks/')[1];
    const { body: sub } = await gateway.api('GET', `/api/v1/webhooks/${subscriptionId}`);
    expect(sub.retry).toEqual({ schedule: ['0s'] });
    expect(secret.startsWith(sub.signing_secret_prefix)).toBe(true);

    await page.reload();
    await page.getByRole('heading', { name: 'Ops receiver' }).waitFor();
    expect(await page.getByRole('textbox', { name: 'Signing secret' }).count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    await page.getByText(`${sub.signing_secret_prefix}…`).waitFor();

    // A test send: its result, then its row in the log with the response code.
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByRole('status').filter({ hasText: 'Test call.ended' }).getByText('HTTP 200').waitFor();
    const { body: afterTest } = await gateway.api('GET', `/api/v1/webhooks/${subscriptionId}/deliveries`);
    const testDelivery = afterTest.data[0].id;
    await logRow(page, testDelivery, 'HTTP 200').getByText('Delivered').waitFor();
    expect(receiver.requests).toHaveLength(1);

    // The receiver breaks; a real event fails on its single attempt and shows as failed.
    receiver.respondWith(() => ({ status: 500, body: 'receiver is down' }));
    const posted = await gateway.api('POST', '/api/v1/events', { ...fixture('call.ended'), id: 'evt_dashboard_e2e_1' });
    expect(posted.status).toBe(202);
    const failedId: string = posted.body.deliveries[0].id;
    await logRow(page, failedId, 'HTTP 500').getByText('Failed').waitFor();
    await shot(page, 'subscription-detail');

    // The detail shows the attempt as sent and received; the receiver recovers; replay.
    await logRow(page, failedId, 'Failed').getByRole('link', { name: `Details of ${failedId}` }).click();
    await page.getByRole('heading', { name: 'Attempt 1' }).waitFor();
    await page.getByText('receiver is down').waitFor();
    await page.getByText('Body as sent').waitFor();
    receiver.respondWith(() => ({ status: 200, body: 'back again' }));
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await page.getByText('back again').waitFor();
    await page.locator('.page-head').getByText('Delivered').waitFor();
    await shot(page, 'delivery-detail');
    const { body: replayed } = await gateway.api('GET', `/api/v1/deliveries/${failedId}`);
    expect(replayed.status).toBe('delivered');
    expect(replayed.attempts.map((a: { response: { status: number } }) => a.response.status)).toEqual([500, 200]);

    await page.goBack();
    await logRow(page, failedId, 'HTTP 200').getByText('Delivered').waitFor();

    // Health at a glance, and the log across all subscriptions with its filters.
    await page.getByRole('link', { name: 'Subscriptions' }).first().click();
    await page.getByRole('row', { name: /Ops receiver/ }).getByText('100%').waitFor();
    await shot(page, 'subscriptions');
    await page.getByRole('link', { name: 'Delivery log' }).click();
    // Rows name the subscription by its description, with the id on hover.
    const subLink = logRow(page, failedId, 'HTTP 200').getByRole('link', { name: 'Ops receiver' });
    await subLink.waitFor();
    expect(await subLink.getAttribute('title')).toBe(subscriptionId);
    await page.getByLabel('Status').selectOption('failed');
    await page.getByText('No deliveries match these filters.').waitFor();
    await page.getByLabel('Status').selectOption('delivered');
    await logRow(page, testDelivery, 'Delivered').waitFor();
    await page.goto(`${gateway.url}/#/webhooks/${subscriptionId}`);

    // The mapping editor: a real recent event, live output, then a compile error at its position.
    await page.getByRole('group', { name: 'Subscription actions' }).getByRole('link', { name: 'Mapping editor' }).click();
    await page.getByRole('heading', { name: 'Mapping editor' }).waitFor();
    const eventEditor = page.getByLabel('Event (JSON)');
    await page.waitForFunction(() => (document.getElementById('event-editor') as HTMLTextAreaElement | null)?.value.includes('"call.ended"'));
    expect(await eventEditor.inputValue()).toContain('call_abc123');
    const template = page.getByLabel('JSONata template');
    const output = page.locator('#preview-output');
    await template.fill('{ "kind": event, "call": data.call.id }');
    await output.filter({ hasText: '"kind": "call.ended"' }).waitFor();
    await template.fill('{\n  "summary": "Call " & data.call.id & " lasted " & data.call.duration & " s",\n  "direction": data.call.direction,\n  "agent": data.assistant.name\n}');
    await output.filter({ hasText: 'Call call_abc123 lasted 180 s' }).waitFor();
    expect(await page.getByLabel('Filter').getAttribute('placeholder')).toBe('data.call.duration > 60');
    await page.getByLabel('Filter').fill('data.call.duration > 60');
    await page.getByText('Filter matches: this event would be delivered.').waitFor();
    await shot(page, 'mapping-preview');
    await page.getByLabel('Filter').fill('data.call.duration > 600');
    await page.getByText('Filter does not match: this event would be skipped.').waitFor();
    await template.fill('{\n  "kind": event,\n  "call": data.call.id +\n}');
    const errors = page.locator('#template-errors');
    await errors.getByText('Line 4, column 1').waitFor();
    expect(await template.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.code-backdrop mark').first().textContent()).toBe('}');
    expect(await page.locator('.gutter-error').first().textContent()).toContain('4');
    await shot(page, 'mapping-editor');

    // Fix it, save it to the subscription and send a test through it.
    await template.fill('{ "text": "Call " & data.call.id & " ended", "test": test }');
    await output.filter({ hasText: 'Call call_abc123 ended' }).waitFor();
    await page.getByLabel('Filter').fill('');
    // "Send test" goes through the saved subscription: the page says so while the draft differs.
    const sendTest = page.getByRole('button', { name: 'Send test with saved template' });
    expect(await sendTest.getAttribute('aria-describedby')).toBe('send-test-hint');
    await page.locator('#send-test-hint').getByText('Unsaved changes are not sent').waitFor();
    await page.getByRole('button', { name: 'Save to subscription' }).click();
    await page.getByText('Saved: new deliveries use this template and filter.').waitFor();
    await page.locator('#send-test-hint', { hasText: 'through the subscription as saved' }).waitFor();
    await sendTest.click();
    await page.getByRole('status').filter({ hasText: 'Test call.ended' }).getByText('HTTP 200').waitFor();
    expect(JSON.parse(receiver.requests.at(-1)!.body)).toEqual({ text: 'Call call_abc123 ended', test: true });

    // Edit keeps what it does not show (the saved mapping); rotate shows a new secret once.
    await page.goto(`${gateway.url}/#/webhooks/${subscriptionId}`);
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Description').fill('Ops receiver (edited)');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'Ops receiver (edited)' }).waitFor();
    const { body: edited } = await gateway.api('GET', `/api/v1/webhooks/${subscriptionId}`);
    expect(edited).toMatchObject({ description: 'Ops receiver (edited)', mapping: '{ "text": "Call " & data.call.id & " ended", "test": test }', retry: { schedule: ['0s'] }, enabled: true });
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('dialog', { name: 'Rotate the signing secret?' }).getByRole('button', { name: 'Rotate secret' }).click();
    const rotated = await secretField.inputValue();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    expect(await secretField.count()).toBe(0);

    // Delete, with confirmation.
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog', { name: 'Delete this subscription?' }).getByRole('button', { name: 'Delete subscription' }).click();
    await page.getByRole('heading', { name: 'Subscriptions', level: 1 }).waitFor();
    expect((await gateway.api('GET', `/api/v1/webhooks/${subscriptionId}`)).status).toBe(404);

    expect(problems).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('fits the subscriptions list on a phone-width screen', async () => {
    await gateway.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/a-rather-long-path/for/the/phone/test`, events: ['call.ended', 'call.started', 'signal.*'], description: 'Seen on a phone' });
    const context = await browser.newContext({ viewport: { width: 375, height: 740 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    await page.goto(gateway.url + '/');
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const row = page.getByRole('row', { name: /Seen on a phone/ });
    await row.waitFor();
    for (const cell of await row.locator('td').all()) {
      const box = (await cell.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, await cell.textContent() ?? '').toBeLessThanOrEqual(375);
    }
    await row.getByText('signal.*').waitFor();
    expect(await page.evaluate(() => document.querySelector('.table-wrap')!.scrollWidth <= document.querySelector('.table-wrap')!.clientWidth)).toBe(true);
    await shot(page, 'subscriptions-phone');
    await context.close();
  }, 60_000);

  it('disables every write control for a read key, and says why', async () => {
    const { body: created } = await gateway.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/read`, events: ['call.*'], description: 'Seen by a read key' });
    const { body: readKey } = await gateway.api('POST', '/api/v1/keys', { role: 'read', name: 'dashboard e2e' });
    const { page, problems } = await openPage();
    await signIn(page, readKey.key);
    await page.getByText('Read-only key').waitFor();
    await page.locator('#readonly-note').getByText('need an admin key').waitFor();
    const newButton = page.getByRole('button', { name: '+ New subscription' });
    expect(await newButton.isDisabled()).toBe(true);
    expect(await newButton.getAttribute('aria-describedby')).toBe('readonly-note');
    await shot(page, 'read-only-list');

    await page.getByRole('link', { name: 'Seen by a read key' }).click();
    await page.getByRole('heading', { name: 'Seen by a read key' }).waitFor();
    for (const name of ['Send test event', 'Edit', 'Disable', 'Rotate secret', 'Delete', 'Replay']) {
      expect(await page.getByRole('button', { name, exact: true }).isDisabled(), name).toBe(true);
    }
    // Reading still works: the log and the mapping editor open.
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    await page.getByRole('group', { name: 'Subscription actions' }).getByRole('link', { name: 'Mapping editor' }).click();
    await page.getByRole('heading', { name: 'Mapping editor' }).waitFor();
    expect(await page.getByRole('button', { name: 'Save to subscription' }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Send test with saved template' }).isDisabled()).toBe(true);
    expect(created.id).toMatch(/^sub_/);

    expect(problems).toEqual([]);
    await page.context().close();
  }, 60_000);

  // Last: it leaves a failed delivery behind, which the delivery log filters above must not see.
  it('shows ordered deliveries: the key, what a waiting one waits for, the blocked keys, and Skip', async () => {
    // A receiver of its own: the first request fails for good, the rest go through.
    const own = await startReceiver((_req, index) => ({ status: index === 0 ? 422 : 200 }));
    const { body: sub } = await gateway.api('POST', '/api/v1/webhooks', {
      url: `${own.url}/ordered`, events: ['signal.frustration_spike'], description: 'Ordered receiver', retry: { schedule: ['0s'] },
      ordering: { key: 'data.conversation_id', on_failure: 'block' },
    });
    const signal = (n: number) => ({ ...fixture('signal.frustration_spike'), id: `evt_dashboard_ordered_${n}`, data: { ...fixture('signal.frustration_spike').data, conversation_id: 'conv_dash' } });
    const first = (await gateway.api('POST', '/api/v1/events', signal(1))).body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.id).id;
    await waitFor(async () => (await gateway.api('GET', `/api/v1/deliveries/${first}`)).body.blocks_key === true, 10_000, 'the first delivery to block its key');
    const second = (await gateway.api('POST', '/api/v1/events', signal(2))).body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.id).id;

    const { page, problems } = await openPage();
    await signIn(page, ADMIN_KEY);
    await page.goto(`${gateway.url}/#/webhooks/${sub.id}`);
    await page.getByText('one at a time per key').waitFor();
    const blocked = page.locator('tr[data-blocked-key="conv_dash"]');
    await blocked.getByRole('link', { name: first }).waitFor();
    expect(await blocked.locator('td').nth(2).textContent()).toBe('1');
    const waiting = logRow(page, second, 'conv_dash');
    await waiting.getByText('waits for').waitFor();
    await waiting.getByRole('link', { name: first }).waitFor();
    await logRow(page, first, 'blocks its key').waitFor();
    await shot(page, 'blocked-keys');

    await blocked.getByRole('button', { name: `Skip ${first}` }).click();
    await page.getByText('goes on without').waitFor();
    await logRow(page, second, 'Delivered').waitFor();
    await page.getByText('No key is blocked.').waitFor();
    expect(own.requests).toHaveLength(2);
    expect((await gateway.api('GET', `/api/v1/deliveries/${first}`)).body).toMatchObject({ status: 'failed', blocks_key: false });

    // The form shows the ordering, and saving it unchanged keeps it.
    await page.getByRole('button', { name: 'Edit' }).click();
    expect(await page.getByLabel('By key').isChecked()).toBe(true);
    expect(await page.getByLabel('Ordering key').inputValue()).toBe('data.conversation_id');
    expect(await page.getByLabel('On a permanent failure').inputValue()).toBe('block');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'Ordered receiver' }).waitFor();
    expect((await gateway.api('GET', `/api/v1/webhooks/${sub.id}`)).body.ordering).toEqual({ key: 'data.conversation_id', on_failure: 'block' });
    expect(problems).toEqual([]);
    await page.context().close();
    await own.close();
  }, 60_000);
});
