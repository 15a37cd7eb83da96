// Where the memory controller lives (v1, v2 or hybrid), and which cgroup directory holds a process.
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ParseError, readParsed, readText, type ReadError, type ReadResult } from './read.js';
import type { CgroupVersion } from './raw.js';

export type CgroupMode = 'v2' | 'v1' | 'hybrid' | 'none';

export interface CgroupLayout {
  readonly mode: CgroupMode;
  /** directory where the memory controller's hierarchy is mounted */
  readonly memoryRoot: string | undefined;
  readonly memoryVersion: CgroupVersion | undefined;
  /** hybrid only: the v2 (unified) mount, used for PSI of v1 cgroups */
  readonly unifiedRoot: string | undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Detect the layout from the files under the cgroup root (default /sys/fs/cgroup), so a fixture
 * tree works as well as a live mount:
 *   v2:     <root>/cgroup.controllers lists "memory"
 *   v1:     <root>/memory/memory.usage_in_bytes
 *   hybrid: v1 memory plus a v2 mount at <root>/unified (systemd's hybrid layout)
 */
export async function detectLayout(cgroupRoot: string): Promise<CgroupLayout> {
  const controllers = await readText('cgroup', join(cgroupRoot, 'cgroup.controllers'));
  if (controllers.ok && controllers.value.split(/\s+/).includes('memory')) {
    return { mode: 'v2', memoryRoot: cgroupRoot, memoryVersion: 2, unifiedRoot: undefined };
  }
  // A v2 mount whose root lists no controllers can still be a container's own namespace root,
  // where the memory files exist although cgroup.controllers of the root is empty.
  if (controllers.ok && (await exists(join(cgroupRoot, 'memory.current')))) {
    return { mode: 'v2', memoryRoot: cgroupRoot, memoryVersion: 2, unifiedRoot: undefined };
  }
  const v1 = join(cgroupRoot, 'memory');
  if (await exists(join(v1, 'memory.usage_in_bytes'))) {
    const unified = join(cgroupRoot, 'unified');
    const hybrid = await exists(join(unified, 'cgroup.controllers'));
    return { mode: hybrid ? 'hybrid' : 'v1', memoryRoot: v1, memoryVersion: 1, unifiedRoot: hybrid ? unified : undefined };
  }
  return { mode: 'none', memoryRoot: undefined, memoryVersion: undefined, unifiedRoot: undefined };
}

/** The version of the memory files in one cgroup directory. */
export async function versionOfDir(dir: string): Promise<CgroupVersion | undefined> {
  if (await exists(join(dir, 'memory.current'))) return 2;
  if (await exists(join(dir, 'memory.usage_in_bytes'))) return 1;
  return undefined;
}

export interface ProcCgroup {
  /** the "0::/path" line (v2 or the unified part of hybrid) */
  readonly unified: string | undefined;
  /** v1 controller name -> path */
  readonly v1: ReadonlyMap<string, string>;
}

/** /proc/PID/cgroup: "hierarchy-ID:controller-list:cgroup-path" per line. */
export function parseProcCgroup(text: string, path: string): ProcCgroup {
  let unified: string | undefined;
  const v1 = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (a < 0 || b < 0) throw new ParseError(path, i + 1, `expected "id:controllers:path", got ${JSON.stringify(line.slice(0, 60))}`);
    const id = line.slice(0, a);
    const ctrls = line.slice(a + 1, b);
    const cgPath = line.slice(b + 1);
    if (id === '0' && ctrls === '') unified = cgPath;
    else for (const c of ctrls.split(',')) if (c) v1.set(c, cgPath);
  }
  return { unified, v1 };
}

export function readProcCgroup(procRoot: string, pid: number | 'self'): Promise<ReadResult<ProcCgroup>> {
  return readParsed('proc', join(procRoot, String(pid), 'cgroup'), parseProcCgroup);
}

/** The memory cgroup path of a process, as seen from the reader's cgroup namespace. */
export function memoryPath(pc: ProcCgroup, layout: CgroupLayout): string | undefined {
  return layout.memoryVersion === 1 ? pc.v1.get('memory') : pc.unified;
}

/** True when a path from /proc/PID/cgroup lies outside the reader's cgroup namespace ("/../x"). */
export function outsideNamespace(path: string): boolean {
  return path === '/..' || path.startsWith('/../');
}

export async function cgroupHasPid(dir: string, pid: number): Promise<ReadResult<boolean>> {
  const r = await readText('cgroup', join(dir, 'cgroup.procs'));
  if (!r.ok) return r;
  const want = String(pid);
  return { ok: true, value: r.value.split('\n').some((l) => l.trim() === want) };
}

export interface ResolvedDir {
  readonly dir: string;
  readonly version: CgroupVersion;
  /** "mount": the agent's own cgroup mount; "proc-root": through /proc/PID/root (DESIGN §4) */
  readonly via: 'mount' | 'proc-root';
}

/**
 * Find a readable directory holding the memory files of `pid`'s cgroup (DESIGN §4):
 *  1. the agent's own mount + the path from /proc/PID/cgroup (same or parent cgroup namespace);
 *  2. /proc/PID/root/sys/fs/cgroup[/memory]: the target's own mount. With a private cgroup
 *     namespace (the default for v2 containers) its root IS the target's cgroup; without one,
 *     the target's mount shows the whole hierarchy and the path applies below it.
 * A candidate counts only if its cgroup.procs lists the PID, so a wrong guess is never read.
 * Permission errors (no CAP_SYS_PTRACE, other UID) are returned so the caller can say exactly that.
 */
export async function resolveCgroupDir(
  procRoot: string,
  layout: CgroupLayout,
  pid: number,
  path: string,
  /** where this PID's cgroup was found last time: tried first, so the search below runs once */
  hint?: ResolvedDir,
): Promise<{ resolved: ResolvedDir | undefined; errors: ReadError[] }> {
  const errors: ReadError[] = [];
  const version = layout.memoryVersion ?? 2;
  const candidates: Array<{ dir: string; via: ResolvedDir['via'] }> = hint ? [hint] : [];
  if (layout.memoryRoot !== undefined && !outsideNamespace(path)) {
    candidates.push({ dir: join(layout.memoryRoot, path), via: 'mount' });
  }
  const targetMount = join(procRoot, String(pid), 'root', 'sys/fs/cgroup', version === 1 ? 'memory' : '');
  candidates.push({ dir: targetMount, via: 'proc-root' });
  if (!outsideNamespace(path) && path !== '/') candidates.push({ dir: join(targetMount, path), via: 'proc-root' });
  for (const c of candidates) {
    const has = await cgroupHasPid(c.dir, pid);
    if (has.ok && has.value) {
      const v = (await versionOfDir(c.dir)) ?? version;
      return { resolved: { dir: c.dir, version: v, via: c.via }, errors: [] };
    }
    if (!has.ok && (has.error.code === 'EACCES' || has.error.code === 'EPERM')) {
      errors.push({ ...has.error, source: 'proc_root' });
    }
  }
  if (errors.length === 0 && outsideNamespace(path)) {
    // The target's mount shows more than its own cgroup (no cgroup2 remount in its namespace, or
    // cgroupns=host): its cgroup is <targetMount>/<unknown prefix>/<tail>. Find it by name.
    const dir = await findByTail(targetMount, path.split('/').filter((s) => s !== '' && s !== '..'), pid);
    if (dir !== undefined) return { resolved: { dir, version: (await versionOfDir(dir)) ?? version, via: 'proc-root' }, errors: [] };
  }
  return { resolved: undefined, errors };
}

/**
 * Breadth-first search below `root` for a directory <root>/.../<tail...> whose cgroup.procs lists
 * `pid` (the tail's names are the part of the path below our cgroup namespace's common ancestor).
 * Bounded: at most `maxDirs` directories are listed.
 */
async function findByTail(root: string, tail: readonly string[], pid: number, maxDirs = 5000): Promise<string | undefined> {
  if (tail.length === 0) return undefined;
  const queue = [root];
  for (let listed = 0; queue.length > 0 && listed < maxDirs; listed++) {
    const dir = queue.shift()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = join(dir, e.name);
      if (e.name === tail[0]) {
        const cand = join(dir, ...tail);
        const has = await cgroupHasPid(cand, pid);
        if (has.ok && has.value) return cand;
      }
      queue.push(sub);
    }
  }
  return undefined;
}
