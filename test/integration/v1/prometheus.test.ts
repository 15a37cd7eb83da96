// Real Prometheus, end to end: `headroom run` OOM-kills a ramp in a 96 MiB cgroup while a real
// `prometheus` (Debian's /usr/bin/prometheus) scrapes the agent every second and evaluates the
// shipped rules, deploy/prometheus/headroom.rules.yaml. Through Prometheus's own HTTP API it checks
// that an OOM-risk alert was active before the kernel's kill, that increase(headroom_oom_kills_total)
// sees the kill, and that HeadroomOOMKilled becomes active. Measured values go to
// /tmp/headroom-prom-e2e.json and a `[prometheus-e2e] {...}` line.
//
// Order of events, so the kill is observed: the agent starts the command, which waits on a gate
// file; Prometheus starts and scrapes the agent (target up, counter 0 in the TSDB); then the gate
// opens and the ramp runs into the limit. Only loopback addresses are used. Everything started here
// (prometheus, the agent, its command) is stopped in afterAll, also when the test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPO, startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { hasV1Memory, ownV1MemoryDir } from '../../helpers/cgroup.js';
import { dumpLogsOnFailure, isKillLine, isRiskLine, logMs, RAMP, sleep } from '../../helpers/v1.js';

const PROMETHEUS = '/usr/bin/prometheus';
const RULES = join(REPO, 'deploy/prometheus/headroom.rules.yaml');
const RESULT_FILE = '/tmp/headroom-prom-e2e.json';
/** Prometheus scrape and rule evaluation interval, seconds */
const INTERVAL_S = 1;
const POLL_MS = 200;
const RISK_ALERTS = ['HeadroomOOMRiskWarning', 'HeadroomOOMRiskCritical'] as const;
const KILL_ALERT = 'HeadroomOOMKilled';
/**
 * The ramp: 1 MiB every 250 ms (4 MiB/s) into a 96 MiB limit. The warning band (80 % = 76.8 MiB of
 * unreclaimable memory, up to the kill) is ~19 MiB, so the climb from warning to the kill takes
 * about 5 s. At 10 MiB/s it took only ~2 s (measured), less than the worst case of scrape (1 s) +
 * rule evaluation (1 s) + agent sample (250 ms) + alerts poll (200 ms), and the first alert state
 * was seen only ~0.7 s before the kill.
 */
const RAMP_ARGS = ['--step-mib', '1', '--every-ms', '250', '--quiet'];

interface PromAlert { labels: Record<string, string>; annotations: Record<string, string>; state: string; activeAt: string; value: string }
interface Seen {
  /** Date.now() when the /api/v1/alerts response showing it arrived */
  t: number;
  /** the alert's activeAt (Prometheus's evaluation time when it became active) */
  activeAt: number;
  /** the kernel's oom_kill counter of the command's cgroup, read right after that response */
  oomKillAfter: number | 'gone';
  /** as Prometheus expanded them (the shipped rules' templates run queries) */
  annotations: Record<string, string>;
}

const runnable = hasV1Memory() && existsSync(PROMETHEUS);

/** This process's cgroup in the unified hierarchy of a hybrid host (where `run` puts its PSI twin). */
function ownUnifiedDir(): string | undefined {
  const unified = '/sys/fs/cgroup/unified';
  if (!existsSync(join(unified, 'cgroup.controllers'))) return undefined;
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : join(unified, line.slice(3));
}

/** A free TCP port on 127.0.0.1 (closed again, so Prometheus can bind it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** The kernel's oom_kill count of a v1 memory cgroup, 'gone' once the cgroup is removed. */
function oomKillOf(dir: string): number | 'gone' {
  try {
    const line = readFileSync(join(dir, 'memory.oom_control'), 'utf8').split('\n').find((l) => l.startsWith('oom_kill '));
    return line ? Number(line.split(' ')[1]) : 0;
  } catch {
    return 'gone';
  }
}

describe.skipIf(!runnable)('real Prometheus: shipped alert rules on a real OOM kill (root, cgroup v1, /usr/bin/prometheus)', () => {
  let agent: Agent | undefined;
  let prom: ChildProcess | undefined;
  let promLog = '';
  let tmp: string | undefined;

  afterEach((ctx) => {
    dumpLogsOnFailure(ctx, agent);
    if (ctx.task.result?.state === 'fail' && promLog) console.log(`[prometheus-e2e] prometheus log of the failed test:\n${promLog.slice(-6000)}`);
  });

  afterAll(async () => {
    const pid = agent?.proc.pid;
    await stopProcess(prom);
    prom = undefined;
    if (agent) {
      // A SIGTERM while the command runs is relayed to the command, and the agent then starts its
      // 60 s --linger; a second SIGTERM ends the linger. SIGKILL only as a last resort (it leaves the
      // cgroups to the safety net below).
      const a = agent;
      const alive = () => a.proc.exitCode === null && a.proc.signalCode === null;
      const lingering = () => a.logs.some((l) => l.msg.includes('(--linger)'));
      if (alive() && !lingering()) {
        a.proc.kill('SIGTERM');
        await waitFor('the agent to exit or linger', () => !alive() || lingering(), 10_000, 50).catch(() => undefined);
      }
      if (alive()) {
        a.proc.kill('SIGTERM');
        await Promise.race([a.exited, sleep(10_000)]);
      }
      if (alive()) a.proc.kill('SIGKILL');
      await a.exited;
    }
    agent = undefined;
    // Safety net: the command's cgroups (v1 memory, and its PSI twin on a hybrid host), if the agent
    // could not remove them (their processes killed first).
    const dirs = pid ? [ownV1MemoryDir(), ownUnifiedDir()].filter((d): d is string => d !== undefined).map((d) => join(d, `headroom-run-${pid}`)) : [];
    for (const dir of dirs) {
      for (let i = 0; i < 100 && existsSync(dir); i++) {
        try {
          for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
          }
          rmdirSync(dir);
        } catch { await sleep(50); }
      }
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    tmp = undefined;
  }, 60_000);

  it('an OOM-risk alert is active before the kill, then increase(headroom_oom_kills_total) > 0 and HeadroomOOMKilled', async () => {
    expect(existsSync(RULES), `the shipped rules file ${RULES} is missing`).toBe(true);
    tmp = mkdtempSync(join(tmpdir(), 'headroom-prom-e2e-'));
    const gate = join(tmp, 'go');

    // 1. The agent, its command waiting for the gate file.
    agent = await startAgent(['run', '--memory', '96M', '--interval', '250ms', '--linger', '60s', '--',
      '/bin/sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.1; done; exec "$@"', gate, process.execPath, RAMP, ...RAMP_ARGS]);
    const a = agent;
    const container = 'sh'; // run names the container after argv[0]
    const cgDir = join(ownV1MemoryDir(), `headroom-run-${a.proc.pid}`);
    expect(existsSync(cgDir)).toBe(true);

    // 2. Prometheus on loopback, scraping the agent, with the shipped rules.
    writeFileSync(join(tmp, 'prometheus.yml'), [
      'global:',
      `  scrape_interval: ${INTERVAL_S}s`,
      `  evaluation_interval: ${INTERVAL_S}s`,
      'rule_files:',
      `  - ${JSON.stringify(RULES)}`,
      'scrape_configs:',
      '  - job_name: headroom',
      '    static_configs:',
      `      - targets: ["127.0.0.1:${a.port}"]`,
      '',
    ].join('\n'));
    let promPort = 0;
    for (let attempt = 1; ; attempt++) {
      promPort = await freePort();
      promLog = '';
      const p = spawn(PROMETHEUS, [
        `--config.file=${join(tmp, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(tmp, `tsdb-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=info',
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      prom = p;
      p.stderr!.setEncoding('utf8').on('data', (c: string) => { promLog = (promLog + c).slice(-20_000); });
      const ready = await waitFor('prometheus to be ready', async () => {
        if (p.exitCode !== null || p.signalCode !== null) return 'exited';
        const r = await fetch(`http://127.0.0.1:${promPort}/-/ready`);
        return r.ok ? 'ready' : undefined;
      }, 60_000, 200).catch((err) => { throw new Error(`${String(err)}\nprometheus log:\n${promLog}`); });
      if (ready === 'ready') break;
      // lost the port to someone else between freePort() and bind: try another one
      if (attempt >= 3 || !/address already in use/.test(promLog)) throw new Error(`prometheus exited (${p.exitCode ?? p.signalCode}):\n${promLog}`);
    }
    const api = async (path: string): Promise<any> => {
      const r = await fetch(`http://127.0.0.1:${promPort}${path}`);
      const j = await r.json() as any;
      if (j.status !== 'success') throw new Error(`${path}: ${JSON.stringify(j)}`);
      return j.data;
    };
    const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> =>
      (await api(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;

    // The shipped rules are loaded and evaluated without error.
    const rules = await waitFor('the shipped alert rules to be evaluated', async () => {
      const all = ((await api('/api/v1/rules?type=alert')).groups as any[]).flatMap((g) => g.rules as any[]);
      const ours = [...RISK_ALERTS, KILL_ALERT].map((n) => all.find((r) => r.name === n));
      return ours.every((r) => r && r.health === 'ok') ? all : undefined;
    }, 60_000, 200).catch(async (err) => {
      const names = ((await api('/api/v1/rules').catch(() => ({ groups: [] }))).groups as any[]).flatMap((g) => g.rules.map((r: any) => `${r.name}:${r.health}`));
      throw new Error(`${String(err)}; rules loaded from ${RULES}: ${names.join(', ') || 'none'}\nprometheus log:\n${promLog.slice(-4000)}`);
    });

    // 3. Prometheus has scraped the agent: target up, the counter (0) and risk ok in the TSDB.
    await waitFor('the headroom target to be up', async () =>
      ((await api('/api/v1/targets?state=active')).activeTargets as any[]).some((t) => t.health === 'up' && t.scrapeUrl.includes(`:${a.port}/`)), 60_000, 200);
    await waitFor('headroom_oom_kills_total and headroom_oom_risk in Prometheus', async () => {
      const kills = await query(`headroom_oom_kills_total{container="${container}"}`);
      const ok = await query(`headroom_oom_risk{container="${container}",level="ok"}`);
      return kills.length === 1 && ok.length === 1;
    }, 60_000, 200);
    expect((await query(`headroom_oom_kills_total{container="${container}"}`))[0]!.value[1]).toBe('0');
    expect((await query(`headroom_oom_risk{container="${container}",level="ok"}`))[0]!.value[1]).toBe('1');
    expect(oomKillOf(cgDir)).toBe(0);

    // 4. Open the gate: the ramp runs into the limit. Poll the alerts; right after each response read
    //    the kernel's oom_kill, so "seen before the kill" does not depend on any clock.
    const seen = new Map<string, Seen>();
    let kernelKillSeenAt: number | undefined;
    let commandExited = false;
    let polls = 0;
    const exitedLine = () => a.logs.find((l) => l.msg.startsWith('command exited'));
    writeFileSync(gate, '');
    const gateAt = Date.now();
    const pollOnce = async () => {
      const alerts = (await api('/api/v1/alerts')).alerts as PromAlert[];
      const t = Date.now();
      const k = oomKillOf(cgDir);
      polls++;
      if (kernelKillSeenAt === undefined && k !== 0) kernelKillSeenAt = t;
      for (const al of alerts) {
        if (al.labels['container'] !== container) continue;
        const key = `${al.labels['alertname']}/${al.state}`;
        if (!seen.has(key)) seen.set(key, { t, activeAt: Date.parse(al.activeAt), oomKillAfter: k, annotations: al.annotations ?? {} });
      }
    };
    const deadline = Date.now() + 90_000;
    while (!commandExited) {
      if (Date.now() > deadline) throw new Error(`the command did not exit 90 s after the gate opened; alerts seen: ${[...seen.keys()].join(', ')}`);
      if (a.proc.exitCode !== null) throw new Error(`the agent exited early (${a.proc.exitCode})`);
      await pollOnce();
      commandExited = exitedLine() !== undefined;
      await sleep(POLL_MS);
    }
    expect(exitedLine()).toMatchObject({ exit_status: 137 });

    // The kill, as early as anything saw it: the agent's kill line, the command's exit, our kernel read.
    const killLine = a.logs.find(isKillLine);
    expect(killLine, 'the agent logged the OOM kill').toBeDefined();
    expect(killLine).toMatchObject({ container });
    const killAt = Math.min(logMs(killLine!), logMs(exitedLine()!), kernelKillSeenAt ?? Infinity);

    // 5. An OOM-risk alert was active before the kill.
    const risk = [...seen.entries()].filter(([key]) => RISK_ALERTS.some((n) => key.startsWith(`${n}/`)));
    expect(risk.map(([key]) => key), 'OOM-risk alert states seen while the ramp ran').not.toEqual([]);
    const first = risk.reduce((x, y) => (y[1].t < x[1].t ? y : x));
    expect(first[1].oomKillAfter, `kernel oom_kill right after ${first[0]} was first seen`).toBe(0);
    expect(first[1].t).toBeLessThan(killAt);
    expect(first[1].activeAt).toBeLessThan(killAt);
    for (const [key] of risk) expect(['pending', 'firing']).toContain(key.split('/')[1]);

    // 6. During --linger the agent still serves the final counter: Prometheus sees the increase,
    //    and HeadroomOOMKilled becomes active.
    const increase = await waitFor('increase(headroom_oom_kills_total[5m]) > 0', async () => {
      const r = await query(`increase(headroom_oom_kills_total{container="${container}"}[5m])`);
      return r.length === 1 && Number(r[0]!.value[1]) > 0 ? Number(r[0]!.value[1]) : undefined;
    }, 40_000, 200);
    expect(increase).toBeGreaterThan(0);
    await waitFor(`${KILL_ALERT} pending or firing`, async () => {
      await pollOnce();
      return [...seen.keys()].some((k) => k === `${KILL_ALERT}/pending` || k === `${KILL_ALERT}/firing`);
    }, 40_000, POLL_MS);
    const killAlert = [...seen.entries()].filter(([k]) => k.startsWith(`${KILL_ALERT}/`));
    for (const [key] of killAlert) expect(['pending', 'firing']).toContain(key.split('/')[1]);
    expect(a.proc.exitCode, 'the agent still lingers').toBeNull();
    // The shipped annotation templates expanded (Prometheus puts the error text in their place).
    for (const [key, s] of seen) {
      for (const [name, text] of Object.entries(s.annotations)) expect(text, `${key} annotation ${name}`).not.toMatch(/error expanding template|<no value>/);
    }

    // Every shipped rule (recording and alerting) evaluated without error on these real series.
    const allRules = ((await api('/api/v1/rules')).groups as any[]).flatMap((g) => g.rules as any[]);
    expect(allRules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);

    // 7. Record.
    const warnLine = a.logs.find(isRiskLine('warning'));
    const critLine = a.logs.find(isRiskLine('critical'));
    const rel = (t: number | undefined) => (t === undefined ? undefined : t - killAt);
    const result = {
      scrapeIntervalS: INTERVAL_S, evaluationIntervalS: INTERVAL_S, agentIntervalMs: 250, alertsPollMs: POLL_MS, polls,
      memoryLimitMiB: 96, ramp: RAMP_ARGS.join(' '),
      rulesFile: RULES, rulesLoaded: allRules.length,
      rulesEvaluated: rules.filter((r: any) => [...RISK_ALERTS, KILL_ALERT].includes(r.name)).map((r: any) => ({ name: r.name, query: r.query, durationS: r.duration })),
      firstRiskAlert: first[0],
      leadMs: killAt - first[1].t,
      leadMsFromActiveAt: killAt - first[1].activeAt,
      killAt: new Date(killAt).toISOString(),
      killSources: { agentKillLine: killLine!.time, commandExited: exitedLine()!.time, kernelCounterSeen: kernelKillSeenAt && new Date(kernelKillSeenAt).toISOString() },
      gateOpenedMsBeforeKill: killAt - gateAt,
      agentLogMsBeforeKill: { warning: warnLine && killAt - logMs(warnLine), critical: critLine && killAt - logMs(critLine) },
      alertStates: Object.fromEntries([...seen.entries()].map(([k, s]) => [k, {
        firstSeenMsRelKill: rel(s.t), activeAtMsRelKill: rel(s.activeAt), kernelOomKillAfter: s.oomKillAfter,
      }])),
      increaseOomKills5m: increase,
      descriptions: Object.fromEntries([...seen.entries()].map(([k, s]) => [k, s.annotations['description']])),
      oomKillsTotal: killLine!['oom_kills_total'],
    };
    writeFileSync(RESULT_FILE, JSON.stringify(result, null, 2) + '\n');
    console.log(`[prometheus-e2e] ${JSON.stringify(result)}`);
  }, 180_000);
});
