#!/usr/bin/env node
// Workload: page cache flood. Writes a file (--file-mib, larger than the memory limit) on a real
// disk file system, then reads it back with every 1 MiB chunk read --reads times in a row (the
// second read of a page moves it to the active list, as an app that re-reads its data does), and
// repeats write + read for --seconds. Optionally first fills a tmpfs directory with --tmpfs-mib of
// 1 MiB files as fast as it can (like unpacking into an emptyDir medium: Memory). With --write-once
// the file is written once and then read over and over: a hot data set that fits the limit, as a
// database or a search index keeps it (all of it active page cache, all of it droppable).
//   node pagecache.mjs --file /var/tmp/x/data [--file-mib 512] [--reads 2] [--seconds 180]
//                      [--tmpfs-dir /dev/shm/x --tmpfs-mib 154] [--write-once]
// Exits 0 after --seconds; the caller removes the file and the tmpfs directory.
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    file: { type: 'string' },
    'file-mib': { type: 'string', default: '512' },
    reads: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '180' },
    'tmpfs-dir': { type: 'string' },
    'tmpfs-mib': { type: 'string', default: '0' },
    'write-once': { type: 'boolean', default: false },
  },
});
if (!values.file) throw new Error('--file is required');
const MiB = 1024 * 1024;
const size = Number(values['file-mib']);
const reads = Number(values.reads);
const until = Date.now() + Number(values.seconds) * 1000;
const buf = Buffer.alloc(MiB, 0x33);

if (values['tmpfs-dir']) {
  const n = Number(values['tmpfs-mib']);
  for (let i = 0; i < n; i++) writeFileSync(join(values['tmpfs-dir'], `f${i}`), buf);
  console.log(`tmpfs: ${n} MiB`);
}

// Synchronous I/O in slices, yielding between them, so the loop stays responsive to signals.
let passes = 0;
async function main() {
  while (Date.now() < until) {
    let fd;
    if (passes === 0 || !values['write-once']) {
      fd = openSync(values.file, 'w');
      for (let i = 0; i < size && Date.now() < until; i++) {
        writeSync(fd, buf, 0, MiB, i * MiB);
        if (i % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      closeSync(fd);
    }
    fd = openSync(values.file, 'r');
    for (let i = 0; i < size && Date.now() < until; i++) {
      for (let k = 0; k < reads; k++) readSync(fd, buf, 0, MiB, i * MiB);
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    closeSync(fd);
    passes++;
  }
  console.log(`${passes} passes`);
}
main();
