// Real cgroup v2: the time-to-OOM prediction on a steady anonymous-memory ramp into memory.max.
// The ETA is exported while the ramp runs (snapshot API and headroom_oom_eta_seconds), is finite,
// comes with a positive growth and falls as the limit nears; risk goes warning (from the
// prediction, well below the 80 % line), then critical, then the kernel OOM-kills. The thresholds
// are scaled down by flags (as in test/integration/v1/eta.test.ts) so the ramp takes seconds; the
// test asserts order (log positions) and values, never durations: the VM may be emulated (TCG).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent, type LogLine } from '../../helpers/agent.js';
import { makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { CGROOT, MiB, RAMP, SKIP, title, ensureLoopback, exitOf, flatKeyed, indexOf, killLines, measure, riskLines } from './lib.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface EtaSeen {
  readonly sampledAt: string;
  readonly eta: number;
  readonly growth: number | null;
  readonly unreclaimable: number;
}

describe.skipIf(SKIP)(title('cgroup v2: time to OOM'), () => {
  let agent: Agent | undefined;
  beforeAll(() => ensureLoopback());
  afterEach(async (ctx) => {
    // A failed run on a slow VM is hard to repeat: print the agent's log, the first thing to look at.
    if (ctx.task.result?.state === 'fail' && agent) {
      console.log(`[eta] agent log of the failed test:\n${agent.logs.slice(-80).map((l) => JSON.stringify(l).slice(0, 500)).join('\n')}`);
    }
    await agent?.stop();
    agent = undefined;
  });
  afterAll(async () => { await removeAllCgroups(); });

  it('exports a finite, falling ETA during a ramp and warns from it (warning, then critical) before the kernel OOM kill', async () => {
    const limit = 160 * MiB;
    const cg = makeCgroup(CGROOT, 'eta', 2, limit);
    agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '250ms', '--risk-clear-samples', '1000',
      '--eta-window', '10s', '--eta-warning', '30s', '--eta-critical', '8s']);
    const a = agent;
    await waitFor('the first sample of app', async () => value(await a.metrics(), 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined);

    // 4 MiB/s of anonymous memory until the kernel kills it
    const ramp = cg.spawn(process.execPath, [RAMP, '--step-mib', '1', '--every-ms', '250', '--quiet']);
    const exit = exitOf(ramp);
    let exited = false;
    void exit.then(() => { exited = true; });

    // Poll the snapshot API (every new sample with an ETA) and, now and then, the metric.
    const etas: EtaSeen[] = [];
    const metricEtas: number[] = [];
    let polls = 0;
    let failedPolls = 0;
    const deadline = Date.now() + 240_000;
    while (!exited && Date.now() < deadline) {
      try {
        const s = (await a.snapshot()).containers.find((c: { container: string }) => c.container === 'app');
        // Only samples from before the kill: the exit event arrives here a poll or two late, and a
        // sample taken while the kernel frees the killed process's memory still has an ETA (the
        // level is the median of the last three samples) with a lower unreclaimable.
        if (s?.memory && typeof s.eta === 'number' && !(s.oomKills > 0) && etas.at(-1)?.sampledAt !== s.sampledAt) {
          etas.push({ sampledAt: s.sampledAt, eta: s.eta, growth: s.growthBytesPerSecond, unreclaimable: s.memory.unreclaimable });
        }
        if (polls++ % 5 === 0) {
          const m = value(await a.metrics(), 'headroom_oom_eta_seconds', { container: 'app' });
          if (m !== undefined) metricEtas.push(m);
        }
      } catch {
        failedPolls++; // a busy (emulated) machine can fail one request; keep going
      }
      await sleep(100);
    }
    expect(exited, 'the ramp ended (killed) within the deadline').toBe(true);
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
    const kill = await waitFor('the OOM kill log line', () => killLines(a.logs)[0], 60_000);

    // The ETA was there, finite, with a positive growth, and fell as the ramp went on.
    expect(etas.length, 'ETA values seen in the snapshot during the ramp').toBeGreaterThanOrEqual(3);
    for (const e of etas) {
      expect(Number.isFinite(e.eta), `finite ETA ${e.eta} at ${e.sampledAt}`).toBe(true);
      expect(e.eta).toBeGreaterThanOrEqual(0);
      expect(e.growth, `growth at ${e.sampledAt}`).toBeGreaterThan(0);
    }
    const first = etas[0]!;
    const last = etas.at(-1)!;
    expect(last.eta).toBeLessThan(first.eta);
    expect(last.unreclaimable).toBeGreaterThan(first.unreclaimable);
    // Falling throughout, not just at the two ends: the last third of the values lies below the first third.
    const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a[Math.floor(a.length / 2)]!; };
    const third = Math.max(1, Math.floor(etas.length / 3));
    const earlyMedian = median(etas.slice(0, third).map((e) => e.eta));
    const lateMedian = median(etas.slice(-third).map((e) => e.eta));
    expect(lateMedian, 'median ETA of the last third vs the first third').toBeLessThan(earlyMedian);
    expect(metricEtas.length, 'headroom_oom_eta_seconds scraped during the ramp').toBeGreaterThanOrEqual(1);
    for (const m of metricEtas) {
      expect(Number.isFinite(m)).toBe(true);
      expect(m).toBeGreaterThanOrEqual(0);
    }

    // warning, then critical, then the kill, by position in the log (never by duration)
    const risks = riskLines(a.logs);
    const warning = risks.find((l) => l['risk'] === 'warning');
    const critical = risks.find((l) => l['risk'] === 'critical');
    expect(warning, 'a risk=warning line').toBeDefined();
    expect(critical, 'a risk=critical line').toBeDefined();
    const warn = warning as LogLine;
    const crit = critical as LogLine;
    expect(indexOf(a.logs, warn)).toBeLessThan(indexOf(a.logs, crit));
    expect(indexOf(a.logs, crit)).toBeLessThan(indexOf(a.logs, kill));
    expect(warn['previous']).toBe('ok');
    expect(crit['previous']).toBe('warning');

    // The warning came from the prediction, while unreclaimable memory was well below the 80 % line.
    expect(String(warn['cause'])).toMatch(/OOM predicted within 30 s/);
    expect(String(warn['cause'])).not.toMatch(/unreclaimable memory at/);
    expect(warn['limit_bytes']).toBe(limit);
    const warnRatio = (warn['unreclaimable_bytes'] as number) / limit;
    expect(warnRatio, 'unreclaimable/limit at the warning').toBeLessThan(0.7);
    expect(typeof warn['eta_seconds']).toBe('number');
    expect(warn['eta_seconds'] as number).toBeLessThanOrEqual(30);
    expect(warn['eta_seconds'] as number).toBeGreaterThan(8);
    expect(warn['growth_bytes_per_second'] as number).toBeGreaterThan(0);
    expect(warn.msg).toMatch(/growing .*\/s, OOM in ~\d+ s at this rate/);
    expect(typeof crit['cause']).toBe('string');
    expect(kill['oom_kills']).toBe(1);

    // The cgroup is empty now: the kernel's own count.
    const events = flatKeyed(cg, 'memory.events');
    expect(events['oom_kill']).toBe(1);

    const ratio = (l: LogLine) => Math.round(((l['unreclaimable_bytes'] as number) / limit) * 1000) / 1000;
    measure('eta ramp', {
      limit,
      eta_samples: etas.length, metric_eta_samples: metricEtas.length, polls, failed_polls: failedPolls,
      first_eta: first, last_eta_before_kill: last, eta_median_first_third: earlyMedian, eta_median_last_third: lateMedian,
      metric_eta_first: metricEtas[0], metric_eta_last: metricEtas.at(-1),
      warning: { time: warn.time, cause: warn['cause'], eta_seconds: warn['eta_seconds'], growth: warn['growth_bytes_per_second'], ratio: ratio(warn) },
      critical: { time: crit.time, cause: crit['cause'], eta_seconds: crit['eta_seconds'], growth: crit['growth_bytes_per_second'], ratio: ratio(crit) },
      kill_at: kill.time,
      warning_lead_ms: Date.parse(kill.time) - Date.parse(warn.time),
      critical_lead_ms: Date.parse(kill.time) - Date.parse(crit.time),
      kernel_events: events,
    });
  });
});
