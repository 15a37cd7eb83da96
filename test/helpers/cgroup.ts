// Real cgroups for integration tests, created only below the test's own memory cgroup (v1) or as
// siblings of the VM job cgroup (v2), and always removed afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCgroup {
  readonly dir: string;
  readonly version: 1 | 2;
  /** start a command inside the cgroup (it joins before exec) */
  spawn(cmd: string, args: readonly string[], opts?: { stdio?: 'ignore' | 'pipe' }): ChildProcess;
  /** read one of its files */
  read(file: string): string;
  pids(): number[];
  /** kill everything inside and remove it (idempotent) */
  remove(): Promise<void>;
}

/** The v1 memory cgroup directory this process is in. */
export function ownV1MemoryDir(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (!line) throw new Error('no v1 memory controller in /proc/self/cgroup');
  return join('/sys/fs/cgroup/memory', line.split(':').slice(2).join(':'));
}

export function hasV1Memory(): boolean {
  try {
    return process.getuid?.() === 0 && existsSync(join(ownV1MemoryDir(), 'memory.usage_in_bytes'));
  } catch {
    return false;
  }
}

export function isV2Vm(): boolean {
  return process.env['CGV2VM'] === '1' && existsSync('/sys/fs/cgroup/cgroup.controllers');
}

const created = new Set<TestCgroup>();

export function makeCgroup(parent: string, name: string, version: 1 | 2, limit?: number | string): TestCgroup {
  return makeCgroupAt(join(parent, `${name}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`), version, limit);
}

/**
 * Create a cgroup at an exact path (e.g. to re-create one a test removed, as a container runtime
 * does on restart). Same cleanup rules as makeCgroup: removeAllCgroups() removes it.
 */
export function makeCgroupAt(dir: string, version: 1 | 2, limit?: number | string): TestCgroup {
  mkdirSync(dir);
  if (limit !== undefined) writeFileSync(join(dir, version === 2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limit));
  if (version === 2 && existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
  const cg: TestCgroup = {
    dir,
    version,
    spawn(cmd, args, opts = {}) {
      const script = 'echo $$ > "$1" || exit 125; shift; exec "$@"';
      return spawn('/bin/sh', ['-c', script, 'sh', join(dir, 'cgroup.procs'), cmd, ...args], { stdio: opts.stdio ?? 'ignore' });
    },
    read: (file) => readFileSync(join(dir, file), 'utf8'),
    pids: () => {
      try {
        return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    },
    async remove() {
      for (let i = 0; i < 200; i++) {
        if (!existsSync(dir)) break;
        const pids = cg.pids();
        for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
        if (pids.length === 0) {
          try { rmdirSync(dir); break; } catch { /* EBUSY while the last task exits */ }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      created.delete(cg);
      if (existsSync(dir)) throw new Error(`could not remove test cgroup ${dir}`);
    },
  };
  created.add(cg);
  return cg;
}

/** Remove every cgroup this test process made (use in afterAll, and it runs on exit too). */
export async function removeAllCgroups(): Promise<void> {
  for (const cg of [...created]) await cg.remove();
}

/** memory.stat as a map. */
export function statOf(cg: TestCgroup): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of cg.read('memory.stat').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v) m.set(k, Number(v));
  }
  return m;
}
