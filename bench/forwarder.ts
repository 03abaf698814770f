/**
 * The baseline the benchmark compares Sluice with: a bare forwarder that parses the event,
 * signs it with HMAC and forwards it with undici — no storage, no retries, no mapping.
 * FORWARDER_STACK=express parses with express.json like the gateway does (the baseline the
 * ratio target uses); FORWARDER_STACK=raw uses node:http alone, for reference.
 * Run as a child process: FORWARD_TO=<url> PORT=<port> node --import tsx bench/forwarder.ts
 */
import http from 'node:http';
import { createHmac } from 'node:crypto';
import express from 'express';
import { Agent } from 'undici';

const target = new URL(process.env.FORWARD_TO ?? 'http://127.0.0.1:9000/');
const agent = new Agent({ connections: 256, pipelining: 1 });
const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');

async function forward(event: { id?: string }): Promise<void> {
  const body = JSON.stringify(event);
  const signature = 'v1=' + createHmac('sha256', secret).update(body).digest('hex');
  const response = await agent.request({
    origin: target.origin,
    path: target.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-webhook-signature': signature },
    body,
  });
  await response.body.dump();
}

function rawServer(): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        await forward(event);
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: event.id }));
      } catch (err) {
        res.writeHead(400);
        res.end(String(err));
      }
    });
  });
}

function expressServer(): http.Server {
  const app = express();
  app.post('/', express.json({ limit: 1024 * 1024 }), async (req, res) => {
    await forward(req.body);
    res.status(202).json({ id: req.body.id });
  });
  return http.createServer(app);
}

const server = process.env.FORWARDER_STACK === 'raw' ? rawServer() : expressServer();
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
