// Real cgroup v1 (root, this machine): an anonymous-memory ramp into a limit is warned about before
// the kernel OOM-kills it, the kill is counted exactly like the kernel counts it, and the working set
// matches the kubelet/cAdvisor formula byte for byte on the kernel's own files.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/agent.js';
import { hasV1Memory, makeCgroup, ownV1MemoryDir } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { bracketedScrape, exitOf, firstLog, isKillLine, isRiskLine, kernelView, logMs, MiB, RAMP, readKernelV1, recordResult, sleep, type KernelV1, v1Session } from '../../helpers/v1.js';

const SKIP = !hasV1Memory();

describe.skipIf(SKIP)('cgroup v1: anonymous memory (needs root and a v1 memory controller)', () => {
  const session = v1Session();

  it('warns (warning, then critical) before the kernel OOM-kills an anon ramp, and counts exactly that one kill', async () => {
    const limit = 96 * MiB;
    const cg = makeCgroup(ownV1MemoryDir(), 'hr-anon-oom', 1, limit);
    const a = await session.start(['--cgroup', cg.dir, '--container', 'app', '--interval', '200ms', '--risk-clear-samples', '1000']);

    const before = await waitFor('the first sample of app', async () => {
      const m = await a.metrics();
      return value(m, 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined ? m : undefined;
    });
    expect(value(before, 'headroom_oom_kills_total', { container: 'app' })).toBe(0);
    expect(value(before, 'headroom_memory_limit_bytes', { container: 'app' })).toBe(limit);
    expect(value(before, 'headroom_oom_risk', { container: 'app', level: 'ok' })).toBe(1);
    expect(readKernelV1(cg.dir).oomKill).toBe(0);

    const child = cg.spawn(process.execPath, [RAMP, '--step-mib', '1', '--every-ms', '100', '--quiet']);
    const exit = exitOf(child);
    let exitedAt: number | undefined;
    void exit.then(() => { exitedAt = Date.now(); });

    // While it ramps: kernel files, then headroom's snapshot, then the kernel files again.
    const pairs: Array<{ k1: KernelV1; k2: KernelV1; snap: any }> = [];
    const deadline = Date.now() + 90_000;
    while (exitedAt === undefined && Date.now() < deadline) {
      try {
        const k1 = readKernelV1(cg.dir);
        const snap = (await a.snapshot()).containers.find((c: any) => c.container === 'app');
        const k2 = readKernelV1(cg.dir);
        if (snap?.memory) pairs.push({ k1, k2, snap });
      } catch { /* the snapshot can fail while the machine is busy; keep going */ }
      await sleep(100);
    }
    const { code, signal } = await exit;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });

    await waitFor('the OOM kill log line', () => a.logs.some(isKillLine), 30_000);
    const warnIdx = firstLog(a.logs, isRiskLine('warning'));
    const critIdx = firstLog(a.logs, isRiskLine('critical'));
    const killIdx = firstLog(a.logs, isKillLine);
    expect(warnIdx, 'a risk=warning line').toBeGreaterThanOrEqual(0);
    expect(critIdx, 'a risk=critical line').toBeGreaterThan(warnIdx);
    expect(killIdx, 'the kill line comes after both').toBeGreaterThan(critIdx);

    const warn = a.logs[warnIdx]!;
    const crit = a.logs[critIdx]!;
    const kill = a.logs[killIdx]!;
    expect(warn.level).toBe('warn');
    expect(warn['limit_bytes']).toBe(limit);
    expect((warn['unreclaimable_bytes'] as number) / limit).toBeGreaterThanOrEqual(0.8);
    expect((crit['unreclaimable_bytes'] as number) / limit).toBeGreaterThanOrEqual(0.9);
    expect(kill).toMatchObject({ container: 'app', oom_kills: 1, oom_kills_total: 1 });
    expect(a.logs.filter(isKillLine)).toHaveLength(1);

    // The kernel counted one kill, and headroom exports exactly the kernel's number.
    const kernel = readKernelV1(cg.dir);
    expect(kernel.oomKill).toBe(1);
    const after = await waitFor('oom_kills_total 1', async () => {
      const m = await a.metrics();
      return value(m, 'headroom_oom_kills_total', { container: 'app' }) === 1 ? m : undefined;
    });
    expect(value(after, 'headroom_oom_kills_total', { container: 'app' })).toBe(kernel.oomKill);
    // risk-clear-samples 1000: the level stays where the ramp left it
    expect(value(after, 'headroom_oom_risk', { container: 'app', level: 'critical' })).toBe(1);

    // For the closing-note table: the last reads while the ramp was still alive, preferring those
    // where the kernel did not change across the snapshot and headroom's sample shows the same usage.
    const consistent = pairs.filter((p) => p.k1.usage === p.k2.usage && p.snap.memory.usage === p.k1.usage);
    const last = (consistent.length > 0 ? consistent : pairs).slice(-2).map(({ k1, k2, snap }) => ({
      kernelBefore: { t: new Date(k1.t).toISOString(), ...kernelView(k1) },
      headroom: { sampledAt: snap.sampledAt, ...snap.memory, breakdown: snap.memory.breakdown },
      kernelAfter: { t: new Date(k2.t).toISOString(), ...kernelView(k2) },
    }));
    recordResult('a-anon-oom', {
      limit,
      warning: { time: warn.time, unreclaimable: warn['unreclaimable_bytes'], ratio: (warn['unreclaimable_bytes'] as number) / limit, workingSet: warn['working_set_bytes'], usage: warn['usage_bytes'], reclaimable: warn['reclaimable_bytes'] },
      critical: { time: crit.time, unreclaimable: crit['unreclaimable_bytes'], ratio: (crit['unreclaimable_bytes'] as number) / limit },
      killLogged: kill.time,
      workloadExitSeenByTest: exitedAt === undefined ? null : new Date(exitedAt).toISOString(),
      leadMs: {
        warningToKillLog: logMs(kill) - logMs(warn),
        criticalToKillLog: logMs(kill) - logMs(crit),
        warningToExitSeenByTest: exitedAt === undefined ? null : exitedAt - logMs(warn),
      },
      kernelOomKill: kernel.oomKill,
      headroomOomKillsTotal: value(after, 'headroom_oom_kills_total', { container: 'app' }),
      lastReadsBeforeKillConsistent: consistent.length > 0,
      lastReadsBeforeKill: last,
    });
  });

  it('working set, usage and file cache equal the kernel files exactly (anon + clean page cache)', async () => {
    const scratch = session.scratch();
    const cg = makeCgroup(ownV1MemoryDir(), 'hr-ws-parity', 1, 256 * MiB);
    const a = await session.start(['--cgroup', cg.dir, '--container', 'app', '--interval', '200ms']);
    // 30 MiB of clean page cache (fsync: no dirty pages left), then 40 MiB of anon memory, held.
    const child = cg.spawn('/bin/sh', ['-c',
      `dd if=/dev/zero of="$1" bs=1M count=30 conv=fsync status=none && exec "$2" "$3" --max-mib 40 --step-mib 8 --every-ms 20 --quiet`,
      'sh', `${scratch}/cache.dat`, process.execPath, RAMP]);
    const exit = exitOf(child);

    // (a few KiB may stay dirty: ext4 metadata dirtied by the cgroup's tasks is charged to it too)
    let lastView: ReturnType<typeof kernelView> | undefined;
    await waitFor('the workload to hold 40 MiB anon + 30 MiB clean cache', () => {
      const k = lastView = kernelView(readKernelV1(cg.dir));
      return k.anon >= 40 * MiB && k.file >= 30 * MiB && k.dirty + k.writeback < MiB;
    }, 60_000, 100).catch((err: Error) => { throw new Error(`${err.message}; last kernel view ${JSON.stringify(lastView)}`); });

    const checked = await bracketedScrape(a, cg.dir, 'app');
    expect(checked, 'the kernel files stayed unchanged across one scrape (30 attempts)').toBeDefined();
    const { k, m, attempts } = checked!;
    const kv = kernelView(k);
    const c = { container: 'app' };
    expect(value(m, 'headroom_memory_usage_bytes', c)).toBe(k.usage);
    expect(value(m, 'headroom_memory_working_set_bytes', c)).toBe(k.usage - k.stat.get('total_inactive_file')!);
    expect(value(m, 'headroom_memory_bytes', { ...c, type: 'file' })).toBe(k.stat.get('total_cache'));
    expect(value(m, 'headroom_memory_bytes', { ...c, type: 'anon' })).toBe(k.stat.get('total_rss'));
    expect(value(m, 'headroom_memory_bytes', { ...c, type: 'inactive_file' })).toBe(k.stat.get('total_inactive_file'));
    expect(value(m, 'headroom_memory_bytes', { ...c, type: 'shmem' })).toBe(k.stat.get('total_shmem'));
    expect(value(m, 'headroom_memory_reclaimable_bytes', c)).toBe(kv.reclaimable);
    expect(value(m, 'headroom_memory_unreclaimable_bytes', c)).toBe(kv.unreclaimable);
    expect(value(m, 'headroom_memory_limit_bytes', c)).toBe(256 * MiB);
    // The formula matters here: the clean cache is (mostly) inactive, so the working set is well below usage.
    expect(kv.workingSet).toBeLessThan(k.usage - 20 * MiB);
    expect(value(m, 'headroom_oom_kills_total', c)).toBe(0);
    recordResult('a-working-set-parity', { attempts, kernel: { t: new Date(k.t).toISOString(), ...kv }, headroom: {
      usage: value(m, 'headroom_memory_usage_bytes', c), workingSet: value(m, 'headroom_memory_working_set_bytes', c),
      file: value(m, 'headroom_memory_bytes', { ...c, type: 'file' }), reclaimable: value(m, 'headroom_memory_reclaimable_bytes', c),
      unreclaimable: value(m, 'headroom_memory_unreclaimable_bytes', c),
    } });
    child.kill('SIGKILL');
    await exit;
  });
});
