// Helpers for the real-kernel cgroup v1 integration tests: read the kernel's own files next to what
// headroom reports, find disk-backed scratch space, wait for processes, and record measured values.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { REPO, startAgent, waitFor, type Agent, type LogLine, type StartOptions } from './agent.js';
import { removeAllCgroups } from './cgroup.js';
import type { Series } from './metrics.js';

export const MiB = 1024 * 1024;
export const RAMP = `${REPO}scripts/workloads/ramp.mjs`;

/** One read of a v1 memory cgroup's files, as the kernel reports them. */
export interface KernelV1 {
  /** Date.now() before the first file was read */
  readonly t: number;
  readonly usage: number;
  readonly limit: number;
  readonly stat: ReadonlyMap<string, number>;
  readonly oomKill: number | undefined;
}

function flatKeyed(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

export function readKernelV1(dir: string): KernelV1 {
  const t = Date.now();
  const usage = Number(readFileSync(join(dir, 'memory.usage_in_bytes'), 'utf8'));
  const stat = flatKeyed(readFileSync(join(dir, 'memory.stat'), 'utf8'));
  const limit = Number(readFileSync(join(dir, 'memory.limit_in_bytes'), 'utf8'));
  const oomKill = flatKeyed(readFileSync(join(dir, 'memory.oom_control'), 'utf8')).get('oom_kill');
  return { t, usage, limit, stat, oomKill };
}

/** The v1 formulas of DESIGN §3 applied to one kernel read (what headroom should report). */
export function kernelView(k: KernelV1) {
  const s = (key: string) => k.stat.get(key) ?? 0;
  const reclaimable = Math.min(k.usage, Math.max(0, s('total_cache') - s('total_shmem') - s('total_dirty') - s('total_writeback')));
  return {
    usage: k.usage,
    workingSet: Math.max(0, k.usage - s('total_inactive_file')),
    anon: s('total_rss'),
    file: s('total_cache'),
    shmem: s('total_shmem'),
    pageCache: Math.max(0, s('total_cache') - s('total_shmem')),
    inactiveFile: s('total_inactive_file'),
    dirty: s('total_dirty'),
    writeback: s('total_writeback'),
    reclaimable,
    unreclaimable: Math.max(0, k.usage - reclaimable - s('total_dirty') - s('total_writeback')),
    /** DESIGN §3's other v1 reading: total_rss + total_shmem (+ kmem, not added here) */
    rssPlusShmem: s('total_rss') + s('total_shmem'),
  };
}

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/**
 * A fresh scratch directory on a disk-backed file system (page cache, not tmpfs/shmem), for page
 * cache workloads. os.tmpdir() when it is on disk, else /var/tmp.
 */
export function diskScratchDir(prefix = 'headroom-v1-'): string {
  for (const base of [tmpdir(), '/var/tmp']) {
    try {
      const { type } = statfsSync(base);
      if (type === TMPFS_MAGIC || type === RAMFS_MAGIC) continue;
      return mkdtempSync(join(base, prefix));
    } catch { /* try the next */ }
  }
  throw new Error('no disk-backed scratch directory (os.tmpdir() and /var/tmp are tmpfs or missing)');
}

export function removeScratch(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Resolves with how a child process ended. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Running (not gone, not a zombie). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export const logMs = (l: LogLine): number => Date.parse(l.time);

/** Index of the first log line matching, or -1. */
export function firstLog(logs: readonly LogLine[], pred: (l: LogLine) => boolean): number {
  return logs.findIndex(pred);
}

export const isRiskLine = (level: 'warning' | 'critical') => (l: LogLine) =>
  l['risk'] === level && l.msg.startsWith(`OOM risk ${level}:`);
export const isKillLine = (l: LogLine) => l.level === 'error' && typeof l['oom_kills'] === 'number';

/** Where measured values go for the closing-note table: one JSON file per test, overwritten per run. */
export const RESULTS_DIR = join(tmpdir(), 'headroom-v1-results');

export function recordResult(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  console.log(`[headroom-v1-result] ${name} -> ${file}\n${JSON.stringify(data)}`);
  return file;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the time of the first sample of `container` taken after `t` (ms). */
export function sampleAfter(agent: Agent, container: string, t: number, timeoutMs = 30_000): Promise<number> {
  return waitFor(`a sample of ${container} after ${new Date(t).toISOString()}`, async () => {
    const c = (await agent.snapshot()).containers.find((x: any) => x.container === container);
    return c?.sampledAt && Date.parse(c.sampledAt) > t ? Date.parse(c.sampledAt) : undefined;
  }, timeoutMs, 50);
}

/**
 * Kernel read -> scrape -> kernel read, retried until the kernel's numbers did not change across
 * the scrape (bounded). The scrape is taken two samples after the first read, so the sample it
 * shows started reading after it. Undefined when the kernel never held still.
 */
export async function bracketedScrape(agent: Agent, dir: string, container: string, attempts = 30): Promise<{ k: KernelV1; m: Series[]; snap: any; attempts: number } | undefined> {
  for (let i = 1; i <= attempts; i++) {
    const k1 = readKernelV1(dir);
    const s1 = await sampleAfter(agent, container, k1.t);
    await sampleAfter(agent, container, s1);
    const m = await agent.metrics();
    const snap = (await agent.snapshot()).containers.find((x: any) => x.container === container);
    const k2 = readKernelV1(dir);
    const a = kernelView(k1);
    const b = kernelView(k2);
    if (a.usage === b.usage && a.inactiveFile === b.inactiveFile && a.file === b.file && a.anon === b.anon
      && a.shmem === b.shmem && a.dirty === b.dirty && a.writeback === b.writeback) {
      return { k: k1, m, snap, attempts: i };
    }
  }
  return undefined;
}

/** In afterEach(ctx): when the test failed, print the agent's log (the first thing to look at). */
export function dumpLogsOnFailure(ctx: { task: { name: string; result?: { state?: string } } }, agent: Agent | undefined): void {
  if (ctx.task.result?.state !== 'fail' || !agent) return;
  const lines = agent.logs.slice(-60).map((l) => JSON.stringify(l).slice(0, 400));
  console.log(`[headroom-v1] agent log of failed test "${ctx.task.name}" (pid ${agent.proc.pid}, exit ${agent.proc.exitCode}):\n${lines.join('\n')}`);
}

export interface V1Session {
  /** start the agent (stopped after the test) */
  start(args: readonly string[], opts?: StartOptions): Promise<Agent>;
  /** a disk-backed scratch directory (removed after the test) */
  scratch(): string;
}

/**
 * The per-test lifecycle of a real-kernel test, registered once per describe: after each test the
 * agent's logs are printed if it failed, the agent is stopped, the scratch directory and every
 * cgroup the test made are removed.
 */
export function v1Session(): V1Session {
  let agent: Agent | undefined;
  let scratch: string | undefined;
  afterEach(async (ctx) => {
    dumpLogsOnFailure(ctx, agent);
    await agent?.stop();
    agent = undefined;
    await removeAllCgroups();
    removeScratch(scratch);
    scratch = undefined;
  });
  return {
    async start(args, opts) {
      agent = await startAgent(args, opts);
      return agent;
    },
    scratch() {
      scratch = diskScratchDir();
      return scratch;
    },
  };
}
