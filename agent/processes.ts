// Per-process memory of a target, grouped by comm, top N by PSS (headroom_process_memory_bytes).
// Cheap /proc/PID/status for every process; the costly smaps_rollup (page-table walk) only for the
// processes of the top groups, at most MAX_ROLLUPS per pass.
import { join } from 'node:path';
import type { Target } from './discovery.js';
import { readSmapsRollup, readStatusMemory } from './sources/procfs.js';
import { isGone, mapInBatches, readText, type ReadError } from './sources/read.js';

export const PROCESS_TYPES = ['rss', 'pss', 'uss', 'swap'] as const;
export type ProcessType = (typeof PROCESS_TYPES)[number];

export interface ProcessGroup {
  readonly comm: string;
  readonly count: number;
  /** a type is absent when any process of the group lacked it (never a partial sum) */
  readonly bytes: ReadonlyMap<ProcessType, number>;
}

const MAX_ROLLUPS = 256;

export async function readCgroupPids(dir: string): Promise<{ pids: number[]; error: ReadError | undefined }> {
  const r = await readText('cgroup', join(dir, 'cgroup.procs'));
  if (!r.ok) return { pids: [], error: isGone(r.error.code) ? undefined : r.error };
  const pids = r.value.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  // pid 0: a process outside our PID namespace (kernel's translation); we cannot read it.
  return { pids: pids.filter((p) => p > 0), error: undefined };
}

/**
 * The target's processes now: its cgroup.procs when the directory can be read and lists any, else
 * the ones discovery saw (an unreadable cgroup). The error is a failed read other than "gone".
 */
export async function currentPids(target: Pick<Target, 'dir' | 'pids'>): Promise<{ pids: number[]; error: ReadError | undefined }> {
  if (!target.dir) return { pids: [...target.pids], error: undefined };
  const r = await readCgroupPids(target.dir);
  return { pids: r.pids.length > 0 ? r.pids : [...target.pids], error: r.error };
}

interface Acc { comm: string; pids: number[]; rss: number; swap: number | undefined }

export async function topProcessGroups(
  procRoot: string,
  pids: readonly number[],
  topN: number,
): Promise<{ groups: ProcessGroup[]; errors: ReadError[] }> {
  const errors: ReadError[] = [];
  if (topN <= 0 || pids.length === 0) return { groups: [], errors };
  const byComm = new Map<string, Acc>();
  const statuses = await mapInBatches(pids, 64, (pid) => readStatusMemory(procRoot, pid));
  statuses.forEach((r, i) => {
    if (!r.ok) { if (!isGone(r.error.code)) errors.push(r.error); return; }
    const comm = r.value.name ?? '?';
    const acc = byComm.get(comm) ?? { comm, pids: [], rss: 0, swap: 0 };
    acc.pids.push(pids[i]!);
    acc.rss += r.value.rss ?? 0;
    acc.swap = acc.swap === undefined || r.value.swap === undefined ? undefined : acc.swap + r.value.swap;
    byComm.set(comm, acc);
  });
  // Candidates by RSS (cheap); final ranking by PSS.
  const candidates = [...byComm.values()].sort((a, b) => b.rss - a.rss).slice(0, topN * 2);
  let budget = MAX_ROLLUPS;
  const groups: Array<ProcessGroup & { rank: number }> = [];
  for (const acc of candidates) {
    // A group larger than what is left of the budget could only get a partial PSS, which is never
    // exported: spend no page-table walks on it and report its RSS and swap from status.
    const take = acc.pids.length <= budget ? acc.pids : [];
    budget -= take.length;
    const rollups = await mapInBatches(take, 4, (pid) => readSmapsRollup(procRoot, pid));
    let rss = 0, pss = 0, uss = 0, swap = 0, alive = 0;
    let complete = take.length === acc.pids.length;
    for (const r of rollups) {
      if (!r.ok) {
        if (isGone(r.error.code)) continue; // exited between the two reads
        errors.push(r.error);
        complete = false;
        continue;
      }
      alive++;
      rss += r.value.rss ?? 0;
      if (r.value.pss === undefined || r.value.uss === undefined) complete = false;
      pss += r.value.pss ?? 0; uss += r.value.uss ?? 0; swap += r.value.swap ?? 0;
    }
    const bytes = new Map<ProcessType, number>();
    if (complete && alive > 0) {
      bytes.set('rss', rss).set('pss', pss).set('uss', uss).set('swap', swap);
    } else {
      bytes.set('rss', acc.rss);
      if (acc.swap !== undefined) bytes.set('swap', acc.swap);
    }
    groups.push({ comm: acc.comm, count: acc.pids.length, bytes, rank: bytes.get('pss') ?? bytes.get('rss') ?? 0 });
  }
  groups.sort((a, b) => b.rank - a.rank);
  return { groups: groups.slice(0, topN).map(({ rank: _rank, ...g }) => g), errors };
}
