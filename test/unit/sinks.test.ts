// Notification sinks: the webhook's JSON against a local HTTP server, and the dispatcher's promises:
// the sampler-side call never waits for a slow or failing endpoint, failures are retried once,
// counted and logged, queues are bounded, repeats are rate-limited but level changes never are.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseCli } from '../../agent/config.js';
import { Dispatcher } from '../../agent/sinks/dispatch.js';
import { WebhookSink } from '../../agent/sinks/webhook.js';
import type { Notification, Sink } from '../../agent/sinks/notify.js';
import { captureLog, MiB, oomKill, risk } from '../helpers/notify.js';

interface Received { method: string; url: string; headers: IncomingMessage['headers']; body: any }

async function server(handler: (r: Received, res: import('node:http').ServerResponse) => void): Promise<{ url: string; got: Received[]; srv: Server }> {
  const got: Received[] = [];
  const srv = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => {
      const r = { method: req.method!, url: req.url!, headers: req.headers, body: data ? JSON.parse(data) : undefined };
      got.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address() as import('node:net').AddressInfo;
  servers.push(srv);
  return { url: `http://127.0.0.1:${addr.port}/hook`, got, srv };
}
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
});

const until = async (what: string, fn: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const count = (d: Dispatcher, sink: string, result: string) => d.stats().find((s) => s.sink === sink && s.result === result)!.count;

describe('webhook sink', () => {
  it('POSTs the stable JSON schema for risk changes and OOM kills', async () => {
    const { url, got } = await server((_r, res) => res.end('ok'));
    const { log } = captureLog();
    const d = new Dispatcher([new WebhookSink(url, { name: 'app-7d9f', namespace: 'shop' })], { log });
    d.listener(risk('app', 'ok', 'critical', 240));
    d.listener(oomKill('app', 1, 3));
    d.listener(risk('app', 'critical', 'ok', 100));
    d.listener({ type: 'note', message: 'not for sinks' });
    await d.flush(5000);
    expect(got.map((g) => [g.method, g.url, g.headers['content-type']])).toEqual(Array(3).fill(['POST', '/hook', 'application/json']));
    const [crit, kill, ok] = got.map((g) => g.body);
    expect(crit).toEqual({
      schema: 'headroom.notification/v1', kind: 'risk', container: 'app', level: 'critical', previous: 'ok',
      memory: { unreclaimable_bytes: 240 * MiB, limit_bytes: 256 * MiB, working_set_bytes: 250 * MiB, usage_bytes: 260 * MiB, reclaimable_bytes: 20 * MiB },
      oom_kills: null, trend: { eta_seconds: null, growth_bytes_per_second: null, causes: [] },
      message: 'OOM risk critical: container app: unreclaimable 240 MiB of 256 MiB limit (94%), page cache 20 MiB is not counted',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), pod: 'app-7d9f', namespace: 'shop',
    });
    expect(kill).toMatchObject({ kind: 'oom_kill', level: null, previous: null, oom_kills: { count: 1, total: 3 }, memory: { unreclaimable_bytes: 255 * MiB, limit_bytes: 256 * MiB } });
    expect(kill.message).toBe('container app: the kernel OOM-killed 1 process (3 so far); unreclaimable memory peaked at 255 MiB of 256 MiB limit in the last samples');
    expect(ok).toMatchObject({ kind: 'risk', level: 'ok', previous: 'critical' });
    expect(ok.message).toMatch(/^OOM risk cleared \(was critical\): container app: unreclaimable 100 MiB/);
    // the trend and causes the sampler attaches (ETA) go along, in numbers and in words
    got.length = 0;
    d.listener({ ...(risk('app', 'ok', 'warning', 200) as any), eta: 95.4, slope: 600_000, causes: ['OOM predicted in ~95 s'] });
    await d.flush(5000);
    expect(got[0]!.body.trend).toEqual({ eta_seconds: 95, growth_bytes_per_second: 600_000, causes: ['OOM predicted in ~95 s'] });
    expect(got[0]!.body.message).toBe('OOM risk warning: container app: unreclaimable 200 MiB of 256 MiB limit (78%), growing 586 KiB/s, OOM in ~95 s at this rate; page cache 20 MiB is not counted (OOM predicted in ~95 s)');
    expect(count(d, 'webhook', 'sent')).toBe(4);
  });
});

describe('dispatcher', () => {
  it('never blocks the sampler on a slow endpoint; times out, retries once, counts and logs the failure', async () => {
    let inflight = 0;
    let maxInflight = 0;
    const { url, got } = await server((_r, res) => { // never answers
      maxInflight = Math.max(maxInflight, ++inflight);
      res.on('close', () => inflight--);
    });
    const { log, lines } = captureLog();
    const d = new Dispatcher([new WebhookSink(url, { name: undefined, namespace: undefined })], { log, timeoutMs: 200, retryDelayMs: 50 });
    for (let i = 0; i < 50; i++) d.listener(risk('app', i % 2 ? 'warning' : 'ok', i % 2 ? 'ok' : 'warning', 210));
    // 50 events queued without waiting on the network: all handed over before any attempt ended
    // (the endpoint never answers; an attempt ends only by its 200 ms time-out). Order, not duration.
    expect(count(d, 'webhook', 'failed') + count(d, 'webhook', 'sent')).toBe(0);
    expect(d.stats().find((x) => x.result === 'dropped')!.count).toBe(0);
    await until('the first failure', () => count(d, 'webhook', 'failed') >= 1);
    expect(got.length).toBeGreaterThanOrEqual(2); // the attempt and its one retry (then the next event)
    expect(maxInflight).toBe(1); // one delivery at a time
    const fail = lines.find((l) => String(l['msg']).startsWith('webhook: could not deliver'));
    expect(fail).toMatchObject({ level: 'warn', sink: 'webhook', container: 'app' });
    expect(String(fail!['msg'])).toMatch(/after 2 attempts: POST .*timed out/);
    await d.close(0);
    expect(count(d, 'webhook', 'sent')).toBe(0);
    // close() dropped what was queued; the delivery in flight still ends (failed, no retry once closed)
    await until('every event accounted for', () => count(d, 'webhook', 'failed') + count(d, 'webhook', 'dropped') === 50);
  });

  it('counts HTTP errors as failed (no retry on 4xx) and logs them once per interval', async () => {
    const { url, got } = await server((_r, res) => { res.statusCode = 400; res.end('bad payload'); });
    const { log, lines } = captureLog();
    const d = new Dispatcher([new WebhookSink(url, { name: undefined, namespace: undefined })], { log, retryDelayMs: 10 });
    d.listener(risk('app', 'ok', 'warning', 210));
    d.listener(risk('app', 'warning', 'ok', 100));
    await d.flush(5000);
    expect(got.length).toBe(2);
    expect(count(d, 'webhook', 'failed')).toBe(2);
    const fails = lines.filter((l) => String(l['msg']).includes('could not deliver'));
    expect(fails.length).toBe(1);
    expect(String(fails[0]!['msg'])).toContain('HTTP 400: bad payload');
  });

  it('retries once after a 5xx and then succeeds', async () => {
    let n = 0;
    const { url, got } = await server((_r, res) => { res.statusCode = n++ === 0 ? 503 : 200; res.end(); });
    const { log } = captureLog();
    const d = new Dispatcher([new WebhookSink(url, { name: undefined, namespace: undefined })], { log, retryDelayMs: 10 });
    d.listener(oomKill('app'));
    await d.flush(5000);
    expect(got.length).toBe(2);
    expect(d.stats()).toEqual([
      { sink: 'webhook', result: 'sent', count: 1 }, { sink: 'webhook', result: 'failed', count: 0 }, { sink: 'webhook', result: 'dropped', count: 0 },
    ]);
  });

  it('bounds the queue (drops the oldest), rate-limits repeated OOM kills but never risk changes', async () => {
    const sent: Notification[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const sink: Sink = { name: 'fake', async send(n) { await gate; sent.push(n); return true; } };
    let now = 1_000_000;
    const { log } = captureLog();
    const d = new Dispatcher([sink], { log, queueSize: 3, minIntervalMs: 30_000, now: () => now });
    d.listener(risk('app', 'ok', 'warning', 210)); // in flight
    d.listener(oomKill('app', 1, 1));
    d.listener(oomKill('app', 1, 2)); // a repeat within 30 s: suppressed
    d.listener(oomKill('db', 1, 1)); // another container: its own key
    now += 31_000;
    d.listener(oomKill('app', 1, 3));
    d.listener(risk('app', 'warning', 'ok', 100));
    d.listener(risk('app', 'ok', 'warning', 210)); // queue full twice: dropped the two oldest (both kills queued first)
    expect(count(d, 'fake', 'dropped')).toBe(3);
    release();
    await d.flush(5000);
    const got = sent.map((n) => n.kind === 'event' ? `${n.event.container}:${n.event.type}:${n.event.type === 'risk' ? n.event.to : n.event.total}` : 'refresh');
    expect(got).toEqual(['app:risk:warning', 'app:oom_kill:3', 'app:risk:ok', 'app:risk:warning']);
    expect(count(d, 'fake', 'sent')).toBe(4);
  });
});

describe('sink flags', () => {
  const sinks = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = parseCli(argv, env);
    if (p.kind !== 'run') throw new Error(p.kind);
    return p.config.sinks;
  };
  it('are off by default and read flags or HEADROOM_* variables', () => {
    expect(sinks([])).toEqual({ alertmanagerUrl: undefined, webhookUrl: undefined, kubernetesEvents: false });
    expect(sinks(['--alertmanager-url', 'http://am:9093', '--webhook-url=https://hooks.example/x?a=1', '--kubernetes-events'])).toEqual({
      alertmanagerUrl: 'http://am:9093/', webhookUrl: 'https://hooks.example/x?a=1', kubernetesEvents: true,
    });
    expect(sinks([], { HEADROOM_ALERTMANAGER_URL: 'http://am:9093', HEADROOM_WEBHOOK_URL: 'http://h/', HEADROOM_KUBERNETES_EVENTS: 'true' }))
      .toEqual({ alertmanagerUrl: 'http://am:9093/', webhookUrl: 'http://h/', kubernetesEvents: true });
    expect(sinks([], { HEADROOM_KUBERNETES_EVENTS: 'false' }).kubernetesEvents).toBe(false);
  });
  it('reject what is not an http(s) URL or a boolean', () => {
    expect(() => sinks(['--webhook-url', 'hooks.example/x'])).toThrow(ConfigError);
    expect(() => sinks(['--alertmanager-url', 'ftp://am'])).toThrow(/invalid --alertmanager-url "ftp:\/\/am": expected an http:\/\/ or https:\/\/ URL/);
    expect(() => sinks([], { HEADROOM_KUBERNETES_EVENTS: 'yes please' })).toThrow(/invalid HEADROOM_KUBERNETES_EVENTS/);
  });
});
