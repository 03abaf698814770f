import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { Router, type Response } from 'express';

const DASHBOARD_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboard');

/** The browser files the dashboard and /docs run on, served from node_modules: no CDN, works offline. */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const sibling = (specifier: string, file: string) => path.join(path.dirname(require.resolve(specifier)), file);
  return {
    'preact.module.js': sibling('preact', 'preact.module.js'),
    'hooks.module.js': sibling('preact/hooks', 'hooks.module.js'),
    'htm.module.js': sibling('htm', 'htm.module.js'),
    // Swagger UI renders /docs from /api/v1/openapi.json.
    'swagger-ui-bundle.js': sibling('swagger-ui-dist/package.json', 'swagger-ui-bundle.js'),
    'swagger-ui.css': sibling('swagger-ui-dist/package.json', 'swagger-ui.css'),
  };
}

/**
 * The page allows scripts from this origin only. The one inline script is the import map
 * (browsers cannot load one from a file), allowed by its exact hash and nothing else.
 */
function contentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${crypto.createHash('sha256').update(m[1]).digest('base64')}'`,
  );
  return [
    "default-src 'none'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(res: Response, csp: string): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

/**
 * Serves the dashboard: `index.html` at `/`, its modules and stylesheet under `/assets/`, and
 * the vendored preact/htm modules under `/assets/vendor/`. There is no build step: what is in
 * src/http/dashboard is what the browser runs. App files are revalidated on every load (cheap
 * 304s, and an upgrade shows at once); vendor files change only with a dependency upgrade.
 */
export function dashboardRouter(): Router {
  const router = Router();
  const html = fs.readFileSync(path.join(DASHBOARD_DIR, 'index.html'), 'utf8');
  const csp = contentSecurityPolicy(html);

  router.get(['/', '/index.html'], (_req, res) => {
    securityHeaders(res, csp);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  });

  // The API reference: its own page, under the same kind of policy (no inline script at all).
  const docsHtml = fs.readFileSync(path.join(DASHBOARD_DIR, 'docs.html'), 'utf8');
  const docsCsp = contentSecurityPolicy(docsHtml);
  router.get('/docs', (_req, res) => {
    securityHeaders(res, docsCsp);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(docsHtml);
  });

  const vendor = vendorFiles();
  router.get('/assets/vendor/:file', (req, res, next) => {
    const name = String(req.params.file);
    const file = Object.hasOwn(vendor, name) ? vendor[name] : undefined;
    if (!file) return next();
    securityHeaders(res, csp);
    const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    res.sendFile(file, { maxAge: '1d', headers: { 'Content-Type': type } });
  });

  router.use(
    '/assets',
    express.static(DASHBOARD_DIR, {
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      fallthrough: true,
      setHeaders: (res) => {
        securityHeaders(res, csp);
        res.setHeader('Cache-Control', 'no-cache');
      },
    }),
  );

  return router;
}
