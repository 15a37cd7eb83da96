#!/usr/bin/env node
// Workload: leaks anonymous memory at a steady rate and touches every page. Unlike ramp.mjs the
// rate is paced by the wall clock, so a busy machine does not slow the leak down.
//   node leak.mjs --rate-mib-s 5 [--start-mib 0] [--max-mib 0 (= until killed)] [--hold-s 0 (= forever)]
// --start-mib and --max-mib are targets for the process's resident anonymous memory (RssAnon,
// node's own included): it jumps to --start-mib at once, then grows at --rate-mib-s up to --max-mib,
// holds it --hold-s seconds and exits 0.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'rate-mib-s': { type: 'string', default: '1' },
    'start-mib': { type: 'string', default: '0' },
    'max-mib': { type: 'string', default: '0' },
    'hold-s': { type: 'string', default: '0' },
    'chunk-kib': { type: 'string', default: '256' },
  },
});
const MiB = 1024 * 1024;
const rate = Number(values['rate-mib-s']) * MiB;
const chunk = Number(values['chunk-kib']) * 1024;
const max = Number(values['max-mib']) * MiB;
const hold = Number(values['hold-s']) * 1000;

function rssAnon() {
  const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}
const base = rssAnon();
const start = Math.max(0, Number(values['start-mib']) * MiB - base); // bytes to allocate at once
const cap = max > 0 ? max - base : Infinity; // bytes allocated in total
const chunks = [];
let allocated = 0;
const t0 = Date.now();
let heldSince;

function allocTo(target) {
  while (allocated + chunk <= target) {
    const b = Buffer.allocUnsafeSlow(chunk); // off-heap: no V8 heap limit
    b.fill(allocated & 0xff); // touch every page
    chunks.push(b);
    allocated += chunk;
  }
}

function tick() {
  const target = Math.min(cap, start + (rate * (Date.now() - t0)) / 1000);
  allocTo(target);
  if (allocated + chunk > cap) {
    heldSince ??= Date.now();
    if (hold > 0 && Date.now() - heldSince >= hold) process.exit(0);
  }
}
allocTo(start);
setInterval(tick, 50);
