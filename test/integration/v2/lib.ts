// Shared pieces of the real cgroup v2 suite. It runs inside the cgv2vm VM (scripts/test-v2.sh): root,
// cgroup2 at /sys/fs/cgroup, the test process in the leaf /sys/fs/cgroup/job. Test cgroups are
// siblings of /job (the "no internal processes" rule) and are removed in afterAll.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { REPO, waitFor, type Agent, type LogLine } from '../../helpers/agent.js';
import { isV2Vm, type TestCgroup } from '../../helpers/cgroup.js';
import type { Series } from '../../helpers/metrics.js';

export const CGROOT = '/sys/fs/cgroup';
export const RAMP = join(REPO, 'scripts/workloads/ramp.mjs');
export const MiB = 1024 * 1024;

/** false inside the VM; else the reason the suite is skipped (see title()). */
export const SKIP: false | string = isV2Vm() ? false : 'not inside the cgroup v2 VM (CGV2VM=1): run scripts/test-v2.sh';

/** A describe title that carries the skip reason outside the VM. */
export const title = (name: string): string => (SKIP ? `${name} [skipped: ${SKIP}]` : name);

/** "[measure] ..." lines end up in vitest's output (and in the report). */
export function measure(what: string, values: Record<string, unknown>): void {
  console.log(`[measure] ${what} ${JSON.stringify(values)}`);
}

/**
 * The VM's network has no interface but lo, and guest-init leaves lo DOWN: connect() to
 * 127.0.0.1 fails with ENETUNREACH although listen() works. scripts/test-v2.sh brings it up; do it
 * again here (idempotent) so `run-in-cgv2-vm.sh <repo> npx vitest run --project v2` works too.
 */
export function ensureLoopback(): void {
  const flags = Number(readFileSync('/sys/class/net/lo/flags', 'utf8'));
  if ((flags & 1) === 1) return;
  for (const cmd of [['ip', 'link', 'set', 'lo', 'up'], ['busybox', 'ip', 'link', 'set', 'lo', 'up']]) {
    try { execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' }); return; } catch { /* try the next one */ }
  }
  throw new Error('cannot bring up lo in the VM (need ip or busybox ip)');
}

// ------------------------------------------------------------------------ kernel files, as read by the test

export function readNum(cg: TestCgroup | string, file: string): number {
  const dir = typeof cg === 'string' ? cg : cg.dir;
  return Number(readFileSync(join(dir, file), 'utf8').trim());
}

export function flatKeyed(cg: TestCgroup | string, file: string): Record<string, number> {
  const dir = typeof cg === 'string' ? cg : cg.dir;
  const out: Record<string, number> = {};
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** memory.pressure "some"/"full" total= values (microseconds). */
export function psiTotals(cg: TestCgroup | string): { some: number; full: number } {
  const dir = typeof cg === 'string' ? cg : cg.dir;
  const text = readFileSync(join(dir, 'memory.pressure'), 'utf8');
  const total = (kind: string) => Number(new RegExp(`^${kind} .*total=(\\d+)`, 'm').exec(text)?.[1]);
  return { some: total('some'), full: total('full') };
}

/** The memory numbers the agent derives, read from the kernel in one go. */
export interface KernelMemory {
  readonly current: number;
  readonly stat: Record<string, number>;
}

export function kernelMemory(cg: TestCgroup | string): KernelMemory {
  return { current: readNum(cg, 'memory.current'), stat: flatKeyed(cg, 'memory.stat') };
}

/** DESIGN §3 formulas applied to one kernel reading (what the agent must export for it). */
export function expectedView(k: KernelMemory): { workingSet: number; reclaimable: number; unreclaimable: number } {
  const s = k.stat;
  const inactive = s['inactive_file']!;
  const clean = s['file']! - s['shmem']! - s['file_dirty']! - s['file_writeback']!;
  const reclaimable = Math.min(Math.max(0, clean) + (s['slab_reclaimable'] ?? 0), k.current);
  return {
    workingSet: Math.max(0, k.current - inactive),
    reclaimable,
    unreclaimable: Math.max(0, k.current - reclaimable - s['file_dirty']! - s['file_writeback']!),
  };
}

// ------------------------------------------------------------------------ agent sampling vs kernel reads

/** Wait until the agent has taken `count` samples of `container` that began after `since` (ms). */
export async function samplesAfter(agent: Agent, container: string, since: number, count = 2, timeoutMs = 30_000): Promise<void> {
  const seen = new Set<number>();
  await waitFor(`${count} samples of ${container} after ${new Date(since).toISOString()}`, async () => {
    const snap = await agent.snapshot();
    const c = (snap.containers as Array<{ container: string; sampledAt: string | null }>).find((x) => x.container === container);
    const t = c?.sampledAt ? Date.parse(c.sampledAt) : NaN;
    if (t > since) seen.add(t);
    return seen.size >= count;
  }, timeoutMs, 100);
}

/**
 * Read the kernel (k0), let the agent take two samples (the second one's reads start after k0:
 * the sampler's ticks are sequential), scrape /metrics, read the kernel again (k1). Each scrape
 * therefore shows a sample taken between k0 and k1.
 */
export async function bracket<K>(agent: Agent, container: string, read: () => K): Promise<{ k0: K; series: Series[]; k1: K }> {
  const k0 = read();
  await samplesAfter(agent, container, Date.now());
  const series = await agent.metrics();
  const k1 = read();
  return { k0, series, k1 };
}

/** bracket() until the kernel values did not move in between (k0 deep-equals k1): then they are exact. */
export async function stableBracket<K>(agent: Agent, container: string, read: () => K, tries = 15): Promise<{ kernel: K; series: Series[]; tries: number }> {
  let last: unknown;
  for (let i = 1; i <= tries; i++) {
    const { k0, series, k1 } = await bracket(agent, container, read);
    if (isDeepStrictEqual(k0, k1)) return { kernel: k0, series, tries: i };
    last = { k0, k1 };
  }
  throw new Error(`kernel values never stayed still across a sample (${tries} tries); last: ${JSON.stringify(last)}`);
}

// ------------------------------------------------------------------------ log helpers

export const riskLines = (logs: readonly LogLine[]) => logs.filter((l) => typeof l['risk'] === 'string');
export const killLines = (logs: readonly LogLine[]) => logs.filter((l) => l.level === 'error' && /OOM-killed/.test(l.msg));
export const indexOf = (logs: readonly LogLine[], l: LogLine | undefined) => (l ? logs.indexOf(l) : -1);

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Resolves once `text` appeared on the child's stdout (spawned with stdio 'pipe'). */
export function stdoutHas(child: ChildProcess, text: string): () => boolean {
  let buf = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => { buf += c; });
  return () => buf.includes(text);
}

// ------------------------------------------------------------------------ a disk-backed scratch file system

export interface Scratch {
  readonly dir: string;
  /** what it is, for the [measure] lines and the report */
  readonly kind: 'ext4-on-brd' | '9p';
  /** extra dd flags a writer must use there (see below) */
  readonly ddFlags: readonly string[];
}

const SCRATCH_MNT = '/mnt/headroom-scratch';
const MODULES = ['crc16', 'crc32c_generic', 'mbcache', 'jbd2', 'ext4'];

/**
 * A file system whose page cache behaves like a node's disk. Inside the VM, /tmp and /dev/shm are
 * tmpfs (shmem: unreclaimable without swap) and / is an overlay with a tmpfs upper layer, so none of
 * them is a page-cache test. Two candidates:
 *
 *  1. ext4 on a brd RAM disk (/dev/ram0, 256 MiB) — preferred. scripts/test-v2.sh copies the Debian
 *     kernel's brd/ext4/jbd2/mbcache/crc16/crc32c_generic modules from the cgv2vm cache into
 *     <repo>/tmp/cgv2-kmod/<kernel> and sets HEADROOM_V2_KMOD_DIR; we insmod them with busybox and
 *     format with the host's mkfs.ext4 (e2fsprogs). brd's own pages are not charged to any memory
 *     cgroup, and ext4 supports cgroup writeback, so a cgroup's dirty pages are throttled against its
 *     own limit, as on a real node.
 *  2. Fallback: the repo directory itself, a 9p mount (cache=loose) of the host. Its page cache IS
 *     charged to the reading/writing cgroup, but 9p has no cgroup writeback and writes back slowly
 *     (~20 MB/s under TCG): a buffered write flood leaves the whole cgroup full of dirty pages
 *     (measured: file_dirty 64 MiB of a 64 MiB limit, memory.events max 754, no OOM). Writers there
 *     use oflag=dsync so that every block is clean once written.
 */
export function scratchFs(): Scratch {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (mounts.includes(` ${SCRATCH_MNT} ext4 `)) return { dir: SCRATCH_MNT, kind: 'ext4-on-brd', ddFlags: [] };
  const kmod = process.env['HEADROOM_V2_KMOD_DIR'];
  const mkfs = ['/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4'].find((p) => existsSync(p));
  let why = '';
  if (kmod && mkfs && existsSync(join(kmod, 'brd.ko'))) {
    try {
      for (const m of MODULES) {
        if (!existsSync(`/sys/module/${m}`)) execFileSync('busybox', ['insmod', join(kmod, `${m}.ko`)], { stdio: 'pipe' });
      }
      if (!existsSync('/sys/module/brd')) execFileSync('busybox', ['insmod', join(kmod, 'brd.ko'), 'rd_nr=1', 'rd_size=262144'], { stdio: 'pipe' });
      for (let i = 0; i < 50 && !existsSync('/dev/ram0'); i++) execFileSync('sleep', ['0.1']);
      execFileSync(mkfs, ['-q', '-F', '/dev/ram0'], { stdio: 'pipe' });
      mkdirSync(SCRATCH_MNT, { recursive: true });
      execFileSync('mount', ['-t', 'ext4', '/dev/ram0', SCRATCH_MNT], { stdio: 'pipe' });
      return { dir: SCRATCH_MNT, kind: 'ext4-on-brd', ddFlags: [] };
    } catch (err) {
      why = `ext4 on brd failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
    }
  } else {
    why = !kmod ? 'HEADROOM_V2_KMOD_DIR is not set (scripts/test-v2.sh sets it)' : !mkfs ? 'no mkfs.ext4 (e2fsprogs) on the host root' : `no brd.ko in ${kmod}`;
  }
  const dir = join(REPO, 'tmp', 'v2-scratch');
  mkdirSync(dir, { recursive: true });
  console.warn(`[scratch] using the 9p repo mount ${dir} with dd oflag=dsync (${why})`);
  return { dir, kind: '9p', ddFlags: ['oflag=dsync'] };
}

/** sh command that writes `mib` MiB of zeros to `file` (clean page cache once it returns). */
export function ddWrite(s: Scratch, file: string, mib: number, extra: readonly string[] = []): string {
  return ['dd', 'if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'status=none', ...s.ddFlags, ...extra].join(' ');
}

// ------------------------------------------------------------------------ cgroup helpers beyond test/helpers

export function enableMemoryForChildren(cg: TestCgroup): void {
  writeFileSync(join(cg.dir, 'cgroup.subtree_control'), '+memory');
}

/** Host PIDs in a cgroup whose comm is `comm`. */
export function pidsByComm(cg: TestCgroup, comm: string): number[] {
  return cg.pids().filter((p) => {
    try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm; } catch { return false; }
  });
}
