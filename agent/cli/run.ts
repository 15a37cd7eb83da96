// `headroom run --memory 256M -- COMMAND`: make a child memory cgroup below our own (v1 or v2,
// whichever holds the memory controller), start COMMAND inside it, and remove it afterwards.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryPath, readProcCgroup, type CgroupLayout } from '../sources/cgroup.js';
import type { Logger } from '../log.js';

export interface RunCgroup {
  /** memory cgroup directory of the command */
  readonly dir: string;
  readonly version: 1 | 2;
  /** hybrid hosts: a twin cgroup in the unified hierarchy, for PSI */
  readonly pressureDir: string | undefined;
  /** cgroup.procs files the command must join before it execs */
  readonly procsFiles: readonly string[];
  readonly cleanup: () => Promise<void>;
}

export class RunError extends Error {
  override name = 'RunError';
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return 'permission denied (run as root, or give headroom a delegated cgroup)';
  if (e?.code === 'EROFS') return 'the cgroup file system is read-only here';
  if (e?.code === 'EBUSY') return "other processes share headroom's cgroup (cgroup v2 allows no processes in a cgroup that enables controllers for children): start headroom in a cgroup of its own";
  return e?.message ?? String(err);
}

async function tryWrite(path: string, value: string): Promise<NodeJS.ErrnoException | undefined> {
  try {
    await writeFile(path, value);
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** Kill whatever is left in a cgroup and remove it, waiting (bounded) until it is empty. */
async function removeCgroup(dir: string, version: 1 | 2): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let procs: number[] = [];
    try {
      procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    }
    if (procs.length > 0) {
      if (version === 2 && i === 0) await tryWrite(join(dir, 'cgroup.kill'), '1'); // 5.14+
      for (const p of procs) { try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ } }
      await sleep(50);
      continue;
    }
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await sleep(50); // the last task is still exiting
    }
  }
  throw new RunError(`cgroup ${dir} did not become empty; remove it by hand`);
}

export async function createRunCgroup(
  procRoot: string,
  layout: CgroupLayout,
  name: string,
  limit: number | undefined,
  log: Logger,
): Promise<RunCgroup> {
  if (layout.memoryRoot === undefined || layout.memoryVersion === undefined) {
    throw new RunError('no cgroup memory controller is mounted (checked --path.cgroup for v2 cgroup.controllers and v1 memory/)');
  }
  const self = await readProcCgroup(procRoot, 'self');
  if (!self.ok) throw new RunError(self.error.message);
  const own = memoryPath(self.value, layout);
  if (own === undefined || own.startsWith('/..')) throw new RunError('cannot tell which memory cgroup headroom itself is in (/proc/self/cgroup)');
  const ownDir = join(layout.memoryRoot, own);
  const dir = join(ownDir, name);
  const undo: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const f of undo.reverse()) {
      try { await f(); } catch (err) { log.warn(`cleanup: ${errText(err)}`); }
    }
    undo.length = 0;
  };
  try {
    if (layout.memoryVersion === 2) {
      // v2's "no internal processes" rule: a cgroup with processes cannot enable controllers for
      // its children. If ours has processes, move headroom into a leaf of its own first.
      const subtree = join(ownDir, 'cgroup.subtree_control');
      const enabled = (await readFile(subtree, 'utf8').catch(() => '')).split(/\s+/).includes('memory');
      if (!enabled) {
        let err = await tryWrite(subtree, '+memory');
        if (err?.code === 'EBUSY') {
          const leaf = join(ownDir, 'headroom-agent');
          await mkdir(leaf).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
          await writeFile(join(leaf, 'cgroup.procs'), String(process.pid));
          undo.push(async () => {
            await writeFile(join(ownDir, 'cgroup.procs'), String(process.pid));
            await rmdir(leaf);
          });
          err = await tryWrite(subtree, '+memory');
        }
        if (err) throw new RunError(`cannot enable the memory controller in ${ownDir}: ${errText(err)}`);
        undo.push(async () => { await tryWrite(subtree, '-memory'); });
      }
    }
    await mkdir(dir);
    undo.push(() => removeCgroup(dir, layout.memoryVersion!));
    if (limit !== undefined) {
      const file = layout.memoryVersion === 2 ? 'memory.max' : 'memory.limit_in_bytes';
      await writeFile(join(dir, file), String(limit));
      // Like Kubernetes' default NoSwap: the limit is a limit, not a trigger to swap.
      if (layout.memoryVersion === 2) await tryWrite(join(dir, 'memory.swap.max'), '0');
    }
    const procsFiles = [join(dir, 'cgroup.procs')];
    let pressureDir: string | undefined;
    if (layout.mode === 'hybrid' && layout.unifiedRoot && self.value.unified !== undefined && !self.value.unified.startsWith('/..')) {
      const twin = join(layout.unifiedRoot, self.value.unified, name);
      try {
        await mkdir(twin);
        undo.push(() => removeCgroup(twin, 2));
        procsFiles.push(join(twin, 'cgroup.procs'));
        pressureDir = twin;
      } catch (err) {
        log.info(`no PSI for the command: cannot create ${twin}: ${errText(err)}`);
      }
    }
    return { dir, version: layout.memoryVersion, pressureDir, procsFiles, cleanup };
  } catch (err) {
    await cleanup();
    if (err instanceof RunError) throw err;
    throw new RunError(`cannot create memory cgroup ${dir}: ${errText(err)}`);
  }
}

/** Starts the command so that it joins the cgroup(s) before exec: nothing it allocates escapes. */
export function spawnInCgroup(
  command: readonly string[], procsFiles: readonly string[], opts: Pick<SpawnOptions, 'stdio' | 'env'> = { stdio: 'inherit' },
): ChildProcess {
  const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
  return spawn('/bin/sh', ['-c', script, 'headroom-run', String(procsFiles.length), ...procsFiles, ...command], opts);
}

export const RELAYED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return 1;
}
