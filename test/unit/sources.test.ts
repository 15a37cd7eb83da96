// Readers and derived numbers over files captured from real kernels (test/fixtures/README.md):
// v1 from this machine (6.18), v2 from ../shared/cgv2vm (6.1). Expected values are worked out by
// hand from the captured files, so a change in a formula shows up here.
import { cpSync, mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryView } from '../../agent/analysis/memory.js';
import { readCgroupV1 } from '../../agent/sources/cgroup-v1.js';
import { readCgroupV2, readAncestorLimitV2 } from '../../agent/sources/cgroup-v2.js';
import { detectLayout, versionOfDir } from '../../agent/sources/cgroup.js';
import { parseSmapsRollup, parseProcStat } from '../../agent/sources/procfs.js';
import { consistentUsage, statTotal } from '../../agent/sources/usage.js';
import { readFileSync } from 'node:fs';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'headroom-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A writable copy of a fixture case, to break on purpose. */
function copyCase(rel: string): string {
  const dir = join(tmp, rel.replace(/\//g, '_') + Math.random().toString(36).slice(2, 6));
  cpSync(join(FIX, rel), dir, { recursive: true });
  return dir;
}

describe('cgroup v1 fixtures (kernel 6.18)', () => {
  it.each([
    // case, usage, workingSet, reclaimable, unreclaimable, limit
    ['idle', 262144, 262144, 0, 262144, undefined],
    ['anon', 107999232, 107999232, 0, 107999232, 268435456],
    // page cache: 152064000 inactive; reclaimable = total_cache − shmem − dirty(8192) − writeback;
    // the 8192 dirty bytes are in flight: neither reclaimable nor unreclaimable
    ['pagecache', 156766208, 156766208 - 152064000, 152117248 - 8192, 156766208 - (152117248 - 8192) - 8192, 268435456],
    // /dev/shm: all of total_cache is total_shmem, so none of it is reclaimable
    ['shmem', 84717568, 84717568, 0, 84717568, 268435456],
  ])('%s', async (name, usage, ws, rec, unrec, limit) => {
    const r = await readCgroupV1(join(FIX, 'v1', name));
    expect(r.errors).toEqual([]);
    const v = memoryView(r.memory!);
    expect({ usage: v.usage, ws: v.workingSet, rec: v.reclaimable, unrec: v.unreclaimable, limit: v.limit }).toEqual({ usage, ws, rec, unrec, limit });
  });

  it('shmem case: shmem in the breakdown, counted as unreclaimable, kmem as kernel', async () => {
    const v = memoryView((await readCgroupV1(join(FIX, 'v1/shmem'))).memory!);
    expect(v.breakdown.get('shmem')).toBe(83886080);
    expect(v.breakdown.get('file')).toBe(83886080);
    expect(v.breakdown.get('kernel')).toBe(266240);
    expect(v.unreclaimable).toBeGreaterThanOrEqual(83886080);
  });

  it('oom case: oom_kill and failcnt as the kernel printed them', async () => {
    const m = (await readCgroupV1(join(FIX, 'v1/oom'))).memory!;
    expect(m.oomControl?.get('oom_kill')).toBe(1);
    expect(m.failcnt).toBe(242);
    expect(m.peak).toBe(67108864);
    expect(m.hierarchicalLimit).toBe(67108864);
  });

  it('refault keys of 6.18 are there (total_workingset_refault_anon/file)', async () => {
    const m = (await readCgroupV1(join(FIX, 'v1/anon'))).memory!;
    expect(m.stat.has('total_workingset_refault_anon')).toBe(true);
    expect(m.stat.has('total_workingset_refault_file')).toBe(true);
  });
});

describe('cgroup v2 fixtures (kernel 6.1)', () => {
  it.each([
    ['idle', 233472, 233472 - 40960, 45056 + 3864, 233472 - (45056 + 3864), undefined],
    ['anon', 115163136, 115163136 - 7057408, 7057408 + 86728, 115163136 - (7057408 + 86728), 268435456],
    ['pagecache', 157925376, 157925376 - 157372416, 157376512 + 366712, 157925376 - (157376512 + 366712), 268435456],
    // shmem sits on the anon LRU: inactive_file is 0, so the kubelet's working set includes it too
    ['shmem', 84262912, 84262912, 193392, 84262912 - 193392, 268435456],
    ['oom', 196608, 196608, 0, 196608, 67108864],
  ])('%s', async (name, usage, ws, rec, unrec, limit) => {
    const r = await readCgroupV2(join(FIX, 'v2', name));
    expect(r.errors).toEqual([]);
    const v = memoryView(r.memory!);
    expect({ usage: v.usage, ws: v.workingSet, rec: v.reclaimable, unrec: v.unreclaimable, limit: v.limit }).toEqual({ usage, ws, rec, unrec, limit });
  });

  it('memory.current equals anon + file + kernel on 6.1', async () => {
    const m = (await readCgroupV2(join(FIX, 'v2/anon'))).memory!;
    expect(m.usage).toBe(m.stat.get('anon')! + m.stat.get('file')! + m.stat.get('kernel')!);
  });

  it('oom case: memory.events with oom_kill and oom_group_kill, peak at the limit', async () => {
    const m = (await readCgroupV2(join(FIX, 'v2/oom'))).memory!;
    expect(Object.fromEntries(m.events!)).toEqual({ low: 0, high: 0, max: 35, oom: 1, oom_kill: 1, oom_group_kill: 0 });
    expect(m.peak).toBe(67108864);
  });

  it('pressure case: memory.high and PSI totals', async () => {
    const m = (await readCgroupV2(join(FIX, 'v2/pressure'))).memory!;
    expect(m.high).toBe(67108864);
    expect(m.limit).toBeUndefined();
    expect(m.pressure?.some.totalUs).toBe(14908202);
    expect(m.pressure?.full?.avg10).toBe(76.05);
    expect(m.events?.get('high')).toBe(153);
  });

  it('sidecar: the files read through /proc/PID/root are a normal cgroup', async () => {
    const dir = join(FIX, 'v2/sidecar/via-proc-root');
    expect(await versionOfDir(dir)).toBe(2);
    expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')).toContain('361');
  });
});

describe('bad input: never a made-up number', () => {
  it('missing optional files (memory.peak before 5.19, no swap accounting, no PSI) are absent, not errors', async () => {
    const dir = copyCase('v2/anon');
    for (const f of ['memory.peak', 'memory.swap.current', 'memory.pressure']) unlinkSync(join(dir, f));
    const r = await readCgroupV2(dir);
    expect(r.errors).toEqual([]);
    expect(r.memory?.peak).toBeUndefined();
    expect(r.memory?.pressure).toBeUndefined();
    expect(memoryView(r.memory!).breakdown.has('swap')).toBe(false);
  });

  it('a truncated memory.stat is a PARSE error naming file and line; no memory numbers at all', async () => {
    const dir = copyCase('v2/anon');
    writeFileSync(join(dir, 'memory.stat'), 'anon 107720704\nfile\n');
    const r = await readCgroupV2(dir);
    expect(r.memory).toBeUndefined();
    expect(r.gone).toBe(false);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ source: 'memory.stat', code: 'PARSE' });
    expect(r.errors[0]!.message).toMatch(/memory\.stat line 2/);
  });

  it('a non-numeric memory.max is an error, and the limit is absent rather than guessed', async () => {
    const dir = copyCase('v2/anon');
    writeFileSync(join(dir, 'memory.max'), 'lots\n');
    const r = await readCgroupV2(dir);
    expect(r.memory?.limit).toBeUndefined();
    expect(r.errors.map((e) => e.source)).toEqual(['memory.max']);
  });

  it('garbage in optional files is reported, the rest still read', async () => {
    const dir = copyCase('v1/anon');
    writeFileSync(join(dir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom\n');
    const r = await readCgroupV1(dir);
    expect(r.memory?.usage).toBe(107999232);
    expect(r.memory?.oomControl).toBeUndefined();
    expect(r.errors.map((e) => e.source)).toEqual(['memory.oom_control']);
  });

  it('a cgroup removed under us is "gone", not an error', async () => {
    const dir = copyCase('v1/idle');
    rmSync(dir, { recursive: true });
    const r = await readCgroupV1(dir);
    expect(r).toEqual({ memory: undefined, errors: [], gone: true });
  });

  it('the tightest limit walks v2 ancestors up to the mount root', async () => {
    const root = join(tmp, 'tree' + Math.random().toString(36).slice(2, 6));
    cpSync(join(FIX, 'v2/anon'), join(root, 'kubepods/pod1/app'), { recursive: true });
    writeFileSync(join(root, 'kubepods/memory.max'), 'max\n');
    writeFileSync(join(root, 'kubepods/pod1/memory.max'), '134217728\n');
    expect(await readAncestorLimitV2(join(root, 'kubepods/pod1/app'), root)).toBe(134217728);
    const m = (await readCgroupV2(join(root, 'kubepods/pod1/app'))).memory!;
    expect(memoryView(m, 134217728).limit).toBe(134217728); // pod limit 128 MiB beats the container's 256 MiB
  });
});

describe('layout detection', () => {
  it('v2: cgroup.controllers lists memory', async () => {
    const root = join(tmp, 'v2root');
    cpSync(join(FIX, 'v2/anon'), root, { recursive: true });
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    expect(await detectLayout(root)).toMatchObject({ mode: 'v2', memoryVersion: 2, memoryRoot: root });
  });
  it('this machine is hybrid (v1 memory plus a unified mount)', async () => {
    const l = await detectLayout('/sys/fs/cgroup');
    // the real machine; in the cgroup v2 VM the same call says v2
    expect(['hybrid', 'v2', 'v1']).toContain(l.mode);
    if (process.env['CGV2VM'] !== '1') expect(l).toMatchObject({ mode: 'hybrid', memoryVersion: 1, memoryRoot: '/sys/fs/cgroup/memory', unifiedRoot: '/sys/fs/cgroup/unified' });
  });
  it('nothing there: none', async () => {
    expect((await detectLayout(join(tmp, 'nothing'))).mode).toBe('none');
  });
});

describe('/proc fixtures', () => {
  it.each(['v1', 'v2'])('%s anon workload: smaps_rollup and stat', (k) => {
    const p = join(FIX, k, 'anon/proc/4242');
    const r = parseSmapsRollup(readFileSync(join(p, 'smaps_rollup'), 'utf8'), 'smaps_rollup');
    expect(r.rss).toBeGreaterThan(100 * 1024 * 1024);
    expect(r.pss).toBeLessThanOrEqual(r.rss!);
    expect(r.uss).toBeLessThanOrEqual(r.pss!);
    const s = parseProcStat(readFileSync(join(p, 'stat'), 'utf8'), 'stat');
    expect(s.comm).toBe(readFileSync(join(p, 'comm'), 'utf8').trim());
  });
});

describe('resolving a process cgroup directory (DESIGN §4)', async () => {
  const { resolveCgroupDir } = await import('../../agent/sources/cgroup.js');
  const layout = { mode: 'v2' as const, memoryRoot: join(tmp, 'own-mount'), memoryVersion: 2 as const, unifiedRoot: undefined };

  it('private cgroup namespace, remounted: the target mount root is its cgroup', async () => {
    const proc = join(tmp, 'res1/proc');
    cpSync(join(FIX, 'v2/anon'), join(proc, '7/root/sys/fs/cgroup'), { recursive: true });
    writeFileSync(join(proc, '7/root/sys/fs/cgroup/cgroup.procs'), '7\n');
    const r = await resolveCgroupDir(proc, layout, 7, '/../cri-app');
    expect(r.resolved).toEqual({ dir: join(proc, '7/root/sys/fs/cgroup'), version: 2, via: 'proc-root' });
  });

  it('no remount: the target mount shows the whole hierarchy; found below it by name, confirmed by cgroup.procs', async () => {
    const proc = join(tmp, 'res2/proc');
    const mount = join(proc, '7/root/sys/fs/cgroup');
    cpSync(join(FIX, 'v2/idle'), join(mount, 'kubepods/pod1/decoy-app'), { recursive: true });
    cpSync(join(FIX, 'v2/anon'), join(mount, 'kubepods/pod1/app'), { recursive: true });
    writeFileSync(join(mount, 'cgroup.procs'), '1\n');
    writeFileSync(join(mount, 'kubepods/pod1/app/cgroup.procs'), '7\n8\n');
    const r = await resolveCgroupDir(proc, layout, 7, '/../pod1/app');
    expect(r.resolved?.dir).toBe(join(mount, 'kubepods/pod1/app'));
    // a second call with the hint goes straight there
    const again = await resolveCgroupDir(proc, layout, 7, '/../pod1/app', r.resolved);
    expect(again.resolved).toEqual(r.resolved);
  });

  it('a directory that does not list the PID is never taken', async () => {
    const proc = join(tmp, 'res3/proc');
    cpSync(join(FIX, 'v2/anon'), join(proc, '7/root/sys/fs/cgroup'), { recursive: true });
    writeFileSync(join(proc, '7/root/sys/fs/cgroup/cgroup.procs'), '99\n');
    const r = await resolveCgroupDir(proc, layout, 7, '/../cri-app');
    expect(r.resolved).toBeUndefined();
  });
});

describe('usage read around memory.stat (sources/usage.ts)', () => {
  const MiB = 1024 * 1024;
  const v1 = new Map([['total_rss', 9 * MiB], ['total_cache', 60 * MiB]]);
  it('the stat total: v1 rss + cache + kmem; v2 anon + file + kernel (or its parts) + sock', () => {
    expect(statTotal(1, v1, MiB)).toBe(70 * MiB);
    expect(statTotal(1, new Map([['total_rss', 1]]))).toBeUndefined();
    expect(statTotal(2, new Map([['anon', 10], ['file', 20], ['kernel', 3], ['sock', 1], ['slab', 99]]))).toBe(34);
    expect(statTotal(2, new Map([['anon', 10], ['file', 20], ['kernel_stack', 1], ['pagetables', 2], ['percpu', 3], ['slab', 4]]))).toBe(40);
  });
  it('keeps the usage reading that agrees with the stat: page cache truncated between the reads is not counted', () => {
    // seen in the lead-time benchmark: usage 132 MiB before a truncation, the stat after it (70 MiB)
    expect(consistentUsage(132 * MiB, 70.2 * MiB, statTotal(1, v1, MiB))).toBe(70.2 * MiB);
    // a burst allocated between usage and the stat: the later reading matches
    expect(consistentUsage(40 * MiB, 70 * MiB, 70 * MiB)).toBe(70 * MiB);
    // steady: the first reading (the same as the second)
    expect(consistentUsage(107999232, 107999232, 107995136)).toBe(107999232);
    expect(consistentUsage(5, undefined, 1)).toBe(5);
    expect(consistentUsage(5, 1, undefined)).toBe(5);
  });
  it('captured fixtures agree within the per-CPU charge fuzz', async () => {
    for (const dir of ['v1/anon', 'v1/pagecache', 'v1/shmem']) {
      const r = await readCgroupV1(join(FIX, dir));
      const total = statTotal(1, r.memory!.stat, r.memory!.kmemUsage)!;
      expect(Math.abs(r.memory!.usage - total), dir).toBeLessThan(MiB);
    }
    for (const dir of ['v2/anon', 'v2/pagecache', 'v2/shmem']) {
      const r = await readCgroupV2(join(FIX, dir));
      expect(statTotal(2, r.memory!.stat), dir).toBe(r.memory!.usage);
    }
  });
});
