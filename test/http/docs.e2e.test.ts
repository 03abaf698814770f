import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_KEY, REPO_ROOT, startGateway, type TestGateway } from '../support/gateway.ts';

/** /docs in a real headless Chromium: rendered from the gateway's own document, offline, under its CSP. */

let gateway: TestGateway;
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(path.join(REPO_ROOT, 'test-artifacts/screenshots'), { recursive: true });
  [gateway, browser] = await Promise.all([
    startGateway(),
    launchChromium(),
  ]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
});

describe('/docs', () => {
  it('renders every operation of /api/v1/openapi.json with Swagger UI from node_modules, nothing fetched elsewhere, no CSP violation', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(gateway.url) && !req.url().startsWith('data:')) elsewhere.push(req.url());
    });

    const res = await page.goto(gateway.url + '/docs');
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByRole('heading', { name: /Sluice API/ }).waitFor();
    await page.locator('.opblock').first().waitFor();

    const document = (await gateway.api('GET', '/api/v1/openapi.json', undefined, null)).body;
    const operations = Object.values(document.paths as Record<string, object>).reduce((n, ops) => n + Object.keys(ops).length, 0);
    expect(await page.locator('.opblock').count()).toBe(operations);
    await expect(page.locator('.opblock-summary-path', { hasText: '/api/v1/webhooks/{id}/rotate-secret' }).count()).resolves.toBe(1);

    // Open one operation: its request body schema and error responses are shown.
    await page.locator('#operations-Subscriptions-createSubscription .opblock-summary').click();
    await page.locator('.responses-table').getByText('422', { exact: true }).first().waitFor();
    await page.getByRole('button', { name: 'Authorize' }).waitFor();

    await page.screenshot({ path: path.join(REPO_ROOT, 'test-artifacts/screenshots/docs.png') });

    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    await page.close();
  }, 60_000);

  it('is linked from the dashboard navigation', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(gateway.url + '/');
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API reference' }).click();
    await page.waitForURL(gateway.url + '/docs');
    await page.locator('.opblock').first().waitFor();
    await page.close();
  }, 60_000);
});
