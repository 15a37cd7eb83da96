#!/usr/bin/env node
// Benchmark: headroom's own footprint beside the exporters people would otherwise run, on the same
// load, in one run (absolute numbers drift on shared machines; ratios from one run do not).
//
//   sudo node scripts/bench.mjs [--seconds 60] [--scrapes 300] [--sizes 1,100,1000] [--out docs/benchmarks.md]
//
// For each load size N it makes a real memory cgroup below its own (v1 or v2) holding N processes
// (N-1 sleepers + a churn loop that starts ~20 short-lived processes a second), then runs, on that
// same load: headroom (--cgroup <it>), Debian's prometheus-node-exporter (default collectors) and
// prometheus-process-exporter (configured for the same process names). It measures per exporter:
// idle RSS and RssAnon, peak RSS (VmHWM), CPU seconds per minute at one scrape per second, and the
// median and p99 latency of sequential scrapes with the response body size. The peers are
// installed with apt-get when missing. Needs root. Everything it starts is stopped and the cgroup
// removed at the end, also on failure or Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = new URL('..', import.meta.url).pathname;
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    scrapes: { type: 'string', default: '300' },
    sizes: { type: 'string', default: '1,100,1000' },
    out: { type: 'string', default: join(REPO, 'docs/benchmarks.md') },
    'headroom-args': { type: 'string', default: '' },
    // The node flags the image runs headroom with (Dockerfile CMD); measured as a second headroom row.
    'node-args': { type: 'string', default: '--lite-mode --no-expose-wasm --max-semi-space-size=1 --max-old-space-size=64' },
  },
});
const SECONDS = Number(opt.seconds);
const SCRAPES = Number(opt.scrapes);
const SIZES = opt.sizes.split(',').map(Number);
const TICK = 100; // USER_HZ: /proc/PID/stat times are in clock ticks of 1/100 s on Linux
const children = new Set();
const cgroups = [];
const tmp = mkdtempSync(join(tmpdir(), 'headroom-bench-'));

function sh(cmd) {
  const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
  return (r.stdout ?? '').trim();
}
function start(cmd, args, env = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env }, detached: false });
  p.stderr.on('data', () => {});
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}
async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
function status(pid) {
  const t = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), hwm: kb('VmHWM') };
}
function cpuSeconds(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime (fields 14, 15)
}
async function waitUp(url) {
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url)).ok) return; } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

function ownMemoryCgroup() {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (v1) return { version: 1, dir: join('/sys/fs/cgroup/memory', v1.split(':').slice(2).join(':')) };
  const v2 = lines.find((l) => l.startsWith('0::'));
  return { version: 2, dir: join('/sys/fs/cgroup', v2.slice(3)) };
}

function makeLoad(n) {
  const own = ownMemoryCgroup();
  const dir = join(own.dir, `headroom-bench-${process.pid}-${n}`);
  mkdirSync(dir);
  cgroups.push(dir);
  const sleepers = Math.max(0, n - 2); // + the shell + the churn loop
  const script = `echo $$ > ${dir}/cgroup.procs; i=0; while [ $i -lt ${sleepers} ]; do sleep 100000 & i=$((i+1)); done; ` +
    `while :; do /bin/true; /bin/true; sleep 0.1; done`;
  const p = start('/bin/sh', ['-c', script]);
  return { dir, version: own.version, proc: p };
}

function killCgroup(dir) {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (pids.length === 0) { try { rmdirSync(dir); } catch { /* busy */ } }
    spawnSync('sleep', ['0.05']);
  }
}

function cleanup() {
  for (const p of children) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const d of cgroups) killCgroup(d);
  rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('SIGTERM', () => { cleanup(); process.exit(143); });

function ensurePeers() {
  const need = [];
  if (!existsSync('/usr/bin/prometheus-node-exporter')) need.push('prometheus-node-exporter');
  if (!existsSync('/usr/bin/prometheus-process-exporter')) need.push('prometheus-process-exporter');
  if (need.length === 0) return;
  console.error(`installing ${need.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...need], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error('apt-get install failed');
  // The packages enable services on a systemd machine; the benchmark runs its own instances.
  spawnSync('sh', ['-c', 'pkill -x prometheus-node-exporter; pkill -x prometheus-process-exporter; true']);
}

function exporters(load, ports) {
  const pe = join(tmp, `process-exporter-${ports.process}.yml`);
  writeFileSync(pe, 'process_names:\n  - name: "{{.Comm}}"\n    comm: [sleep, sh, "true"]\n');
  const headroomArgs = opt['headroom-args'] ? opt['headroom-args'].split(' ') : [];
  return [
    { name: 'headroom', port: ports.headroom, path: '/metrics',
      start: () => start(process.execPath, [join(REPO, 'dist/agent/main.js'), '--cgroup', load.dir, '--listen', `127.0.0.1:${ports.headroom}`, ...headroomArgs], { HEADROOM_LOG_FORMAT: 'json' }) },
    ...(opt['node-args'] ? [{ name: 'headroom (image flags)', port: ports.headroomFlags, path: '/metrics',
      start: () => start(process.execPath, [...opt['node-args'].split(' '), join(REPO, 'dist/agent/main.js'), '--cgroup', load.dir, '--listen', `127.0.0.1:${ports.headroomFlags}`, ...headroomArgs], { HEADROOM_LOG_FORMAT: 'json' }) }] : []),
    { name: 'node-exporter', port: ports.node, path: '/metrics',
      start: () => start('/usr/bin/prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${ports.node}`]) },
    { name: 'process-exporter', port: ports.process, path: '/metrics',
      start: () => start('/usr/bin/prometheus-process-exporter', [`-web.listen-address=127.0.0.1:${ports.process}`, '-config.path', pe]) },
  ];
}

async function measure(n) {
  const load = makeLoad(n);
  await sleep(3000);
  const count = readFileSync(join(load.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).length;
  const ports = { headroom: await freePort(), headroomFlags: await freePort(), node: await freePort(), process: await freePort() };
  const ex = exporters(load, ports);
  for (const e of ex) { e.proc = e.start(); await waitUp(`http://127.0.0.1:${e.port}${e.path}`); }
  await sleep(10_000); // settle, then idle memory (no scrapes yet beyond the first)
  for (const e of ex) e.idle = status(e.proc.pid);
  // CPU at one scrape per second, all three on the same load at the same time.
  const cpu0 = new Map(ex.map((e) => [e.name, cpuSeconds(e.proc.pid)]));
  const t0 = Date.now();
  for (let s = 0; s < SECONDS; s++) {
    await Promise.all(ex.map((e) => fetch(`http://127.0.0.1:${e.port}${e.path}`).then((r) => r.arrayBuffer())));
    await sleep(Math.max(0, t0 + (s + 1) * 1000 - Date.now()));
  }
  const minutes = (Date.now() - t0) / 60_000;
  for (const e of ex) e.cpuPerMin = (cpuSeconds(e.proc.pid) - cpu0.get(e.name)) / minutes;
  // Scrape latency: sequential scrapes, one exporter at a time.
  for (const e of ex) {
    const lat = [];
    let bytes = 0;
    for (let i = 0; i < SCRAPES; i++) {
      const a = performance.now();
      const body = await (await fetch(`http://127.0.0.1:${e.port}${e.path}`)).arrayBuffer();
      lat.push(performance.now() - a);
      bytes = body.byteLength;
    }
    e.p50 = pct(lat, 0.5); e.p99 = pct(lat, 0.99); e.bytes = bytes;
    e.peak = status(e.proc.pid).hwm;
  }
  for (const e of ex) { e.proc.kill('SIGTERM'); }
  await sleep(500);
  load.proc.kill('SIGKILL');
  killCgroup(load.dir);
  return { n, count, version: load.version, ex };
}

const MiB = 1024 * 1024;
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

function table(results) {
  const rows = ['| processes | exporter | idle RSS MiB | idle RssAnon MiB | peak RSS MiB | CPU s/min (1 scrape/s) | CPU % of a core | scrape p50 ms | scrape p99 ms | body KB |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) for (const e of r.ex) {
    rows.push(`| ${r.count} | ${e.name} | ${f1(e.idle.rss / MiB)} | ${f1(e.idle.anon / MiB)} | ${f1(e.peak / MiB)} | ${f2(e.cpuPerMin)} | ${f2(e.cpuPerMin / 60 * 100)} | ${f2(e.p50)} | ${f2(e.p99)} | ${f1(e.bytes / 1000)} |`);
  }
  return rows.join('\n');
}
function ratios(results) {
  const rows = ['| processes | headroom | vs | idle RSS | peak RSS | CPU | scrape p50 | scrape p99 | body |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) {
    for (const h of r.ex.filter((x) => x.name.startsWith('headroom'))) {
      for (const e of r.ex.filter((x) => !x.name.startsWith('headroom'))) {
        rows.push(`| ${r.count} | ${h.name} | ${e.name} | ${f2(h.idle.rss / e.idle.rss)} | ${f2(h.peak / e.peak)} | ${f2(h.cpuPerMin / e.cpuPerMin)} | ${f2(h.p50 / e.p50)} | ${f2(h.p99 / e.p99)} | ${f2(h.bytes / e.bytes)} |`);
      }
    }
  }
  return rows.join('\n');
}

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root (it creates a memory cgroup)');
  if (!existsSync(join(REPO, 'dist/agent/main.js'))) throw new Error('build first: npm run build');
  ensurePeers();
  const results = [];
  for (const n of SIZES) {
    console.error(`load: ${n} processes ...`);
    results.push(await measure(n));
  }
  const ver = (cmd) => sh(`${cmd} --version 2>&1 | head -1`);
  const machine = [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), kernel ${sh('uname -r')}, cgroup v${results[0]?.version} memory controller`,
    `- headroom ${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version} on Node ${process.version}${opt['headroom-args'] ? ` with ${opt['headroom-args']}` : ''}; "image flags" = node ${opt['node-args']}`,
    `- ${ver('/usr/bin/prometheus-node-exporter')}`,
    `- ${ver('/usr/bin/prometheus-process-exporter')}`,
    `- ${SECONDS} s at one scrape per second for CPU; ${SCRAPES} sequential scrapes for latency`,
  ].join('\n');
  const md = `${machine}\n\n${table(results)}\n\nheadroom's ratio to each peer (below 1 = headroom is cheaper):\n\n${ratios(results)}\n`;
  console.log(md);
  return md;
}

main().then((md) => {
  cleanup();
  if (opt.out !== '-') {
    const file = opt.out;
    const head = existsSync(file) ? readFileSync(file, 'utf8').split('<!-- bench:start -->')[0] : '# Benchmarks\n\n';
    const tail = existsSync(file) && readFileSync(file, 'utf8').includes('<!-- bench:end -->') ? readFileSync(file, 'utf8').split('<!-- bench:end -->')[1] : '\n';
    writeFileSync(file, `${head}<!-- bench:start -->\n${md}<!-- bench:end -->${tail}`);
    console.error(`written to ${file}`);
  }
}, (err) => { cleanup(); console.error(`bench failed: ${err.stack ?? err}`); process.exit(1); });
