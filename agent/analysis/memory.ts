// Derived memory quantities (DESIGN §3). Pure functions of one RawCgroupMemory; no I/O.
import type { RawCgroupMemory } from '../sources/raw.js';
import { kernelBytes } from '../sources/usage.js';

/** Breakdown types exported as headroom_memory_bytes{type}. They overlap (file includes shmem, etc.). */
export const BREAKDOWN_TYPES = [
  'anon', 'file', 'shmem', 'kernel', 'active_file', 'inactive_file',
  'slab_reclaimable', 'file_dirty', 'file_writeback', 'swap',
] as const;
export type BreakdownType = (typeof BREAKDOWN_TYPES)[number];

export interface MemoryView {
  readonly usage: number;
  /** usage − inactive_file, floored at 0: cAdvisor's setMemoryStats, byte for byte */
  readonly workingSet: number;
  /** clean page cache + reclaimable slab: what the kernel can drop without swap */
  readonly reclaimable: number;
  /**
   * usage − reclaimable − dirty − writeback, floored at 0: anon + shmem/tmpfs + kernel (− reclaimable
   * slab). Dirty and writeback page cache is neither: it is on its way to disk, and the kernel writes
   * it back and throttles writers rather than OOM-kill for it. So usage = reclaimable +
   * unreclaimable + in flight (the file_dirty and file_writeback types).
   */
  readonly unreclaimable: number;
  /** file pages that are not shmem: the page cache a user thinks of */
  readonly pageCache: number | undefined;
  readonly breakdown: ReadonlyMap<BreakdownType, number>;
  /** the tightest limit on the path we can read; undefined = unlimited */
  readonly limit: number | undefined;
}

/** memory.stat keys: v2 names them directly, v1 (use_hierarchy) under total_*. */
function statKey(raw: RawCgroupMemory, v2: string, v1: string): number | undefined {
  return raw.stat.get(raw.version === 2 ? v2 : v1);
}

/**
 * Working set exactly as cAdvisor (lib/container/libcontainer/handler.go, setMemoryStats) and so the
 * kubelet compute it: usage minus inactive_file (v2) / total_inactive_file (v1), floored at 0;
 * when the key is missing, the working set is the usage.
 */
export function workingSet(raw: RawCgroupMemory): number {
  const inactive = statKey(raw, 'inactive_file', 'total_inactive_file');
  if (inactive === undefined) return raw.usage;
  return raw.usage < inactive ? 0 : raw.usage - inactive;
}

export function breakdown(raw: RawCgroupMemory): Map<BreakdownType, number> {
  const m = new Map<BreakdownType, number>();
  const set = (t: BreakdownType, v: number | undefined) => { if (v !== undefined) m.set(t, v); };
  set('anon', statKey(raw, 'anon', 'total_rss'));
  set('file', statKey(raw, 'file', 'total_cache'));
  set('shmem', statKey(raw, 'shmem', 'total_shmem'));
  set('kernel', kernelBytes(raw.version, raw.stat, raw.version === 1 ? raw.kmemUsage : undefined));
  set('active_file', statKey(raw, 'active_file', 'total_active_file'));
  set('inactive_file', statKey(raw, 'inactive_file', 'total_inactive_file'));
  if (raw.version === 2) set('slab_reclaimable', raw.stat.get('slab_reclaimable'));
  set('file_dirty', statKey(raw, 'file_dirty', 'total_dirty'));
  set('file_writeback', statKey(raw, 'file_writeback', 'total_writeback'));
  set('swap', raw.version === 2 ? raw.swapUsage : raw.stat.get('total_swap'));
  return m;
}

/**
 * Reclaimable = clean, non-shmem page cache (+ reclaimable slab on v2): what the kernel can drop at
 * once. shmem/tmpfs sits in "file" but cannot be dropped without swap; dirty and writeback pages
 * must be written out first.
 */
export function reclaimable(b: ReadonlyMap<BreakdownType, number>): number {
  const file = b.get('file') ?? 0;
  const clean = file - (b.get('shmem') ?? 0) - (b.get('file_dirty') ?? 0) - (b.get('file_writeback') ?? 0);
  return Math.max(0, clean) + (b.get('slab_reclaimable') ?? 0);
}

/** The tightest limit we can see: own limit, v1 hierarchical limit, ancestors' limits (v2). */
export function tightestLimit(...limits: Array<number | undefined>): number | undefined {
  let t: number | undefined;
  for (const l of limits) if (l !== undefined && (t === undefined || l < t)) t = l;
  return t;
}

export function memoryView(raw: RawCgroupMemory, ancestorLimit?: number): MemoryView {
  const b = breakdown(raw);
  const rec = Math.min(reclaimable(b), raw.usage);
  const inFlight = (b.get('file_dirty') ?? 0) + (b.get('file_writeback') ?? 0);
  const file = b.get('file');
  return {
    usage: raw.usage,
    workingSet: workingSet(raw),
    reclaimable: rec,
    unreclaimable: Math.max(0, raw.usage - rec - inFlight),
    pageCache: file === undefined ? undefined : Math.max(0, file - (b.get('shmem') ?? 0)),
    breakdown: b,
    limit: tightestLimit(raw.limit, raw.hierarchicalLimit, ancestorLimit),
  };
}
