// cgroup v2 memory controller files (kernel Documentation/admin-guide/cgroup-v2.rst, "Memory").
// Readers take the cgroup directory; nothing here knows where that directory came from.
import { join } from 'node:path';
import { parseFlatKeyed, parseLimit, parseSingleValue } from './parse.js';
import { parsePressure } from './pressure.js';
import { failedRequired, optional, readParsed, type ReadError, type ReadResult } from './read.js';
import type { CgroupReadResult, RawCgroupMemory } from './raw.js';
import { consistentUsage, statTotal } from './usage.js';

export async function readCgroupV2(dir: string): Promise<CgroupReadResult> {
  const f = (name: string) => join(dir, name);
  const [current, max, high, peak, stat, events, swap, pressure] = await Promise.all([
    readParsed('memory.current', f('memory.current'), parseSingleValue),
    readParsed('memory.max', f('memory.max'), parseLimit),
    readParsed('memory.high', f('memory.high'), parseLimit),
    readParsed('memory.peak', f('memory.peak'), parseSingleValue), // 5.19+
    readParsed('memory.stat', f('memory.stat'), parseFlatKeyed),
    readParsed('memory.events', f('memory.events'), parseFlatKeyed),
    readParsed('memory.swap.current', f('memory.swap.current'), parseSingleValue), // absent without swap accounting
    readParsed('memory.pressure', f('memory.pressure'), parsePressure), // absent without CONFIG_PSI / psi=0
  ]);
  // memory.current again, after memory.stat (usage.ts)
  const currentAfter = await readParsed('memory.current', f('memory.current'), parseSingleValue);
  const errors: ReadError[] = [];
  if (!current.ok || !stat.ok) {
    return { memory: undefined, ...failedRequired([current, stat]) };
  }
  const memory: RawCgroupMemory = {
    version: 2,
    usage: consistentUsage(current.value, currentAfter.ok ? currentAfter.value : undefined, statTotal(2, stat.value)),
    limit: optional(max, errors), // the root cgroup has no memory.max
    high: optional(high, errors),
    peak: optional(peak, errors),
    stat: stat.value,
    events: optional(events, errors),
    swapUsage: optional(swap, errors),
    pressure: optional(pressure, errors),
  };
  return { memory, errors, gone: false };
}

/** Only memory.events: read at once when the kernel signals a change (OOM kill), before the cgroup can vanish. */
export async function readEventsV2(dir: string): Promise<ReadResult<Map<string, number>>> {
  return readParsed('memory.events', join(dir, 'memory.events'), parseFlatKeyed);
}

/**
 * memory.max of every ancestor of `dir` up to (and including) `root`; the tightest one bounds
 * this cgroup too (a pod-level limit can be tighter than the container's). undefined = none set.
 */
export async function readAncestorLimitV2(dir: string, root: string): Promise<number | undefined> {
  let tightest: number | undefined;
  let cur = dir;
  while (cur.length > root.length && cur.startsWith(root)) {
    cur = cur.slice(0, cur.lastIndexOf('/')) || '/';
    if (cur.length < root.length) break;
    const r = await readParsed('memory.max', join(cur, 'memory.max'), parseLimit);
    if (r.ok && r.value !== undefined) tightest = tightest === undefined ? r.value : Math.min(tightest, r.value);
  }
  return tightest;
}
