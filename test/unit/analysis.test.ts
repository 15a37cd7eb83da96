import { describe, expect, it } from 'vitest';
import { memoryView, reclaimable, breakdown, workingSet } from '../../agent/analysis/memory.js';
import { DEFAULT_RISK, INITIAL_RISK, nextRisk, rawLevel, type RiskState } from '../../agent/analysis/risk.js';
import { MonotonicCounter, CounterFamily } from '../../agent/counters.js';
import type { RawCgroupMemory } from '../../agent/sources/raw.js';

const MiB = 1024 * 1024;
const v2 = (usage: number, stat: Record<string, number>, extra: Partial<RawCgroupMemory> = {}): RawCgroupMemory =>
  ({ version: 2, usage, limit: 256 * MiB, stat: new Map(Object.entries(stat)), ...extra });
const v1 = (usage: number, stat: Record<string, number>, extra: Partial<RawCgroupMemory> = {}): RawCgroupMemory =>
  ({ version: 1, usage, limit: 256 * MiB, stat: new Map(Object.entries(stat)), ...extra });

describe('working set (cAdvisor setMemoryStats parity)', () => {
  it('v2: usage − inactive_file', () => {
    expect(workingSet(v2(100 * MiB, { inactive_file: 30 * MiB, total_inactive_file: 1 }))).toBe(70 * MiB);
  });
  it('v1: usage − total_inactive_file (never the local inactive_file)', () => {
    expect(workingSet(v1(100 * MiB, { inactive_file: 1, total_inactive_file: 40 * MiB }))).toBe(60 * MiB);
  });
  it('floors at 0 when inactive_file exceeds the (fuzzy) usage', () => {
    expect(workingSet(v1(10 * MiB, { total_inactive_file: 11 * MiB }))).toBe(0);
  });
  it('is the usage when the key is missing', () => {
    expect(workingSet(v2(5 * MiB, { anon: 5 * MiB }))).toBe(5 * MiB);
  });
});

describe('reclaimable and unreclaimable', () => {
  it('shmem/tmpfs is in file but unreclaimable', () => {
    const raw = v2(100 * MiB, { anon: 10 * MiB, file: 90 * MiB, shmem: 80 * MiB, inactive_file: 85 * MiB, file_dirty: 0, file_writeback: 0, slab_reclaimable: 0 });
    const v = memoryView(raw);
    expect(v.reclaimable).toBe(10 * MiB);
    expect(v.unreclaimable).toBe(90 * MiB);
    expect(v.pageCache).toBe(10 * MiB);
    // the kubelet's working set misses shmem sitting on the inactive list:
    expect(v.workingSet).toBe(15 * MiB);
  });
  it('page cache alone is reclaimable: unreclaimable stays at anon + kernel', () => {
    const raw = v2(250 * MiB, { anon: 8 * MiB, file: 240 * MiB, shmem: 0, file_dirty: 0, file_writeback: 0, kernel: 2 * MiB, slab_reclaimable: MiB, inactive_file: 200 * MiB });
    const v = memoryView(raw);
    expect(v.reclaimable).toBe(241 * MiB);
    expect(v.unreclaimable).toBe(9 * MiB);
  });
  it('dirty and writeback pages are in flight: neither reclaimable yet nor counted toward an OOM kill', () => {
    const b = breakdown(v2(0, { file: 100, shmem: 10, file_dirty: 20, file_writeback: 5 }));
    expect(reclaimable(b)).toBe(65);
    // a buffered write flood (v1 has no per-cgroup dirty throttling): 60 MiB dirty in a 64 MiB cgroup
    const v = memoryView(v1(64 * MiB, { total_rss: 2 * MiB, total_cache: 62 * MiB, total_shmem: 0, total_dirty: 55 * MiB, total_writeback: 5 * MiB }));
    expect(v.reclaimable).toBe(2 * MiB);
    expect(v.unreclaimable).toBe(2 * MiB);
    expect(v.reclaimable + v.unreclaimable + 60 * MiB).toBe(v.usage);
  });
  it('v1 maps total_* keys and kmem usage', () => {
    const raw = v1(120 * MiB, { total_rss: 50 * MiB, total_cache: 60 * MiB, total_shmem: 20 * MiB, total_dirty: 0, total_writeback: 0, total_inactive_file: 30 * MiB, total_active_file: 10 * MiB, rss: 1 }, { kmemUsage: 10 * MiB });
    const v = memoryView(raw);
    expect(Object.fromEntries(v.breakdown)).toMatchObject({ anon: 50 * MiB, file: 60 * MiB, shmem: 20 * MiB, kernel: 10 * MiB, inactive_file: 30 * MiB, active_file: 10 * MiB });
    expect(v.breakdown.has('slab_reclaimable')).toBe(false); // v1 has no such key: absent, not 0
    expect(v.reclaimable).toBe(40 * MiB);
    expect(v.unreclaimable).toBe(80 * MiB);
  });
  it('v2 kernel before 5.18 is the sum of its parts', () => {
    const b = breakdown(v2(0, { kernel_stack: 1, pagetables: 2, percpu: 3, sock: 4, slab: 5 }));
    expect(b.get('kernel')).toBe(15);
  });
});

describe('tightest limit', () => {
  it('takes the smallest of own, v1 hierarchical and ancestors', () => {
    expect(memoryView(v1(0, { total_rss: 0 }, { limit: 512 * MiB, hierarchicalLimit: 300 * MiB })).limit).toBe(300 * MiB);
    expect(memoryView(v2(0, {}, { limit: 512 * MiB }), 200 * MiB).limit).toBe(200 * MiB);
    expect(memoryView(v2(0, {}, { limit: undefined })).limit).toBeUndefined();
  });
});

describe('risk', () => {
  const step = (s: RiskState, unreclaimable: number, limit: number | undefined = 100) =>
    nextRisk(s, { unreclaimable, limit }, { ...DEFAULT_RISK, clearSamples: 3 });

  it('levels follow the ratio thresholds', () => {
    expect(rawLevel({ unreclaimable: 79, limit: 100 }, DEFAULT_RISK)).toBe('ok');
    expect(rawLevel({ unreclaimable: 80, limit: 100 }, DEFAULT_RISK)).toBe('warning');
    expect(rawLevel({ unreclaimable: 90, limit: 100 }, DEFAULT_RISK)).toBe('critical');
  });
  it('unlimited means no risk from the limit', () => {
    expect(rawLevel({ unreclaimable: 1e12, limit: undefined }, DEFAULT_RISK)).toBe('ok');
  });
  it('rises at once and falls only after the cause stayed clear for N samples', () => {
    let s = INITIAL_RISK;
    s = step(s, 95); expect(s.level).toBe('critical');
    s = step(s, 50); expect(s.level).toBe('critical');
    s = step(s, 50); expect(s.level).toBe('critical');
    s = step(s, 91); expect(s.level).toBe('critical'); // cause back: the count restarts
    s = step(s, 50); s = step(s, 50); expect(s.level).toBe('critical');
    s = step(s, 50); expect(s.level).toBe('ok');
  });
  it('a flapping value around the threshold does not flap the level', () => {
    let s = INITIAL_RISK;
    const levels: string[] = [];
    for (const u of [81, 79, 81, 79, 81, 79, 79, 79]) { s = step(s, u); levels.push(s.level); }
    expect(levels).toEqual(['warning', 'warning', 'warning', 'warning', 'warning', 'warning', 'warning', 'ok']);
  });
});

describe('monotonic counters', () => {
  it('absorb a reset (the kernel counter restarted from 0)', () => {
    const c = new MonotonicCounter();
    c.update(3); c.update(5); c.update(1); c.update(2);
    expect(c.value).toBe(7);
  });
  it('rebase keeps the total when a new cgroup replaces the old one', () => {
    const f = new CounterFamily();
    f.update('oom_kill', 2);
    f.rebase();
    f.update('oom_kill', 1);
    expect(f.get('oom_kill')).toBe(3);
    expect(f.get('never')).toBeUndefined();
  });
});
