#!/usr/bin/env node
// Workload: sudden steps of anonymous memory. Each step allocates at once (as fast as the pages can
// be touched) until the process's RssAnon reaches the target, then holds it.
//   node steps.mjs --steps 50:20,236:20,300:0     (target MiB : hold seconds; 0 = forever)
// Exits 0 after the last step's hold.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '50:20,236:20,300:0' } } });
const MiB = 1024 * 1024;
const steps = values.steps.split(',').map((s) => s.split(':').map(Number));
const chunks = [];

function rssAnon() {
  const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

async function main() {
  for (const [mib, holdS] of steps) {
    while (rssAnon() < mib * MiB) {
      const b = Buffer.allocUnsafeSlow(MiB);
      b.fill(chunks.length & 0xff);
      chunks.push(b);
    }
    console.log(`at ${(rssAnon() / MiB).toFixed(0)} MiB, holding ${holdS || 'forever'} s`);
    if (!holdS) await new Promise(() => setInterval(() => {}, 1 << 30));
    await new Promise((r) => setTimeout(r, holdS * 1000));
  }
}
main();
