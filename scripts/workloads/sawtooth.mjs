#!/usr/bin/env node
// Workload: a GC-like sawtooth with a rising floor. Each period it allocates --burst-mib of
// short-lived 1 MiB buffers over --burst-s (touched), keeps --retain-mib-s × period of them for
// good, drops the rest and runs a full GC, which frees their off-heap memory at once.
//   node --expose-gc sawtooth.mjs [--period-s 3] [--burst-s 1.5] [--burst-mib 60] [--retain-mib-s 2]
// Runs until killed. Start it with MALLOC_MMAP_THRESHOLD_=131072 so glibc returns freed buffers to
// the kernel (munmap) instead of keeping them in its heap.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'period-s': { type: 'string', default: '3' },
    'burst-s': { type: 'string', default: '1.5' },
    'burst-mib': { type: 'string', default: '60' },
    'retain-mib-s': { type: 'string', default: '2' },
  },
});
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const MiB = 1024 * 1024;
const period = Number(values['period-s']) * 1000;
const burstMs = Number(values['burst-s']) * 1000;
const burst = Number(values['burst-mib']);
const retainPerPeriod = Math.round(Number(values['retain-mib-s']) * Number(values['period-s']));
const retained = [];
let garbage = [];
let cycleStart = Date.now();
let allocatedThisCycle = 0;

function alloc() {
  const b = Buffer.allocUnsafeSlow(MiB);
  b.fill(allocatedThisCycle & 0xff);
  return b;
}

setInterval(() => {
  const now = Date.now();
  if (now - cycleStart >= period) {
    // end of the period: keep some, drop the rest, collect
    retained.push(...garbage.slice(0, retainPerPeriod));
    garbage = [];
    // collect from a fresh task: a register of this callback's frame still holds the old array
    setImmediate(() => globalThis.gc());
    cycleStart = now;
    allocatedThisCycle = 0;
    return;
  }
  const target = Math.min(burst, Math.ceil((burst * (now - cycleStart)) / burstMs));
  while (allocatedThisCycle < target) { garbage.push(alloc()); allocatedThisCycle++; }
}, 50);
