// Real cgroup v2: PSI. Anonymous memory past memory.high (no swap: nothing to reclaim) throttles the
// allocator in mem_cgroup_handle_over_high, which the kernel counts as a memory stall. The agent's
// headroom_memory_pressure_seconds_total must rise and equal memory.pressure's total/1e6.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { CGROOT, MiB, RAMP, SKIP, title, bracket, ensureLoopback, flatKeyed, measure, psiTotals } from './lib.js';

describe.skipIf(SKIP)(title('cgroup v2: memory pressure (PSI)'), () => {
  let agent: Agent | undefined;
  beforeAll(() => ensureLoopback());
  afterEach(async () => { await agent?.stop(); agent = undefined; });
  afterAll(async () => { await removeAllCgroups(); });

  it('exports the kernel PSI stall totals, rising under memory.high throttling', async () => {
    const high = 48 * MiB;
    const cg = makeCgroup(CGROOT, 'psi', 2);
    writeFileSync(join(cg.dir, 'memory.high'), String(high));
    agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '250ms']);
    const a = agent;
    const pressure = (s: Awaited<ReturnType<Agent['metrics']>>, kind: string) =>
      value(s, 'headroom_memory_pressure_seconds_total', { container: 'app', kind });

    // Start: an idle, empty cgroup.
    const start = await bracket(a, 'app', () => psiTotals(cg));
    const startSome = pressure(start.series, 'some')!;
    expect(startSome).toBeDefined();
    expect(start.k0.some).toBeLessThanOrEqual(Math.round(startSome * 1e6));
    expect(Math.round(startSome * 1e6)).toBeLessThanOrEqual(start.k1.some);

    const work = cg.spawn(process.execPath, [RAMP, '--step-mib', '2', '--every-ms', '50', '--max-mib', '96', '--quiet']);
    try {
      // Wait until the kernel has throttled for a while (memory.events high, stall time > 2 s).
      await waitFor('memory.high throttling', () => flatKeyed(cg, 'memory.events')['high']! > 0 && psiTotals(cg).some > 2_000_000, 120_000, 250);
      expect(work.exitCode, 'the workload is throttled, not killed').toBeNull();

      // End: the counter the agent exports sits between two kernel reads around its sample.
      const end = await bracket(a, 'app', () => ({ psi: psiTotals(cg), events: flatKeyed(cg, 'memory.events') }));
      const some = pressure(end.series, 'some')!;
      const full = pressure(end.series, 'full')!;
      expect(some).toBeGreaterThan(0);
      expect(some).toBeGreaterThan(startSome);
      for (const [kind, v] of [['some', some], ['full', full]] as const) {
        const us = Math.round(v * 1e6);
        expect(us, `${kind} >= kernel total read before the sample`).toBeGreaterThanOrEqual(end.k0.psi[kind]);
        expect(us, `${kind} <= kernel total read after the scrape`).toBeLessThanOrEqual(end.k1.psi[kind]);
      }
      const highEvents = value(end.series, 'headroom_memory_events_total', { container: 'app', event: 'high' })!;
      expect(highEvents).toBeGreaterThanOrEqual(end.k0.events['high']!);
      expect(highEvents).toBeLessThanOrEqual(end.k1.events['high']!);
      expect(value(end.series, 'headroom_memory_high_bytes', { container: 'app' })).toBe(high);
      expect(value(end.series, 'headroom_memory_limit_bytes', { container: 'app' }), 'memory.max is max: no limit series').toBeUndefined();

      // No limit (memory.max is max): memory.high throttles but never OOM-kills, so no OOM risk at all,
      // although the agent sampled the throttling (the events and stalls above). Pressure raises risk
      // only with most of a limit unreclaimable (--pressure-min-ratio; risk-causes.test.ts).
      expect(a.logs.filter((l) => typeof l['risk'] === 'string').map((l) => l.msg)).toEqual([]);

      measure('psi', {
        memory_high: high,
        start: { kernel_some_us_before: start.k0.some, headroom_some_s: startSome, kernel_some_us_after: start.k1.some },
        end: {
          kernel_some_us_before: end.k0.psi.some, headroom_some_s: some, kernel_some_us_after: end.k1.psi.some,
          kernel_full_us_before: end.k0.psi.full, headroom_full_s: full, kernel_full_us_after: end.k1.psi.full,
          kernel_high_events_before: end.k0.events['high'], headroom_high_events: highEvents, kernel_high_events_after: end.k1.events['high'],
        },
      });
    } finally {
      work.kill('SIGKILL');
    }
  });
});
