import { startGateway, fixture } from './test/support/gateway.ts';
import { startReceiver } from './test/support/receiver.ts';
const gw = await startGateway();
const rx = await startReceiver();
const ev = fixture('call.ended');
const variants: [string, Record<string, unknown>][] = [
  ['unordered', {}],
  ['ordered', { ordering: { key: 'data.call.id' } }],
  ['unordered', {}],
  ['ordered', { ordering: { key: 'data.call.id' } }],
];
for (const [name, extra] of variants) {
  rx.requests.length = 0;
  const sub = (await gw.api('POST', '/api/v1/webhooks', { url: `${rx.url}/${name}`, events: ['call.ended'], ...extra })).body;
  const n = 3000;
  const t0 = Date.now();
  let seq = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (seq < n) {
      const i = seq++;
      const r = await gw.api('POST', '/api/v1/events', { event: ev.event, id: `evt_b_${i}_${Date.now()}_${name}`, data: { ...ev.data, call: { ...ev.data.call, id: `call_${i % 100}` } } });
      if (r.status !== 202) throw new Error(JSON.stringify(r.body));
    }
  }));
  const t1 = Date.now();
  while (rx.requests.length < n) await new Promise((r) => setTimeout(r, 5));
  console.log(name, 'ingest', t1 - t0, 'ms; all delivered after', Date.now() - t0, 'ms');
  await gw.api('DELETE', `/api/v1/webhooks/${sub.id}`);
}
await gw.stop(); await rx.close();
