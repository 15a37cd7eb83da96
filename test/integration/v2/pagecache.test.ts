// Real cgroup v2: a page-cache flood (a file twice the limit, written then read back inside the
// cgroup) fills the cgroup up to its limit with cache. That is normal and safe (DESIGN §3): no risk
// line, unreclaimable memory stays low, no OOM kill.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import {
  CGROOT, MiB, SKIP, title, ddWrite, ensureLoopback, exitOf, expectedView, flatKeyed, kernelMemory, killLines, measure,
  riskLines, samplesAfter, scratchFs,
} from './lib.js';

describe.skipIf(SKIP)(title('cgroup v2: page-cache flood'), () => {
  let agent: Agent | undefined;
  beforeAll(() => ensureLoopback());
  afterEach(async () => { await agent?.stop(); agent = undefined; });
  afterAll(async () => { await removeAllCgroups(); });

  it('fills the cgroup with page cache without a risk warning, an OOM kill or much unreclaimable memory', async () => {
    const limit = 64 * MiB;
    const scratch = scratchFs();
    const file = join(scratch.dir, `flood-${process.pid}.dat`);
    const cg = makeCgroup(CGROOT, 'flood', 2, limit);
    try {
      agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '250ms', '--peak-window', '30m']);
      const a = agent;
      await waitFor('the first sample', async () => value(await a.metrics(), 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined);

      const flood = cg.spawn('/bin/sh', ['-c', `${ddWrite(scratch, file, 128)} && cat ${file} > /dev/null`]);
      // Watch the kernel while it runs: how far did the cache really go, and the worst unreclaimable.
      const seen = { maxFile: 0, maxDirty: 0, maxUsage: 0, maxUnreclaimable: 0, maxHeadroomUnreclaimable: 0, samples: 0 };
      let done = false;
      const exit = exitOf(flood).finally(() => { done = true; });
      while (!done) {
        try {
          const k = kernelMemory(cg);
          seen.maxFile = Math.max(seen.maxFile, k.stat['file']!);
          seen.maxDirty = Math.max(seen.maxDirty, k.stat['file_dirty']! + k.stat['file_writeback']!);
          seen.maxUsage = Math.max(seen.maxUsage, k.current);
          seen.maxUnreclaimable = Math.max(seen.maxUnreclaimable, expectedView(k).unreclaimable);
          const u = value(await a.metrics(), 'headroom_memory_unreclaimable_bytes', { container: 'app' });
          if (u !== undefined) seen.maxHeadroomUnreclaimable = Math.max(seen.maxHeadroomUnreclaimable, u);
          seen.samples++;
        } catch { /* a read raced with the end of the run */ }
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await exit).toEqual({ code: 0, signal: null });
      await samplesAfter(a, 'app', Date.now());
      const series = await a.metrics();
      const events = flatKeyed(cg, 'memory.events');
      const end = kernelMemory(cg);

      // The flood really filled the cgroup with cache (and the kernel had to reclaim to stay at the limit).
      expect(seen.maxFile).toBeGreaterThan(0.75 * limit);
      expect(events['max']).toBeGreaterThan(0);
      // ... and that is not a risk.
      expect(riskLines(a.logs), 'no risk line ever').toEqual([]);
      expect(killLines(a.logs)).toEqual([]);
      expect(value(series, 'headroom_oom_risk', { container: 'app', level: 'ok' })).toBe(1);
      const unreclaimableMax = value(series, 'headroom_memory_unreclaimable_max_bytes', { container: 'app' })!;
      expect(unreclaimableMax).toBeLessThan(0.5 * limit);
      expect(seen.maxHeadroomUnreclaimable).toBeLessThan(0.5 * limit);
      expect(events['oom_kill']).toBe(0);
      expect(events['oom']).toBe(0);
      expect(value(series, 'headroom_oom_kills_total', { container: 'app' })).toBe(0);
      expect(value(series, 'headroom_memory_reclaimable_bytes', { container: 'app' })!).toBeGreaterThan(0.5 * limit);

      measure('page-cache flood', {
        scratch: scratch.kind, limit, file_written_mib: 128, polls: seen.samples,
        kernel_max_file: seen.maxFile, kernel_max_dirty_plus_writeback: seen.maxDirty, kernel_max_usage: seen.maxUsage,
        kernel_max_unreclaimable_by_formula: seen.maxUnreclaimable, headroom_unreclaimable_max_gauge: unreclaimableMax,
        headroom_unreclaimable_max_polled: seen.maxHeadroomUnreclaimable,
        end_usage: end.current, end_file: end.stat['file'], end_working_set_by_formula: expectedView(end).workingSet,
        headroom_working_set_max: value(series, 'headroom_memory_working_set_max_bytes', { container: 'app' }),
        kernel_events: events,
      });
    } finally {
      rmSync(file, { force: true });
    }
  });
});
