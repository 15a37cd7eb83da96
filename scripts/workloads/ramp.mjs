#!/usr/bin/env node
// Workload: grows anonymous memory in steps and holds it, touching every page so it is really
// resident. Used by the README demo, the integration tests and benchmarks.
//   node ramp.mjs [--step-mib 4] [--every-ms 100] [--max-mib 0 (= until killed)] [--hold-ms 0 (= forever)]
// Prints one line "allocated N MiB" per step on stdout.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'step-mib': { type: 'string', default: '4' },
    'every-ms': { type: 'string', default: '100' },
    'max-mib': { type: 'string', default: '0' },
    'hold-ms': { type: 'string', default: '0' },
    quiet: { type: 'boolean', default: false },
  },
});
const step = Number(values['step-mib']) * 1024 * 1024;
const every = Number(values['every-ms']);
const max = Number(values['max-mib']) * 1024 * 1024;
const hold = Number(values['hold-ms']);
const chunks = [];
let total = 0;

function grow() {
  if (max > 0 && total >= max) {
    if (!values.quiet) console.log(`holding ${total / 1048576} MiB`);
    if (hold > 0) setTimeout(() => process.exit(0), hold);
    else setInterval(() => {}, 1 << 30);
    return;
  }
  // Buffer.allocUnsafeSlow is off-heap (no V8 heap limit) and fill() touches every page.
  const b = Buffer.allocUnsafeSlow(step);
  b.fill(total & 0xff);
  chunks.push(b);
  total += step;
  if (!values.quiet) console.log(`allocated ${total / 1048576} MiB`);
  setTimeout(grow, every);
}
grow();
