import http from 'node:http';
import { verifySimpleSignature, verifyStandardSignature } from './core/signing.ts';

export interface DevReceiverOptions {
  host: string;
  port: number;
  secret?: string;
  /** Status to answer with (to try retries, answer 500). */
  status: number;
  out: (line: string) => void;
}

/**
 * `sluice receive`: a local receiver for trying Sluice out. Prints each webhook and, given the
 * signing secret, whether both signature schemes verify.
 */
export function startDevReceiver(opts: DevReceiverOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const h = (name: string) => (req.headers[name] as string | undefined) ?? null;
      opts.out(`\n${new Date().toISOString()}  ${req.method} ${req.url}  event=${h('x-webhook-event')}  webhook-id=${h('webhook-id')}`);
      if (opts.secret) {
        const standard = verifyStandardSignature(body, opts.secret, { id: h('webhook-id'), timestamp: h('webhook-timestamp'), signature: h('webhook-signature') }, Math.floor(Date.now() / 1000));
        const simple = verifySimpleSignature(body, opts.secret, h('x-webhook-signature'));
        opts.out(`  webhook-signature (Standard Webhooks): ${standard.ok ? 'valid' : `INVALID (${standard.reason})`}`);
        opts.out(`  X-Webhook-Signature (hex HMAC):        ${simple ? 'valid' : 'INVALID'}`);
      }
      try {
        opts.out(JSON.stringify(JSON.parse(body), null, 2).split('\n').map((l) => '  ' + l).join('\n'));
      } catch {
        opts.out('  ' + body);
      }
      res.writeHead(opts.status, { 'content-type': 'text/plain' });
      res.end(opts.status < 300 ? 'ok' : 'failing on purpose');
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      opts.out(`listening on http://${opts.host}:${opts.port}/ — answering ${opts.status}`);
      resolve(server);
    });
  });
}
