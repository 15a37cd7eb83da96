// Which cgroups to watch and what to call them. Four ways in: the processes of this pod
// (shareProcessNamespace), one PID, one cgroup directory, or the cgroup `headroom run` made.
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import {
  memoryPath, readProcCgroup, resolveCgroupDir, versionOfDir,
  type CgroupLayout, type ResolvedDir,
} from './sources/cgroup.js';
import { isKernelThread, listPids, readProcStat } from './sources/procfs.js';
import { isGone, mapInBatches, type ReadError } from './sources/read.js';
import type { CgroupVersion } from './sources/raw.js';

export interface Target {
  /** the `container` label */
  readonly name: string;
  /** identity of this cgroup instance (device:inode of its directory); a new id under the same name is a restart */
  readonly id: string;
  /** readable directory with the memory files; undefined when it cannot be read (see problem) */
  readonly dir: string | undefined;
  readonly version: CgroupVersion | undefined;
  /** v2: walk memory.max of ancestors up to this directory for the tightest limit */
  readonly limitRoot: string | undefined;
  /** hybrid hosts: the same processes' cgroup in the unified hierarchy, for PSI */
  readonly pressureDir: string | undefined;
  /** processes seen at discovery (used when the cgroup cannot be read) */
  readonly pids: readonly number[];
  readonly problem: string | undefined;
}

export interface DiscoveryEnv {
  readonly procRoot: string;
  readonly layout: CgroupLayout;
  /** "pid:path" -> where it was found; keeps the bounded search in resolveCgroupDir to once per container */
  readonly found?: Map<string, ResolvedDir>;
}

export interface ScopedError {
  /** the target the failed read was for, when known */
  readonly container: string | undefined;
  readonly error: ReadError;
}

export interface DiscoveryResult {
  readonly targets: readonly Target[];
  readonly errors: readonly ScopedError[];
  /** human notes worth one log line (e.g. ambiguous naming) */
  readonly notes: readonly string[];
}

async function dirId(dir: string): Promise<string | undefined> {
  try {
    const s = await stat(dir);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

function pressureDirFor(layout: CgroupLayout, unifiedPath: string | undefined): string | undefined {
  if (layout.mode !== 'hybrid' || layout.unifiedRoot === undefined) return undefined;
  // The unified root's PSI is the whole machine's: only a process's own cgroup says something about it.
  if (unifiedPath === undefined || unifiedPath === '/' || unifiedPath.startsWith('/..')) return undefined;
  return join(layout.unifiedRoot, unifiedPath);
}

const PERMISSION_HINT =
  'permission denied: run headroom with the app\'s UID and GID (securityContext.runAsUser and runAsGroup), or as root with the SYS_PTRACE capability';

/** One process's target (for --pid, and for each group in pod mode). */
export async function targetForPid(
  env: DiscoveryEnv,
  pid: number,
  name: string,
  pids: readonly number[] = [pid],
): Promise<{ target: Target | undefined; errors: ReadError[] }> {
  const pc = await readProcCgroup(env.procRoot, pid);
  if (!pc.ok) return { target: undefined, errors: isGone(pc.error.code) ? [] : [pc.error] };
  const path = memoryPath(pc.value, env.layout);
  if (path === undefined) {
    return {
      target: { name, id: `pid:${pid}`, dir: undefined, version: undefined, limitRoot: undefined, pressureDir: undefined, pids, problem: 'no memory cgroup in /proc/PID/cgroup (memory controller not enabled?)' },
      errors: [],
    };
  }
  const key = `${pid}:${path}`;
  const { resolved, errors } = await resolveCgroupDir(env.procRoot, env.layout, pid, path, env.found?.get(key));
  if (env.found) {
    if (resolved) env.found.set(key, resolved);
    else env.found.delete(key);
    if (env.found.size > 256) env.found.delete(env.found.keys().next().value as string);
  }
  if (!resolved) {
    const denied = errors.length > 0;
    if (!denied) {
      errors.push({ source: 'proc_root', path: join(env.procRoot, String(pid), 'root/sys/fs/cgroup'), code: 'ENOENT', message: `cgroup ${path} of pid ${pid} not found` });
    }
    return {
      target: {
        name, id: `path:${path}`, dir: undefined, version: undefined, limitRoot: undefined, pressureDir: undefined, pids,
        problem: denied ? `cannot read the cgroup of pid ${pid} through ${env.procRoot}/${pid}/root: ${PERMISSION_HINT}` : `cgroup ${path} of pid ${pid} not found under the cgroup mount or ${env.procRoot}/${pid}/root`,
      },
      errors,
    };
  }
  const id = (await dirId(resolved.dir)) ?? `path:${resolved.dir}`;
  const limitRoot = resolved.via === 'mount' ? env.layout.memoryRoot : join(env.procRoot, String(pid), 'root/sys/fs/cgroup');
  return {
    target: {
      name, id, dir: resolved.dir, version: resolved.version, limitRoot,
      pressureDir: pressureDirFor(env.layout, pc.value.unified), pids, problem: undefined,
    },
    errors: [],
  };
}

/** --cgroup: an absolute directory, or a path inside the memory hierarchy (e.g. /kubepods/pod123/abc). */
export async function targetForCgroup(env: DiscoveryEnv, path: string, name: string | undefined): Promise<Target> {
  const root = env.layout.memoryRoot;
  const candidates = isAbsolute(path) ? [path] : [];
  // "/kubepods/pod1/x" may mean a path inside the memory hierarchy, unless it already is one
  if (root !== undefined && !(isAbsolute(path) && (path === root || path.startsWith(root + '/')))) candidates.push(join(root, path));
  for (const dir of candidates) {
    const version = await versionOfDir(dir);
    if (version === undefined) continue;
    const id = (await dirId(dir)) ?? `path:${dir}`;
    return {
      name: name ?? (basename(dir) || 'root'), id, dir, version,
      limitRoot: env.layout.memoryRoot !== undefined && dir.startsWith(env.layout.memoryRoot) ? env.layout.memoryRoot : undefined,
      pressureDir: undefined, pids: [], problem: undefined,
    };
  }
  return {
    name: name ?? (basename(path) || 'root'), id: `path:${path}`, dir: undefined, version: undefined, limitRoot: undefined,
    pressureDir: undefined, pids: [],
    problem: `no memory cgroup at ${candidates.join(' or ') || path} (no memory.current or memory.usage_in_bytes there)`,
  };
}

interface Group {
  readonly path: string;
  readonly pids: number[];
  mainComm: string;
  mainStart: number;
  mainPid: number;
}

/**
 * Pod mode (DESIGN §4): group every visible process by memory cgroup; skip kernel threads, the
 * pause process, the agent's own cgroup and the root cgroup. Name each group by
 * HEADROOM_TARGET_CONTAINER (one group), the NAME=COMM map, or its main process's comm.
 */
export async function discoverPod(
  env: DiscoveryEnv,
  naming: { readonly container: string | undefined; readonly containerMap: ReadonlyMap<string, string> },
): Promise<DiscoveryResult> {
  const errors: ScopedError[] = [];
  const notes: string[] = [];
  const self = await readProcCgroup(env.procRoot, 'self');
  if (!self.ok) errors.push({ container: undefined, error: self.error });
  const selfPath = self.ok ? memoryPath(self.value, env.layout) : undefined;
  const pids = await listPids(env.procRoot);
  if (!pids.ok) return { targets: [], errors: [{ container: undefined, error: pids.error }], notes };

  const groups = new Map<string, Group>();
  await mapInBatches(pids.value, 64, async (pid) => {
    const [st, pc] = await Promise.all([readProcStat(env.procRoot, pid), readProcCgroup(env.procRoot, pid)]);
    // A process that exits mid-read is normal churn, not an error.
    if (!st.ok) { if (!isGone(st.error.code)) errors.push({ container: undefined, error: st.error }); return; }
    if (!pc.ok) { if (!isGone(pc.error.code)) errors.push({ container: undefined, error: pc.error }); return; }
    if (isKernelThread(st.value) || st.value.comm === 'pause') return;
    const path = memoryPath(pc.value, env.layout);
    if (path === undefined || path === '/' || path === selfPath) return;
    let g = groups.get(path);
    if (!g) {
      g = { path, pids: [], mainComm: st.value.comm, mainStart: st.value.startTime, mainPid: pid };
      groups.set(path, g);
    }
    g.pids.push(pid);
    // The main process is the oldest one (a container's init), ties to the lower PID.
    if (st.value.startTime < g.mainStart || (st.value.startTime === g.mainStart && pid < g.mainPid)) {
      g.mainComm = st.value.comm; g.mainStart = st.value.startTime; g.mainPid = pid;
    }
  });

  const ordered = [...groups.values()].sort((a, b) => a.mainStart - b.mainStart || a.mainPid - b.mainPid);
  if (naming.container !== undefined && ordered.length > 1) {
    notes.push(`${ordered.length} containers are visible (${ordered.map((g) => g.mainComm).join(', ')}); HEADROOM_TARGET_CONTAINER=${naming.container} can name only one: set NAME=COMM pairs, e.g. ${naming.container}=${ordered[0]!.mainComm}`);
  }
  const used = new Map<string, number>();
  const targets: Target[] = [];
  for (const g of ordered) {
    let name = naming.containerMap.get(g.mainComm)
      ?? (naming.container !== undefined && ordered.length === 1 ? naming.container : g.mainComm);
    const n = (used.get(name) ?? 0) + 1;
    used.set(name, n);
    if (n > 1) name = `${name}-${n}`;
    g.pids.sort((a, b) => a - b);
    const r = await targetForPid(env, g.mainPid, name, g.pids);
    for (const error of r.errors) errors.push({ container: name, error });
    if (r.target) targets.push(r.target);
  }
  return { targets, errors, notes };
}
