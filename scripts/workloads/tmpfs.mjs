#!/usr/bin/env node
// Workload: grows a tmpfs (e.g. /dev/shm, emptyDir medium: Memory) by writing 1 MiB files at a
// steady wall-clock-paced rate. tmpfs pages are shmem: charged to the writer's memory cgroup and not
// reclaimable without swap.
//   node tmpfs.mjs --dir /dev/shm/x [--rate-mib-s 3] [--max-mib 0 (= until killed)] [--hold-s 0 (= forever)]
// The caller removes the directory afterwards (files outlive the process).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    'rate-mib-s': { type: 'string', default: '3' },
    'max-mib': { type: 'string', default: '0' },
    'hold-s': { type: 'string', default: '0' },
  },
});
if (!values.dir) throw new Error('--dir is required');
const rate = Number(values['rate-mib-s']);
const max = Number(values['max-mib']);
const hold = Number(values['hold-s']) * 1000;
const buf = Buffer.alloc(1024 * 1024, 0x5a);
let files = 0;
const t0 = Date.now();
let heldSince;

setInterval(() => {
  const target = Math.floor((rate * (Date.now() - t0)) / 1000);
  while (files < target && (max <= 0 || files < max)) writeFileSync(join(values.dir, `f${files++}`), buf);
  if (max > 0 && files >= max) {
    heldSince ??= Date.now();
    if (hold > 0 && Date.now() - heldSince >= hold) process.exit(0);
  }
}, 50);
