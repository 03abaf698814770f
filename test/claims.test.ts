import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/gateway.ts';

/**
 * The README is the public contract. Each guarantee it states is listed here with the README
 * words that state it and the tests that defend it: every test exercises the real gateway
 * wiring (real HTTP, real SQLite, the gateway's own resolver/logger/worker), and for each
 * mechanism named in `removal`, taking it out was tried and made that test fail.
 *
 * This file fails when a claim disappears from the README without its entry being updated, or
 * when a defending test is renamed, moved or deleted: a guarantee cannot silently lose its test.
 */

interface Defence {
  file: string;
  /** The exact `it(...)` title (or a prefix of an `it.each` title template). */
  test: string;
}

interface Claim {
  guarantee: string;
  /** Words the README uses to state it (the claim is checked to still be there). */
  readme: string;
  defended: Defence[];
  /** The mechanism whose removal was tried, and caught by the tests above. */
  removal?: string;
}

const CLAIMS: Claim[] = [
  {
    guarantee: 'durability of a 202: the event and its deliveries are fsynced before the answer',
    readme: 'A 202 means the event is on disk with its pending deliveries',
    defended: [
      { file: 'test/storage/durability.e2e.test.ts', test: 'ingest, API writes and replays commit with FULL, before and after the worker claimed and recorded attempts' },
      { file: 'test/storage/sqlite-storage.test.ts', test: 'opens the database in WAL mode with full fsync' },
      { file: 'test/delivery/crash.e2e.test.ts', test: 'loses no accepted event when killed with SIGKILL mid-delivery and restarted' },
      { file: 'test/storage/conformance.test.ts', test: 'commits every write that answers a caller with synchronous_commit on, and the worker\'s own writes without' },
      { file: 'test/storage/postgres-durability.e2e.test.ts', test: 'ingest, API writes and replays commit with synchronous_commit on; the worker\'s claims and attempt records without' },
    ],
    removal: 'synchronous=FULL not restored after the worker\'s relaxed commits; NORMAL at open; on PostgreSQL, a write answered to a caller committed without SET LOCAL synchronous_commit = on',
  },
  {
    guarantee: 'group commit: requests arriving together share one transaction; one bad request does not fail its neighbours',
    readme: 'Requests arriving together share one',
    defended: [
      { file: 'test/services/group-commit.test.ts', test: 'ten requests in one turn are committed in one transaction, each answered with its own event' },
      { file: 'test/services/group-commit.test.ts', test: 'one request with a conflicting event id fails alone; its neighbours in the same turn are stored' },
      { file: 'test/services/group-commit.test.ts', test: 'one bad caller does not fail its neighbours: the group is retried caller by caller' },
    ],
    removal: 'every submit flushed alone; a failed group rejecting every caller',
  },
  {
    guarantee: 'at least once across kill -9; leases reclaimed on start and while running',
    readme: 'a crash or `kill -9` at any moment loses nothing',
    defended: [
      { file: 'test/delivery/crash.e2e.test.ts', test: 'loses no accepted event when killed with SIGKILL mid-delivery and restarted' },
      { file: 'test/delivery/lease.e2e.test.ts', test: 'are reclaimed while running: a delivery whose completion was lost is retried within a lease period' },
      { file: 'test/delivery/lease.e2e.test.ts', test: 'are renewed for an attempt that takes longer than a lease: it is not sent twice' },
      { file: 'test/delivery/crash-loop.e2e.test.ts', test: 'is failed with the reason after three deaths, not claimed forever (kill -9 during its template)' },
    ],
    removal: 'the running lease sweep not reclaiming expired leases',
  },
  {
    guarantee: 'SSRF guard on every connect (DNS rebinding), in the gateway\'s own wiring',
    readme: 'ssrf-lookup (guarded DNS + connect)',
    defended: [
      { file: 'test/delivery/ssrf-wiring.e2e.test.ts', test: 'a name that resolved to a public address when saved, then rebinds to loopback, is refused at connect time: no connection, failed at once, reason recorded' },
      { file: 'test/delivery/ssrf-wiring.e2e.test.ts', test: 'a name resolving to a private address is refused when saved, through the same resolver' },
      { file: 'test/delivery/ssrf-wiring.e2e.test.ts', test: 'still refuses a name that rebinds to the cloud metadata address at connect time' },
      { file: 'test/delivery/ssrf.e2e.test.ts', test: 'a redirect to a private address is never followed: the attempt fails with the 302 recorded' },
    ],
    removal: 'the guarded connector removed from the HTTP client; wired with allowInsecure: true',
  },
  {
    guarantee: 'rate limit: delayed, never dropped',
    readme: 'enforced by delaying, never dropping',
    defended: [
      { file: 'test/delivery/rate-limit.e2e.test.ts', test: 'spaces deliveries by 1/rate and delivers every one (delayed, never dropped)' },
      { file: 'test/delivery/rate-limit.e2e.test.ts', test: 'paces each subscription on its own: a slow one does not hold back another' },
    ],
  },
  {
    guarantee: 'per-destination concurrency: waiting attempts take a handed-over slot; other origins are not held back',
    readme: 'attempts in flight at once per destination origin',
    defended: [{ file: 'test/delivery/destination-concurrency.e2e.test.ts', test: 'one attempt at a time to a busy origin; the rest wait for the slot, and another origin is not held back' }],
    removal: 'the worker granting every destination slot',
  },
  {
    guarantee: 'retries with backoff, honouring Retry-After; other 4xx fail at once',
    readme: 'honouring `Retry-After`',
    defended: [
      { file: 'test/delivery/retry.e2e.test.ts', test: 'is honoured over a shorter schedule' },
      { file: 'test/delivery/retry.e2e.test.ts', test: 'as an HTTP date, also delays the next attempt' },
      { file: 'test/delivery/retry.e2e.test.ts', test: '%i is retried, then delivered once the receiver answers 200' },
      { file: 'test/delivery/retry.e2e.test.ts', test: '%i fails at once, with one attempt' },
    ],
    removal: 'the worker ignoring the Retry-After delay',
  },
  {
    guarantee: '410 Gone disables the subscription',
    readme: '410 Gone disables the subscription',
    defended: [{ file: 'test/delivery/retry.e2e.test.ts', test: 'disables the subscription; later events create no deliveries for it; sluice.webhook.disabled is emitted' }],
  },
  {
    guarantee: 'isolation of templates: a template cannot stall or crash the gateway',
    readme: 'running as its own process',
    defended: [
      { file: 'test/services/evaluation-isolation.e2e.test.ts', test: 'a subscription whose template builds a huge string fails its delivery, once, with the reason' },
      { file: 'test/services/evaluation-isolation.e2e.test.ts', test: 'a filter that runs into its limit does not match, and does not hold up ingest' },
      { file: 'test/services/evaluation-isolation.e2e.test.ts', test: 'a template of the bounded (inline) kind meeting an event too big for it is sent to an evaluator, not run on the event loop' },
    ],
    removal: 'the inline budget check (paths × event size) before a bounded template runs in the gateway',
  },
  {
    guarantee: 'delivery on its own thread: what either thread changes, the other sees before its next step',
    readme: 'Delivery runs on a thread of its own',
    defended: [
      { file: 'test/delivery/delivery-thread.e2e.test.ts', test: 'sends to where a subscription was changed to, right after the change (the delivery thread reads it again)' },
      { file: 'test/delivery/delivery-thread.e2e.test.ts', test: 'records the operational events the worker raises, and a disable there stops fan-out here at once' },
      { file: 'test/delivery/delivery-thread.e2e.test.ts', test: 'delivers what ingest commits, signed, and /metrics counts the attempts and the thread\'s storage calls' },
    ],
    removal: 'the message telling the delivery thread of a subscription written through the API; the one telling the HTTP thread of a subscription the worker disabled',
  },
  {
    guarantee: 'secrets are never logged',
    readme: 'secrets are never logged',
    defended: [
      { file: 'test/secrets-in-logs.test.ts', test: 'auth, signing secrets, a secret URL, API keys and an internal error: the log has the events, never the secrets' },
      { file: 'test/secrets-in-logs.test.ts', test: 'blanks secret-named fields wherever the gateway might pass them' },
    ],
    removal: 'the logger\'s redact paths; the scrub of verdict reasons (logged when a subscription is disabled)',
  },
  {
    guarantee: 'secrets never come back in responses or the delivery log (scrubbed from requests, responses and errors)',
    readme: 'scrubs every secret of the subscription from requests, responses, errors',
    defended: [
      { file: 'test/delivery/secret-leaks.e2e.test.ts', test: 'basic auth echoed by a receiver: neither the password nor base64(user:password) is stored' },
      { file: 'test/delivery/secret-leaks.e2e.test.ts', test: 'a Slack webhook URL answered 404 "Cannot POST <path>": the path is scrubbed from the log, last_error and sluice.delivery.failed' },
      { file: 'test/delivery/dispatch-scrub.test.ts', test: 'a bearer token and a secret header echoed in a connection error are masked in attempt.error and the verdict' },
      { file: 'test/delivery/dispatch-scrub.test.ts', test: 'a Slack webhook URL (itself the credential) quoted by a connection error is masked' },
    ],
    removal: 'the scrub of transport error texts (attempt.error)',
  },
  {
    guarantee: 'role boundaries: ingest, read, admin; wrong role 403, no key 401 before the body is read',
    readme: 'unknown key is 401',
    defended: [
      { file: 'test/http/auth.test.ts', test: 'authenticates before validating: an invalid event without a key is 401, not 422' },
      { file: 'test/http/auth.test.ts', test: 'an ingest key posts events' },
      { file: 'test/http/auth.test.ts', test: 'a read key lists and inspects' },
    ],
  },
  {
    guarantee: 'a key revoked from the CLI stops working within 5 seconds while the gateway runs',
    readme: 'while the gateway runs stops working within 5 seconds',
    defended: [
      { file: 'test/services/api-keys.e2e.test.ts', test: 'stops working within 5 s (the verified-key cache), with no restart: gateway clock driven by the test' },
      { file: 'test/services/api-keys.e2e.test.ts', test: 'stops working on a gateway process, in real time, without a restart' },
    ],
    removal: 'the verified-key cache kept for 60 s',
  },
  {
    guarantee: '`sluice receive` prints deliveries and checks both signatures',
    readme: 'npx sluice receive --port 9000 --secret',
    defended: [
      { file: 'test/dev-receiver.e2e.test.ts', test: 'prints a delivery and reports both signatures valid with the subscription secret' },
      { file: 'test/dev-receiver.e2e.test.ts', test: 'reports INVALID for a wrong secret and for a forged request' },
    ],
    removal: 'the receiver reporting every signature valid',
  },
  {
    guarantee: 'retention: finished work is pruned after its retention, pending work never; the database levels off',
    readme: 'Nothing has to be cleaned by hand',
    defended: [
      { file: 'test/storage/retention.test.ts', test: 'deletes finished deliveries past retention with their attempts, failed ones past dead-letter retention, and events left bare' },
      { file: 'test/storage/retention.test.ts', test: 'levels the database off under a steady load once retention is reached (freed pages are reused)' },
      { file: 'test/cli/lifecycle-cli.test.ts', test: 'the background pruner deletes delivered work past a short retention, warns about it at start, and counts it in the metrics' },
      { file: 'test/storage/conformance.test.ts', test: 'prune finished deliveries past their cutoffs with their attempts and bare events, never pending work' },
    ],
  },
  {
    guarantee: 'ordered delivery per key: one delivery of a key at a time, in acceptance order, across retries, kill -9 and instances; other keys in parallel',
    readme: 'are attempted strictly in the order their events were accepted',
    defended: [
      { file: 'test/delivery/ordering.e2e.test.ts', test: 'keeps the order of a key across retries: 500 then 200 on the first of three, and the receiver sees 1, 2, 3' },
      { file: 'test/delivery/ordering.e2e.test.ts', test: 'runs different keys in parallel: a key held by a slow destination holds up only itself' },
      { file: 'test/delivery/ordering.e2e.test.ts', test: 'on_failure block: the key stops, is listed with its failed delivery, goes on after a replay in place or a skip' },
      { file: 'test/delivery/ordering-processes.e2e.test.ts', test: 'keeps each key in order across kill -9 and a restart (SQLite)' },
      {
        file: 'test/delivery/ordering-processes.e2e.test.ts',
        test: 'two PostgreSQL instances never have two deliveries of one key in flight, keep each key in order, and a killed one\'s lease holds its key until it is taken back',
      },
      { file: 'test/storage/postgres-instances.test.ts', test: 'an event of a key committed after a later-numbered one already went out waits for it (instances accepting one key at once)' },
      { file: 'test/connectors/pagerduty.contract.test.ts', test: 'ends the trigger (503, then retried) -> resolve sequence with no open incident: the resolve waits for its trigger' },
    ],
    removal: 'the claim\'s ordering check (mayStart always true: five of these fail); the in-flight check for instances accepting one key at once',
  },
];

const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
const source = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** Test titles as written in a file: it('…'), it.each(...)('…'), with ' " or ` quotes. */
function titlesIn(file: string): string[] {
  const titles: string[] = [];
  for (const m of source(file).matchAll(/\bit(?:\.each\([\s\S]*?\))?\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)) titles.push(m[2].replace(/\\(['"`])/g, '$1'));
  return titles;
}

describe('README guarantees and the tests that defend them', () => {
  it.each(CLAIMS.map((c) => [c.guarantee, c] as const))('%s', (_name, claim) => {
    expect(readme, `the README no longer says "${claim.readme}"`).toContain(claim.readme);
    expect(claim.defended.length).toBeGreaterThan(0);
    for (const { file, test } of claim.defended) {
      expect(fs.existsSync(path.join(REPO_ROOT, file)), `${file} exists`).toBe(true);
      expect(titlesIn(file), `${file} has the test "${test}"`).toContain(test);
    }
  });

  it('every defending file is a test vitest runs, and no defending test is skipped', () => {
    const files = new Set(CLAIMS.flatMap((c) => c.defended.map((d) => d.file)));
    for (const file of files) {
      expect(file).toMatch(/^test\/.*\.test\.ts$/);
      expect(source(file), `${file} skips tests`).not.toMatch(/\b(it|describe|test)\.(skip|todo|only)\b/);
    }
  });
});
