// The Kubernetes Events sink against a local HTTPS server that checks every request as the API
// server would: the path, the verb (POST to create, PATCH to aggregate), the service account bearer
// token, the content type, and a core/v1 Event body (validated with kubernetes-models) whose
// involvedObject is the pod. NO REAL CLUSTER RUNS HERE: the "API server" is this test's fake, with a
// self-signed certificate made by the openssl CLI and given to the sink as the service account's
// ca.crt, exactly as in-cluster config reads it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Event } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../agent/sinks/dispatch.js';
import { kubernetesEventSink } from '../../agent/sinks/k8s-event.js';
import { captureLog, oomKill, risk } from '../helpers/notify.js';

interface Req { method: string; path: string; auth: string | undefined; contentType: string | undefined; body: any }

describe('Kubernetes Events sink against a fake API server (HTTPS, bearer token)', () => {
  let dir: string;
  let saDir: string;
  let server: Server;
  let port: number;
  const reqs: Req[] = [];
  /** the fake API server's event store: name -> Event */
  const store = new Map<string, any>();
  let token = 'token-one';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'headroom-k8s-'));
    saDir = join(dir, 'serviceaccount');
    const ssl = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { encoding: 'utf8' });
    if (ssl.status !== 0) throw new Error(`openssl failed: ${ssl.stderr}`);
    spawnSync('mkdir', ['-p', saDir]);
    writeFileSync(join(saDir, 'ca.crt'), readFileSync(join(dir, 'cert.pem')));
    writeFileSync(join(saDir, 'token'), `${token}\n`);
    writeFileSync(join(saDir, 'namespace'), 'prod');

    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      let data = '';
      req.on('data', (c) => { data += c; });
      req.on('end', () => {
        const r: Req = { method: req.method!, path: req.url!, auth: req.headers.authorization, contentType: req.headers['content-type'], body: data ? JSON.parse(data) : undefined };
        reqs.push(r);
        const reply = (status: number, body: unknown) => { res.statusCode = status; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };
        if (r.auth !== `Bearer ${token}`) return reply(401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
        const m = /^\/api\/v1\/namespaces\/([^/]+)\/events(?:\/([^/?]+))?$/.exec(r.path);
        if (!m) return reply(404, { kind: 'Status', code: 404 });
        const [, ns, name] = m;
        if (r.method === 'POST' && !name) {
          if (r.contentType !== 'application/json') return reply(415, { code: 415 });
          if (r.body.metadata?.namespace !== ns) return reply(400, { message: 'the namespace of the object does not match the namespace on the request' });
          if (store.has(r.body.metadata.name)) return reply(409, { reason: 'AlreadyExists', code: 409 });
          store.set(r.body.metadata.name, r.body);
          return reply(201, r.body);
        }
        if (r.method === 'PATCH' && name) {
          if (r.contentType !== 'application/merge-patch+json') return reply(415, { code: 415 });
          const ev = store.get(decodeURIComponent(name));
          if (!ev) return reply(404, { kind: 'Status', reason: 'NotFound', code: 404 });
          Object.assign(ev, r.body);
          return reply(200, ev);
        }
        return reply(405, { code: 405 });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as import('node:net').AddressInfo).port;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates core/v1 Events on the pod and aggregates repeats like the kubelet', async () => {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) };
    const sink = await kubernetesEventSink({ pod: { name: 'shop-7d9f', namespace: undefined }, fieldPath: true, serviceAccountDir: saDir, env });
    let now = Date.parse('2026-12-04T10:00:00.400Z');
    const { log, lines } = captureLog();
    const d = new Dispatcher([sink], { log, now: () => now, minIntervalMs: 0 });

    // 1. risk warning: POST a new Event
    d.listener(risk('app', 'ok', 'warning', 210));
    await d.flush(5000);
    expect(reqs.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /api/v1/namespaces/prod/events']);
    const first = reqs[0]!;
    expect(first.auth).toBe('Bearer token-one');
    expect(first.contentType).toBe('application/json');
    new Event(first.body).validate(); // the core/v1 Event schema
    expect(first.body).toEqual({
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: expect.stringMatching(/^shop-7d9f\.[0-9a-f]+$/), namespace: 'prod' },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'shop-7d9f', namespace: 'prod', fieldPath: 'spec.containers{app}' },
      reason: 'OOMRisk', type: 'Warning',
      message: 'OOM risk warning: container app: unreclaimable 210 MiB of 256 MiB limit (82%), page cache 20 MiB is not counted',
      source: { component: 'headroom' }, reportingComponent: 'headroom', reportingInstance: 'shop-7d9f',
      firstTimestamp: '2026-12-04T10:00:00Z', lastTimestamp: '2026-12-04T10:00:00Z', count: 1,
    });
    const name = first.body.metadata.name as string;

    // 2. the same reason for the same container 2 minutes later (critical is OOMRisk too), with a
    //    rotated token: PATCH count 2 and lastTimestamp, not a new Event
    token = 'token-two';
    writeFileSync(join(saDir, 'token'), token);
    now += 120_000;
    d.listener(risk('app', 'warning', 'critical', 240));
    await d.flush(5000);
    const patch = reqs[1]!;
    expect(`${patch.method} ${patch.path}`).toBe(`PATCH /api/v1/namespaces/prod/events/${name}`);
    expect(patch.auth).toBe('Bearer token-two');
    expect(patch.contentType).toBe('application/merge-patch+json');
    expect(patch.body).toEqual({ count: 2, lastTimestamp: '2026-12-04T10:02:00Z', message: expect.stringMatching(/^OOM risk critical \(was warning\): container app: unreclaimable 240 MiB/) });
    const stored = store.get(name);
    new Event(stored).validate();
    expect(stored).toMatchObject({ count: 2, firstTimestamp: '2026-12-04T10:00:00Z', lastTimestamp: '2026-12-04T10:02:00Z' });

    // 3. cleared: another reason, a new Normal Event; 4. a kill: OOMKilled on the pod
    now += 1000;
    d.listener(risk('app', 'critical', 'ok', 100));
    d.listener(oomKill('app', 1, 1));
    await d.flush(5000);
    expect(reqs.slice(2).map((r) => `${r.method} ${r.body.reason} ${r.body.type}`)).toEqual(['POST OOMRiskCleared Normal', 'POST OOMKilled Warning']);
    for (const r of reqs.slice(2)) new Event(r.body).validate();
    expect(reqs[3]!.body.message).toBe('container app: the kernel OOM-killed 1 process (1 so far); unreclaimable memory peaked at 255 MiB of 256 MiB limit in the last samples');
    expect(new Set(reqs.slice(2).map((r) => r.body.metadata.name)).size).toBe(2);

    // 5. OOMRisk again after more than 10 minutes: a new Event, not a patch of the old one
    now += 11 * 60_000;
    d.listener(risk('app', 'ok', 'warning', 210));
    await d.flush(5000);
    expect(`${reqs[4]!.method} ${reqs[4]!.body.reason} ${reqs[4]!.body.count}`).toBe('POST OOMRisk 1');
    expect(reqs[4]!.body.metadata.name).not.toBe(name);

    // 6. the Event it would patch is gone (expired, deleted): PATCH 404, then POST a new one
    store.delete(reqs[4]!.body.metadata.name);
    now += 1000;
    d.listener(risk('app', 'warning', 'critical', 240));
    await d.flush(5000);
    expect(reqs.slice(5).map((r) => `${r.method} ${r.contentType}`)).toEqual(['PATCH application/merge-patch+json', 'POST application/json']);
    expect(reqs[6]!.body).toMatchObject({ reason: 'OOMRisk', count: 1 });

    expect(d.stats()).toEqual([
      { sink: 'kubernetes', result: 'sent', count: 6 }, { sink: 'kubernetes', result: 'failed', count: 0 }, { sink: 'kubernetes', result: 'dropped', count: 0 },
    ]);
    expect(lines.filter((l) => l['level'] === 'warn')).toEqual([]);
  });

  it('counts and logs a refused request (a wrong token: 401, not retried)', async () => {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) };
    writeFileSync(join(saDir, 'token'), 'stale');
    const sink = await kubernetesEventSink({ pod: { name: 'shop-7d9f', namespace: 'prod' }, fieldPath: false, serviceAccountDir: saDir, env });
    const { log, lines } = captureLog();
    const d = new Dispatcher([sink], { log, retryDelayMs: 10 });
    const before = reqs.length;
    d.listener(oomKill('app'));
    await d.flush(5000);
    expect(reqs.length - before).toBe(1);
    expect(reqs.at(-1)!.body.involvedObject).toEqual({ apiVersion: 'v1', kind: 'Pod', name: 'shop-7d9f', namespace: 'prod' });
    expect(d.stats().find((s) => s.result === 'failed')!.count).toBe(1);
    expect(String(lines.find((l) => l['level'] === 'warn')!['msg'])).toMatch(/^kubernetes: could not deliver the OOM kill notification for container app after 1 attempt: POST https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/prod\/events: HTTP 401/);
  });

  it('says plainly why it cannot run outside a cluster', async () => {
    await expect(kubernetesEventSink({ pod: { name: undefined, namespace: 'prod' }, fieldPath: true, serviceAccountDir: saDir, env: {} })).rejects.toThrow(/POD_NAME is not set/);
    await expect(kubernetesEventSink({ pod: { name: 'p', namespace: 'prod' }, fieldPath: true, serviceAccountDir: saDir, env: {} })).rejects.toThrow(/KUBERNETES_SERVICE_HOST is not set/);
    await expect(kubernetesEventSink({ pod: { name: 'p', namespace: 'prod' }, fieldPath: true, serviceAccountDir: join(dir, 'none'), env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' } })).rejects.toThrow(/cannot read the service account token/);
  });
});
