// The Alertmanager sink against a real Alertmanager (Debian's prometheus-alertmanager, which .ci/run
// installs), started here on loopback with a null receiver: synthetic risk changes and an OOM kill go
// through the dispatcher and the real v2 API, then GET /api/v2/alerts shows what Alertmanager made
// of them: labels, annotations, active while the level lasts, resolved when it ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertmanagerSink } from '../../agent/sinks/alertmanager.js';
import { Dispatcher } from '../../agent/sinks/dispatch.js';
import { REPO, waitFor } from '../helpers/agent.js';
import { captureLog, oomKill, risk } from '../helpers/notify.js';

const BIN = ['prometheus-alertmanager', 'alertmanager'].find((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
if (!BIN) console.warn('alertmanager.test.ts SKIPPED: no prometheus-alertmanager binary (apt-get install prometheus-alertmanager; .ci/run installs it)');

interface GotAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string; inhibitedBy?: string[] };
  fingerprint: string;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as import('node:net').AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe.skipIf(!BIN)('Alertmanager sink against a real Alertmanager', () => {
  let dir: string;
  let am: ChildProcess;
  let url: string;
  const amLog: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'headroom-am-'));
    // The inhibit rules users are told to add (README, Notifications), as shipped.
    const inhibit = readFileSync(join(REPO, 'deploy/prometheus/alertmanager-inhibit.yaml'), 'utf8');
    writeFileSync(join(dir, 'alertmanager.yml'), `route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n${inhibit}`);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    am = spawn(BIN!, [
      `--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    am.stdout!.on('data', (d) => amLog.push(String(d)));
    am.stderr!.on('data', (d) => amLog.push(String(d)));
    await waitFor(`Alertmanager ready on ${url}\n${amLog.join('')}`, async () => (await fetch(`${url}/-/ready`)).ok, 20_000);
  }, 30_000);

  afterAll(async () => {
    if (am && am.exitCode === null) {
      am.kill('SIGTERM');
      await new Promise((r) => am.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const alerts = async (): Promise<GotAlert[]> => (await (await fetch(`${url}/api/v2/alerts`)).json()) as GotAlert[];
  const find = (all: GotAlert[], name: string, severity: string, container: string) =>
    all.find((a) => a.labels['alertname'] === name && a.labels['severity'] === severity && a.labels['container'] === container);

  it('fires HeadroomOOMRisk, keeps it alive, moves it between severities and resolves it', async () => {
    const { log, lines } = captureLog();
    const sink = new AlertmanagerSink({ url, pod: { name: 'shop-7d9f', namespace: 'prod' }, refreshMs: 500 });
    const d = new Dispatcher([sink], { log, timeoutMs: 2000 });
    d.start();
    try {
      const t0 = Date.now();
      d.listener(risk('app', 'ok', 'warning', 210));
      const warning = await waitFor('the warning alert, active', async () => {
        const a = find(await alerts(), 'HeadroomOOMRisk', 'warning', 'app');
        return a?.status.state === 'active' ? a : undefined;
      }, 15_000);
      expect(warning.labels).toEqual({ alertname: 'HeadroomOOMRisk', severity: 'warning', container: 'app', pod: 'shop-7d9f', namespace: 'prod', source: 'headroom' });
      expect(warning.annotations).toEqual({
        summary: 'OOM risk warning for container app',
        description: 'OOM risk warning: container app: unreclaimable 210 MiB of 256 MiB limit (82%), page cache 20 MiB is not counted',
      });
      const startsAt = Date.parse(warning.startsAt);
      expect(Math.abs(startsAt - t0)).toBeLessThan(2000);
      const endsAt = Date.parse(warning.endsAt);
      expect(endsAt - Date.now()).toBeGreaterThan(4 * 60_000); // ~5 min ahead, not expiring on its own

      // The refresh re-sends it: endsAt moves forward, startsAt stays.
      const refreshed = await waitFor('a refreshed endsAt', async () => {
        const a = find(await alerts(), 'HeadroomOOMRisk', 'warning', 'app');
        return a && Date.parse(a.endsAt) > endsAt ? a : undefined;
      }, 10_000);
      expect(Date.parse(refreshed.startsAt)).toBe(startsAt);

      // warning -> critical: the warning alert resolves, a critical one fires.
      d.listener(risk('app', 'warning', 'critical', 240));
      await waitFor('critical active and warning gone', async () => {
        const all = await alerts();
        return find(all, 'HeadroomOOMRisk', 'critical', 'app')?.status.state === 'active' &&
          find(all, 'HeadroomOOMRisk', 'warning', 'app') === undefined;
      }, 15_000);
      const critical = find(await alerts(), 'HeadroomOOMRisk', 'critical', 'app')!;
      expect(critical.annotations['description']).toBe('OOM risk critical (was warning): container app: unreclaimable 240 MiB of 256 MiB limit (94%), page cache 20 MiB is not counted');

      // back to ok: resolved (Alertmanager no longer lists it as active).
      d.listener(risk('app', 'critical', 'ok', 100));
      await d.flush(5000);
      await waitFor('the critical alert resolved', async () => {
        const a = find(await alerts(), 'HeadroomOOMRisk', 'critical', 'app');
        return a === undefined || a.status.state !== 'active';
      }, 15_000);
      // Later refreshes do not bring it back.
      await new Promise((r) => setTimeout(r, 1200));
      expect((await alerts()).filter((a) => a.labels['alertname'] === 'HeadroomOOMRisk' && a.status.state === 'active')).toEqual([]);
      expect(d.stats().find((s) => s.result === 'failed')!.count).toBe(0);
      expect(lines.filter((l) => l['level'] === 'warn')).toEqual([]);
    } finally {
      await d.close(1000);
    }
  });

  it('fires HeadroomOOMKilled for a kill, ending on its own after 10 minutes', async () => {
    const { log } = captureLog();
    const d = new Dispatcher([new AlertmanagerSink({ url, pod: { name: undefined, namespace: undefined } })], { log });
    d.listener(oomKill('worker', 2, 5));
    await d.flush(5000);
    const a = await waitFor('the kill alert, active', async () => {
      const k = find(await alerts(), 'HeadroomOOMKilled', 'warning', 'worker');
      return k?.status.state === 'active' ? k : undefined;
    }, 15_000);
    expect(a.labels).toEqual({ alertname: 'HeadroomOOMKilled', severity: 'warning', container: 'worker', source: 'headroom' });
    expect(a.annotations).toEqual({
      summary: 'container worker was OOM-killed',
      description: 'container worker: the kernel OOM-killed 2 processes (5 so far); unreclaimable memory peaked at 255 MiB of 256 MiB limit in the last samples',
    });
    const left = Date.parse(a.endsAt) - Date.now();
    expect(left).toBeGreaterThan(9 * 60_000);
    expect(left).toBeLessThanOrEqual(10 * 60_000);
    expect(d.stats().find((s) => s.result === 'sent')!.count).toBe(1);
  });

  it('with deploy/prometheus/alertmanager-inhibit.yaml, headroom\'s own alerts mute the same ones from the Prometheus rules, and nothing else', async () => {
    // What Prometheus sends for the rules in deploy/prometheus/headroom.rules.yaml: the series'
    // labels (instance, job, ...) plus the rule's severity, no source label.
    const fromPrometheus = (alertname: string, severity: string, container: string) => ({
      labels: { alertname, severity, container, namespace: 'prod', pod: 'shop-1', instance: '10.0.0.7:9847', job: 'prod/headroom' },
      annotations: { summary: 'from the rules' },
      startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 5 * 60_000).toISOString(),
    });
    const post = await fetch(`${url}/api/v2/alerts`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        fromPrometheus('HeadroomOOMKilled', 'warning', 'api'),
        fromPrometheus('HeadroomOOMRiskCritical', 'critical', 'api'),
        fromPrometheus('HeadroomOOMRiskWarning', 'warning', 'api'),
        fromPrometheus('HeadroomOOMKilled', 'warning', 'other'), // headroom says nothing about this one
      ]),
    });
    expect(post.ok).toBe(true);
    const { log } = captureLog();
    const d = new Dispatcher([new AlertmanagerSink({ url, pod: { name: 'shop-1', namespace: 'prod' } })], { log });
    try {
      d.listener(oomKill('api'));
      d.listener(risk('api', 'ok', 'critical', 250));
      await d.flush(5000);
      const byName = (all: GotAlert[], name: string, container: string, source?: string) =>
        all.find((a) => a.labels['alertname'] === name && a.labels['container'] === container && a.labels['source'] === source);
      const all = await waitFor('the rules\' duplicates suppressed', async () => {
        const got = await alerts();
        const k = byName(got, 'HeadroomOOMKilled', 'api');
        const c = byName(got, 'HeadroomOOMRiskCritical', 'api');
        return k?.status.state === 'suppressed' && c?.status.state === 'suppressed' ? got : undefined;
      }, 15_000);
      const mine = byName(all, 'HeadroomOOMKilled', 'api', 'headroom')!;
      expect(mine.status.state).toBe('active');
      expect(byName(all, 'HeadroomOOMKilled', 'api')!.status.inhibitedBy).toEqual([mine.fingerprint]);
      expect(byName(all, 'HeadroomOOMRisk', 'api', 'headroom')!.status.state).toBe('active');
      // A different severity, or another container, is not a duplicate.
      expect(byName(all, 'HeadroomOOMRiskWarning', 'api')!.status.state).toBe('active');
      expect(byName(all, 'HeadroomOOMKilled', 'other')!.status.state).toBe('active');
    } finally {
      await d.close(1000);
    }
  });
});
