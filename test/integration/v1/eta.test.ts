// Real cgroup v1 (root, this machine): the time-to-OOM prediction on a steady anonymous-memory ramp.
// The ETA is exported while the ramp runs, is finite and falls as the limit nears, and raises risk
// (warning, then critical) before the kernel OOM-kills. The thresholds are scaled down by flags so
// the ramp takes seconds, not minutes; the test asserts order and values, never durations.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/agent.js';
import { hasV1Memory, makeCgroup, ownV1MemoryDir } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { exitOf, firstLog, isKillLine, isRiskLine, logMs, MiB, RAMP, readKernelV1, recordResult, sleep, v1Session } from '../../helpers/v1.js';

describe.skipIf(!hasV1Memory())('cgroup v1: time to OOM (needs root and a v1 memory controller)', () => {
  const session = v1Session();

  it('exports a finite, falling ETA during a ramp, and warns (warning, then critical) from it before the kill', async () => {
    const limit = 160 * MiB;
    const cg = makeCgroup(ownV1MemoryDir(), 'hr-eta', 1, limit);
    const a = await session.start(['--cgroup', cg.dir, '--container', 'app', '--interval', '200ms', '--risk-clear-samples', '1000',
      '--eta-window', '10s', '--eta-warning', '30s', '--eta-critical', '8s']);
    await waitFor('the first sample of app', async () => value(await a.metrics(), 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined);

    // 4 MiB/s of anonymous memory until the kernel kills it
    const child = cg.spawn(process.execPath, [RAMP, '--step-mib', '1', '--every-ms', '250', '--quiet']);
    const exit = exitOf(child);
    let exited = false;
    void exit.then(() => { exited = true; });

    const etas: Array<{ sampledAt: string; eta: number; growth: number | null; unreclaimable: number }> = [];
    const deadline = Date.now() + 100_000;
    while (!exited && Date.now() < deadline) {
      try {
        const s = (await a.snapshot()).containers.find((c: any) => c.container === 'app');
        // only samples from before the kill (as in v2/eta.test.ts): one taken while the kernel frees
        // the killed process's memory belongs to no ramp
        if (s?.memory && typeof s.eta === 'number' && !(s.oomKills > 0) && etas.at(-1)?.sampledAt !== s.sampledAt) {
          etas.push({ sampledAt: s.sampledAt, eta: s.eta, growth: s.growthBytesPerSecond, unreclaimable: s.memory.unreclaimable });
        }
      } catch { /* a busy machine can fail one snapshot; keep going */ }
      await sleep(100);
    }
    const { signal } = await exit;
    expect(signal).toBe('SIGKILL');
    await waitFor('the OOM kill log line', () => a.logs.some(isKillLine), 30_000);

    // The ETA was there, finite, positive growth, and fell as the ramp went on.
    expect(etas.length, 'ETA values seen during the ramp').toBeGreaterThanOrEqual(3);
    for (const e of etas) {
      expect(Number.isFinite(e.eta)).toBe(true);
      expect(e.eta).toBeGreaterThanOrEqual(0);
      expect(e.growth).toBeGreaterThan(0);
    }
    const first = etas[0]!;
    const last = etas.at(-1)!;
    expect(last.eta).toBeLessThan(first.eta);
    expect(last.unreclaimable).toBeGreaterThan(first.unreclaimable);

    const warnIdx = firstLog(a.logs, isRiskLine('warning'));
    const critIdx = firstLog(a.logs, isRiskLine('critical'));
    const killIdx = firstLog(a.logs, isKillLine);
    expect(warnIdx, 'a risk=warning line').toBeGreaterThanOrEqual(0);
    expect(critIdx, 'a risk=critical line after it').toBeGreaterThan(warnIdx);
    expect(killIdx, 'the kill line after both').toBeGreaterThan(critIdx);
    const warn = a.logs[warnIdx]!;
    const crit = a.logs[critIdx]!;
    const kill = a.logs[killIdx]!;
    // The warning came from the prediction, well below the 80 % line.
    expect((warn['unreclaimable_bytes'] as number) / limit).toBeLessThan(0.7);
    expect(typeof warn['eta_seconds']).toBe('number');
    expect(warn['eta_seconds'] as number).toBeLessThanOrEqual(30);
    expect(String(warn['cause'])).toMatch(/OOM predicted within 30 s/);
    expect(warn.msg).toMatch(/growing .*\/s, OOM in ~\d+ s at this rate/);
    expect(typeof crit['cause']).toBe('string');
    expect(readKernelV1(cg.dir).oomKill).toBe(1);

    recordResult('c-eta-ramp', {
      limit,
      etaSamples: etas.length,
      firstEta: first,
      lastEtaBeforeKill: last,
      warning: { time: warn.time, cause: warn['cause'], eta: warn['eta_seconds'], growth: warn['growth_bytes_per_second'], ratio: (warn['unreclaimable_bytes'] as number) / limit, msg: warn.msg },
      critical: { time: crit.time, cause: crit['cause'], eta: crit['eta_seconds'], growth: crit['growth_bytes_per_second'], ratio: (crit['unreclaimable_bytes'] as number) / limit, msg: crit.msg },
      killLogged: kill.time,
      leadMs: { warningToKillLog: logMs(kill) - logMs(warn), criticalToKillLog: logMs(kill) - logMs(crit) },
    });
  });
});
