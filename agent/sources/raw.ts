// What one read of a memory cgroup yields, v1 and v2 side by side. Every field is
// exactly what the kernel printed (in bytes or counts), or undefined when the file
// or key is absent on this kernel. Nothing here is derived; analysis/memory.ts does that.
import type { Pressure } from './pressure.js';
import type { ReadError } from './read.js';

export type CgroupVersion = 1 | 2;

export interface RawCgroupMemory {
  readonly version: CgroupVersion;
  /** v2 memory.current, v1 memory.usage_in_bytes */
  readonly usage: number;
  /** this cgroup's own limit: v2 memory.max, v1 memory.limit_in_bytes; undefined = unlimited */
  readonly limit: number | undefined;
  /** v1 only: hierarchical_memory_limit from memory.stat (tightest limit of all ancestors) */
  readonly hierarchicalLimit?: number | undefined;
  /** v2 memory.high; undefined = max or absent */
  readonly high?: number | undefined;
  /** v2 memory.peak (5.19+), v1 memory.max_usage_in_bytes */
  readonly peak?: number | undefined;
  /** memory.stat as printed */
  readonly stat: ReadonlyMap<string, number>;
  /** v2 memory.events */
  readonly events?: ReadonlyMap<string, number> | undefined;
  /** v1 memory.oom_control (oom_kill_disable, under_oom, oom_kill) */
  readonly oomControl?: ReadonlyMap<string, number> | undefined;
  /** v1 memory.failcnt */
  readonly failcnt?: number | undefined;
  /** v1 memory.kmem.usage_in_bytes */
  readonly kmemUsage?: number | undefined;
  /** v2 memory.swap.current */
  readonly swapUsage?: number | undefined;
  /** v2 memory.pressure, or (hybrid) the unified hierarchy's memory.pressure of the same processes */
  readonly pressure?: Pressure | undefined;
}

export interface CgroupReadResult {
  /** undefined when the required files (usage, stat) could not be read */
  readonly memory: RawCgroupMemory | undefined;
  readonly errors: readonly ReadError[];
  /** the cgroup directory no longer exists (container exited or restarted) */
  readonly gone: boolean;
}
