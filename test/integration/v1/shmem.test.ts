// Real cgroup v1: /dev/shm (tmpfs) is counted in the page cache (total_cache) but cannot be reclaimed
// without swap (DESIGN §3 trap 1): headroom must count it as unreclaimable, and warn on it.
import { existsSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { hasV1Memory, makeCgroup, ownV1MemoryDir, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { bracketedScrape, exitOf, firstLog, isRiskLine, kernelView, MiB, recordResult, dumpLogsOnFailure } from '../../helpers/v1.js';

describe.skipIf(!hasV1Memory() || !existsSync('/dev/shm'))('cgroup v1: /dev/shm is unreclaimable (needs root, v1 memory, /dev/shm)', () => {
  let agent: Agent | undefined;
  let shmFile: string | undefined;

  afterEach(async (ctx) => {
    dumpLogsOnFailure(ctx, agent);
    await agent?.stop();
    agent = undefined;
    // The tmpfs pages stay charged to the cgroup (and in RAM) until the file is removed.
    if (shmFile) rmSync(shmFile, { force: true });
    shmFile = undefined;
    await removeAllCgroups();
  });

  it('48 MiB in /dev/shm counts as shmem and unreclaimable, not reclaimable, and is warned about', async () => {
    // Formulas (v1): reclaimable = total_cache − total_shmem − dirty − writeback; unreclaimable =
    // usage − reclaimable. With 48 MiB of shmem and only a shell + sleep besides, usage is ~48.5 MiB:
    //   64M limit: 48.5/64 = 0.76, just below the 0.8 warning line (measured 50.7 MB of 67.1 MB = 0.756);
    //   56M limit: 48.5/56 = 0.87, between warning (0.8 = 44.8 MiB) and critical (0.9 = 50.4 MiB)
    //   with ~2 MiB margin either side. 56M makes the expected level unambiguous: warning.
    // The same 48 MiB as clean page cache would be reclaimable and give no warning (page-cache.test.ts).
    const limit = 56 * MiB;
    const cg = makeCgroup(ownV1MemoryDir(), 'hr-shmem', 1, limit);
    shmFile = `/dev/shm/headroom-test-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
    agent = await startAgent(['--cgroup', cg.dir, '--container', 'shm', '--interval', '200ms']);
    const a = agent;
    const c = { container: 'shm' };
    await waitFor('the first sample', async () => value(await a.metrics(), 'headroom_memory_usage_bytes', c) !== undefined);

    const child = cg.spawn('/bin/sh', ['-c', 'dd if=/dev/zero of="$1" bs=1M count=48 status=none && echo written && exec sleep 600', 'sh', shmFile], { stdio: 'pipe' });
    const exit = exitOf(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    await waitFor('the shm file to be written', () => out.includes('written'), 60_000);
    await waitFor('a risk line', () => a.logs.some((l) => l['risk'] !== undefined), 30_000);

    const b = await bracketedScrape(a, cg.dir, 'shm');
    expect(b, 'the kernel files held still across one scrape').toBeDefined();
    const { k, m, snap } = b!;
    const kv = kernelView(k);
    const shmem = value(m, 'headroom_memory_bytes', { ...c, type: 'shmem' })!;
    const file = value(m, 'headroom_memory_bytes', { ...c, type: 'file' })!;
    const unreclaimable = value(m, 'headroom_memory_unreclaimable_bytes', c)!;
    const reclaimable = value(m, 'headroom_memory_reclaimable_bytes', c)!;
    const workingSet = value(m, 'headroom_memory_working_set_bytes', c)!;

    // exactly the kernel's numbers
    expect(shmem).toBe(kv.shmem);
    expect(file).toBe(kv.file);
    expect(unreclaimable).toBe(kv.unreclaimable);
    expect(reclaimable).toBe(kv.reclaimable);
    expect(workingSet).toBe(kv.workingSet);

    expect(shmem).toBeGreaterThanOrEqual(45 * MiB);
    expect(file).toBeGreaterThanOrEqual(shmem); // v1 total_cache includes shmem
    expect(unreclaimable).toBeGreaterThanOrEqual(shmem);
    expect(reclaimable).toBeLessThanOrEqual(file - shmem); // shmem is not in it
    expect(reclaimable).toBeLessThan(4 * MiB);
    expect(snap.memory.pageCache).toBe(file - shmem);
    // tmpfs pages sit on the anon LRU, not inactive_file: the kubelet's working set includes them too
    expect(workingSet).toBeGreaterThanOrEqual(shmem);

    // What follows from the formulas: 0.8 <= unreclaimable/limit < 0.9 -> warning, never critical.
    const ratio = unreclaimable / limit;
    expect(ratio).toBeGreaterThanOrEqual(0.8);
    expect(ratio).toBeLessThan(0.9);
    expect(value(m, 'headroom_oom_risk', { ...c, level: 'warning' })).toBe(1);
    expect(snap.risk).toBe('warning');
    const w = firstLog(a.logs, isRiskLine('warning'));
    expect(w).toBeGreaterThanOrEqual(0);
    expect((a.logs[w]!['unreclaimable_bytes'] as number) / limit).toBeGreaterThanOrEqual(0.8);
    expect(a.logs.some(isRiskLine('critical'))).toBe(false);
    expect(value(m, 'headroom_oom_kills_total', c)).toBe(0);

    recordResult('c-shmem', {
      limit, ratio, kernel: { t: new Date(k.t).toISOString(), ...kv },
      headroom: { usage: snap.memory.usage, workingSet, file, shmem, pageCache: snap.memory.pageCache, reclaimable, unreclaimable, risk: snap.risk },
      warningLine: a.logs[w],
      ratioIfLimitWere64M: unreclaimable / (64 * MiB),
    });
    child.kill('SIGKILL');
    await exit;
  });
});
