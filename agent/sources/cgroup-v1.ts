// cgroup v1 memory controller files (kernel Documentation/admin-guide/cgroup-v1/memory.rst).
import { join } from 'node:path';
import { parseFlatKeyed, parseLimit, parseSingleValue, UNLIMITED_THRESHOLD } from './parse.js';
import { parsePressure } from './pressure.js';
import { failedRequired, optional, readParsed, type ReadError } from './read.js';
import type { CgroupReadResult, RawCgroupMemory } from './raw.js';
import { consistentUsage, statTotal } from './usage.js';

/**
 * @param pressureDir hybrid hosts only: the same processes' cgroup in the unified (v2) hierarchy,
 *   whose memory.pressure is real PSI even though the memory controller lives in v1.
 */
export async function readCgroupV1(dir: string, pressureDir?: string): Promise<CgroupReadResult> {
  const f = (name: string) => join(dir, name);
  const [usage, limit, maxUsage, failcnt, stat, oomControl, kmem, pressure] = await Promise.all([
    readParsed('memory.usage_in_bytes', f('memory.usage_in_bytes'), parseSingleValue),
    readParsed('memory.limit_in_bytes', f('memory.limit_in_bytes'), parseLimit),
    readParsed('memory.max_usage_in_bytes', f('memory.max_usage_in_bytes'), parseSingleValue),
    readParsed('memory.failcnt', f('memory.failcnt'), parseSingleValue),
    readParsed('memory.stat', f('memory.stat'), parseFlatKeyed),
    readParsed('memory.oom_control', f('memory.oom_control'), parseFlatKeyed),
    readParsed('memory.kmem.usage_in_bytes', f('memory.kmem.usage_in_bytes'), parseSingleValue), // absent when kmem accounting is compiled out
    pressureDir === undefined
      ? Promise.resolve(undefined)
      : readParsed('memory.pressure', join(pressureDir, 'memory.pressure'), parsePressure),
  ]);
  // usage again, after memory.stat (usage.ts)
  const usageAfter = await readParsed('memory.usage_in_bytes', f('memory.usage_in_bytes'), parseSingleValue);
  const errors: ReadError[] = [];
  if (!usage.ok || !stat.ok) {
    return { memory: undefined, ...failedRequired([usage, stat]) };
  }
  const hier = stat.value.get('hierarchical_memory_limit');
  const memory: RawCgroupMemory = {
    version: 1,
    usage: consistentUsage(usage.value, usageAfter.ok ? usageAfter.value : undefined,
      statTotal(1, stat.value, kmem.ok ? kmem.value : undefined)),
    limit: optional(limit, errors),
    hierarchicalLimit: hier === undefined || hier >= UNLIMITED_THRESHOLD ? undefined : hier,
    peak: optional(maxUsage, errors),
    failcnt: optional(failcnt, errors),
    stat: stat.value,
    oomControl: optional(oomControl, errors),
    kmemUsage: optional(kmem, errors),
    pressure: pressure === undefined ? undefined : optional(pressure, errors),
  };
  return { memory, errors, gone: false };
}
