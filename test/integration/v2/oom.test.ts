// Real cgroup v2: an anonymous-memory ramp into memory.max (warning, critical, then the kernel's OOM
// kill, in that order, with the kernel's counters), and byte-exact working-set parity with the kernel.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import {
  CGROOT, MiB, RAMP, SKIP, title, ddWrite, ensureLoopback, exitOf, expectedView, flatKeyed, indexOf, kernelMemory,
  killLines, measure, riskLines, samplesAfter, scratchFs, stableBracket, stdoutHas,
} from './lib.js';

describe.skipIf(SKIP)(title('cgroup v2: OOM ramp and working set'), () => {
  let agent: Agent | undefined;
  beforeAll(() => ensureLoopback());
  afterEach(async () => { await agent?.stop(); agent = undefined; });
  afterAll(async () => { await removeAllCgroups(); });

  it('warns, then goes critical, then reports the kernel OOM kill with its exact counters', async () => {
    const limit = 96 * MiB;
    const cg = makeCgroup(CGROOT, 'oom', 2, limit);
    agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '250ms']);
    const a = agent;
    await waitFor('the first sample', async () => value(await a.metrics(), 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined);

    const ramp = cg.spawn(process.execPath, [RAMP, '--step-mib', '2', '--every-ms', '200', '--quiet']);
    const exit = await exitOf(ramp);
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    const kill = await waitFor('the OOM kill log line', () => killLines(a.logs)[0], 30_000);

    const risks = riskLines(a.logs);
    const warning = risks.find((l) => l['risk'] === 'warning');
    const critical = risks.find((l) => l['risk'] === 'critical');
    expect(warning, 'a warning line').toBeDefined();
    expect(critical, 'a critical line').toBeDefined();
    // Order of events, by position in the log (never by duration).
    expect(indexOf(a.logs, warning)).toBeLessThan(indexOf(a.logs, critical));
    expect(indexOf(a.logs, critical)).toBeLessThan(indexOf(a.logs, kill));
    expect(warning!['previous']).toBe('ok');
    expect(critical!['previous']).toBe('warning');
    expect(warning!['limit_bytes']).toBe(limit);
    expect(warning!['unreclaimable_bytes'] as number).toBeGreaterThanOrEqual(0.8 * limit);
    expect(critical!['unreclaimable_bytes'] as number).toBeGreaterThanOrEqual(0.9 * limit);
    expect(kill['oom_kills']).toBe(1);
    expect(kill['oom_kills_total']).toBe(1);

    // The cgroup is empty now, so memory.events no longer moves: the counters must match it exactly.
    await samplesAfter(a, 'app', Date.now());
    const events = flatKeyed(cg, 'memory.events');
    const series = await a.metrics();
    expect(events['oom_kill']).toBe(1);
    expect(value(series, 'headroom_oom_kills_total', { container: 'app' })).toBe(events['oom_kill']);
    for (const [event, n] of Object.entries(events)) {
      expect(value(series, 'headroom_memory_events_total', { container: 'app', event }), `event ${event}`).toBe(n);
    }
    expect(value(series, 'headroom_memory_limit_bytes', { container: 'app' })).toBe(limit);
    const peak = Number(cg.read('memory.peak').trim());
    expect(value(series, 'headroom_memory_peak_bytes', { container: 'app' })).toBe(peak);

    measure('oom ramp', {
      limit,
      warning_at: warning!.time, warning_unreclaimable: warning!['unreclaimable_bytes'],
      critical_at: critical!.time, critical_unreclaimable: critical!['unreclaimable_bytes'],
      kill_at: kill.time,
      warning_lead_ms: Date.parse(kill.time) - Date.parse(warning!.time),
      critical_lead_ms: Date.parse(kill.time) - Date.parse(critical!.time),
      kernel_events: events, kernel_peak: peak,
    });
  });

  it('exports usage = memory.current and working set = memory.current − inactive_file, to the byte', async () => {
    const scratch = scratchFs();
    const file = join(scratch.dir, `ws-${process.pid}.dat`);
    const cg = makeCgroup(CGROOT, 'ws', 2, 256 * MiB);
    try {
      agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '250ms']);
      // Page cache written and read back inside the cgroup (clean: conv=fsync), then 32 MiB of anon held.
      const script = `${ddWrite(scratch, file, 48, ['conv=fsync'])} && cat ${file} > /dev/null && exec "$0" "$@"`;
      const work = cg.spawn('/bin/sh', ['-c', script, process.execPath, RAMP, '--step-mib', '4', '--every-ms', '50', '--max-mib', '32'], { stdio: 'pipe' });
      const holding = stdoutHas(work, 'holding 32 MiB');
      await waitFor('the workload to hold 32 MiB', () => { if (work.exitCode !== null) throw new Error('workload exited'); return holding(); }, 120_000);

      const { kernel, series, tries } = await stableBracket(agent, 'app', () => kernelMemory(cg));
      const want = expectedView(kernel);
      const got = (name: string, extra: Record<string, string> = {}) => value(series, name, { container: 'app', ...extra });
      expect(kernel.stat['file']!, 'page cache from the scratch file is charged here').toBeGreaterThan(40 * MiB);
      expect(kernel.stat['anon']!).toBeGreaterThanOrEqual(32 * MiB);
      expect(got('headroom_memory_usage_bytes')).toBe(kernel.current);
      expect(got('headroom_memory_working_set_bytes')).toBe(kernel.current - kernel.stat['inactive_file']!);
      expect(got('headroom_memory_working_set_bytes')).toBe(want.workingSet);
      expect(got('headroom_memory_reclaimable_bytes')).toBe(want.reclaimable);
      expect(got('headroom_memory_unreclaimable_bytes')).toBe(want.unreclaimable);
      for (const type of ['anon', 'file', 'shmem', 'active_file', 'inactive_file', 'file_dirty', 'file_writeback', 'slab_reclaimable', 'kernel']) {
        expect(got('headroom_memory_bytes', { type }), `type ${type}`).toBe(kernel.stat[type]);
      }
      measure('working set parity', {
        scratch: scratch.kind, stable_after_tries: tries, memory_current: kernel.current,
        inactive_file: kernel.stat['inactive_file'], active_file: kernel.stat['active_file'], file: kernel.stat['file'],
        anon: kernel.stat['anon'], kernel: kernel.stat['kernel'], slab_reclaimable: kernel.stat['slab_reclaimable'],
        headroom_working_set: got('headroom_memory_working_set_bytes'), headroom_usage: got('headroom_memory_usage_bytes'),
        headroom_unreclaimable: got('headroom_memory_unreclaimable_bytes'), headroom_reclaimable: got('headroom_memory_reclaimable_bytes'),
      });
    } finally {
      rmSync(file, { force: true });
    }
  });
});
