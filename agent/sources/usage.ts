// The usage file and memory.stat are two reads. Page cache can be truncated (or a burst allocated)
// between them: then usage and the stat describe different moments, and usage − reclaimable counts
// tens of MiB that were never there (seen in docs/leadtime.md: 62 MiB of freshly truncated cache
// counted as unreclaimable for one sample). The readers read usage before AND after memory.stat and
// keep the one that agrees with the stat's own total. In a steady cgroup both are the same value.
import type { CgroupVersion } from './raw.js';

/**
 * Kernel memory of a cgroup: v1 memory.kmem.usage_in_bytes; v2 memory.stat "kernel" (5.18+), before
 * that the sum of kernel_stack, pagetables, percpu, sock and slab. undefined when none is there.
 */
export function kernelBytes(version: CgroupVersion, stat: ReadonlyMap<string, number>, kmem?: number): number | undefined {
  if (version === 1) return kmem;
  const k = stat.get('kernel');
  if (k !== undefined) return k;
  const parts = ['kernel_stack', 'pagetables', 'percpu', 'sock', 'slab'].map((p) => stat.get(p));
  if (parts.every((p) => p === undefined)) return undefined;
  return parts.reduce<number>((a, b) => a + (b ?? 0), 0);
}

/** What memory.stat itself says usage is; undefined when the keys are missing. */
export function statTotal(version: CgroupVersion, stat: ReadonlyMap<string, number>, kmem?: number): number | undefined {
  if (version === 1) {
    // usage_in_bytes = rss + cache (+ kmem, charged to usage on current kernels), give or take the
    // per-CPU charge batches (kernel memory.rst 5.5: "usage_in_bytes is a fuzz value")
    const rss = stat.get('total_rss');
    const cache = stat.get('total_cache');
    return rss === undefined || cache === undefined ? undefined : rss + cache + (kmem ?? 0);
  }
  const anon = stat.get('anon');
  const file = stat.get('file');
  if (anon === undefined || file === undefined) return undefined;
  // 5.18+ "kernel" leaves network buffers out (they are in usage); the older sum has them in
  const sock = stat.has('kernel') ? stat.get('sock') ?? 0 : 0;
  return anon + file + (kernelBytes(2, stat) ?? 0) + sock;
}

/** The usage reading closest to the stat's total (the first one on a tie, or without a total). */
export function consistentUsage(before: number, after: number | undefined, total: number | undefined): number {
  if (after === undefined || total === undefined) return before;
  return Math.abs(after - total) < Math.abs(before - total) ? after : before;
}
