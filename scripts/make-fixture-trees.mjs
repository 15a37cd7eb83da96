#!/usr/bin/env node
// Builds the fixture trees the golden end-to-end test runs the agent on, from files captured on
// real kernels (test/fixtures/v1, v2: see scripts/capture-fixtures.sh). Each tree imitates what the
// headroom sidecar sees in a pod with shareProcessNamespace: true:
//   proc/1           the pause container (skipped)
//   proc/7, proc/8   the app container's processes
//   proc/9           a second container whose cgroup cannot be read (pod-v2: no /proc/9/root)
//   proc/20 (=self)  headroom itself (its own cgroup is skipped)
//   sys/fs/cgroup    headroom's own cgroup mount
// Run: node scripts/make-fixture-trees.mjs   (rewrites test/fixtures/trees/)
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const FIX = new URL('../test/fixtures/', import.meta.url).pathname;
const OUT = join(FIX, 'trees');

function put(path, text) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

/** Copy a captured cgroup case's memory.* files (not cgroup.procs) into dir. */
function cgroupFiles(kind, name, dir, pids) {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(join(FIX, kind, name))) {
    if (f.startsWith('memory.') || f === 'cgroup.controllers') cpSync(join(FIX, kind, name, f), join(dir, f));
  }
  put(join(dir, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
}

/** A process: stat/status/smaps_rollup from the captured anon workload, renamed and re-numbered. */
function proc(root, kind, pid, comm, cgroupText, startTime, scale = 1) {
  const src = join(FIX, kind, 'anon/proc/4242');
  const stat = readFileSync(join(src, 'stat'), 'utf8')
    .replace(/^\d+ \([^)]*\)/, `${pid} (${comm})`)
    .split(' ');
  stat[21] = String(startTime); // field 22: starttime
  put(join(root, String(pid), 'stat'), stat.join(' '));
  put(join(root, String(pid), 'comm'), `${comm}\n`);
  put(join(root, String(pid), 'cgroup'), cgroupText);
  const kb = (text) => text.replace(/(\d+) kB/g, (_, n) => `${Math.round(Number(n) * scale)} kB`);
  put(join(root, String(pid), 'status'), kb(readFileSync(join(src, 'status'), 'utf8')).replace(/^Name:.*$/m, `Name:\t${comm}`));
  put(join(root, String(pid), 'smaps_rollup'), kb(readFileSync(join(src, 'smaps_rollup'), 'utf8')));
}

rmSync(OUT, { recursive: true, force: true });

// cgroup v2, private cgroup namespaces (the containerd default): other containers' paths are
// outside headroom's namespace ("/../<id>"); their files are read through /proc/PID/root.
{
  const t = join(OUT, 'pod-v2');
  const P = join(t, 'proc');
  proc(P, 'v2', 1, 'pause', '0::/../cri-pause\n', 100);
  proc(P, 'v2', 7, 'node', '0::/../cri-app\n', 200);
  proc(P, 'v2', 8, 'worker', '0::/../cri-app\n', 300, 0.25);
  proc(P, 'v2', 9, 'postgres', '0::/../cri-db\n', 250, 0.5);
  proc(P, 'v2', 20, 'node', '0::/\n', 400, 0.4);
  cpSync(join(P, '20'), join(P, 'self'), { recursive: true });
  cgroupFiles('v2', 'anon', join(P, '7/root/sys/fs/cgroup'), [7, 8]);
  cgroupFiles('v2', 'idle', join(t, 'sys/fs/cgroup'), [20]);
  put(join(t, 'sys/fs/cgroup/cgroup.controllers'), 'cpuset cpu io memory pids\n');
}

// cgroup v1 (no cgroup namespace): absolute paths; each container's /sys/fs/cgroup/memory is its
// own cgroup directory, so the agent reads the app's through /proc/PID/root as well.
{
  const t = join(OUT, 'pod-v1');
  const P = join(t, 'proc');
  const pod = '/kubepods/burstable/pod0c4a7d3e';
  const v1 = (id) => `12:memory:${pod}/${id}\n11:pids:${pod}/${id}\n0::/\n`;
  proc(P, 'v1', 1, 'pause', v1('pause'), 100);
  proc(P, 'v1', 7, 'java', v1('app'), 200);
  proc(P, 'v1', 20, 'node', v1('headroom'), 400, 0.4);
  cpSync(join(P, '20'), join(P, 'self'), { recursive: true });
  cgroupFiles('v1', 'shmem', join(P, '7/root/sys/fs/cgroup/memory'), [7]);
  cgroupFiles('v1', 'idle', join(t, 'sys/fs/cgroup/memory'), [20]);
}
console.log(`wrote ${OUT}`);
