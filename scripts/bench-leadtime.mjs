#!/usr/bin/env node
// Lead-time benchmark: how long before the kernel's OOM kill does each rule warn, and does it stay
// quiet when nothing gets killed? Real workloads in real memory cgroups, one run each; every rule
// is evaluated on the same 1 s samples.
//
//   sudo node scripts/bench-leadtime.mjs [--only leak-1,tmpfs-growth] [--limit-mib 256] [--out docs/leadtime.json]
//
// (a) headroom: the agent's own Sampler (dist/agent/sampler.js) in this process, with the default
//     risk configuration as the agent's config parser produces it and a 1 s interval, watching the
//     workload's cgroup through targetForCgroup. This script drives its ticks, one per second, and
//     reads sampler.status() after each: working set, unreclaimable, usage, limit, ETA, risk.
// (b) the static rule used today: working_set / limit > 0.8 for: 2m, on the same 1 s samples.
// (c) the same rule as Prometheus sees it with a 30 s scrape: the samples taken every 30 s, for
//     each of the 30 possible scrape phases; `for: 2m` fires when the condition held at consecutive
//     scrapes spanning ≥ 120 s (rule evaluation at the scrape, the best case).
// Kill time: the workload process exits by SIGKILL, and the cgroup's oom_kill counter rose.
//
// Needs root, a built agent (npm run build) and a cgroup v1 or v2 memory controller. The cgroups are
// made below this process's own (the agent's createRunCgroup) and removed at the end, as are the
// tmpfs and page-cache files, also on failure or Ctrl-C.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = new URL('..', import.meta.url).pathname;
const DIST = join(REPO, 'dist/agent');
const WL = join(REPO, 'scripts/workloads');
const MiB = 1024 * 1024;

const fromOutGiven = process.argv.some((a) => a === '--out' || a.startsWith('--out='));
const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    'limit-mib': { type: 'string', default: '256' },
    out: { type: 'string', default: join(REPO, 'docs/leadtime.json') },
    from: { type: 'string' }, // re-evaluate the rules on the samples of an earlier run's JSON, run nothing
    'shm-dir': { type: 'string', default: '/dev/shm' },
    'disk-dir': { type: 'string', default: '/var/tmp' },
    help: { type: 'boolean', default: false },
  },
});

// ---- the workloads -------------------------------------------------------------------------------

/** Every workload gets the limit L (bytes), a private tmpfs dir and a private disk dir. */
function workloads(L, shm, disk) {
  const mib = (f) => Math.round((L * f) / MiB);
  const node = process.execPath;
  return [
    { name: 'leak-1', what: 'linear leak 1 MiB/s until killed', expectKill: true, maxS: 600,
      cmd: [node, join(WL, 'leak.mjs'), '--rate-mib-s', '1'] },
    { name: 'leak-5', what: 'linear leak 5 MiB/s until killed', expectKill: true, maxS: 300,
      cmd: [node, join(WL, 'leak.mjs'), '--rate-mib-s', '5'] },
    { name: 'leak-20', what: 'linear leak 20 MiB/s until killed', expectKill: true, maxS: 120,
      cmd: [node, join(WL, 'leak.mjs'), '--rate-mib-s', '20'] },
    { name: 'step-spike', what: `~50 MiB for 20 s, step to 92 % (${mib(0.92)} MiB) for 20 s, step over the limit`, expectKill: true, maxS: 180,
      cmd: [node, join(WL, 'steps.mjs'), '--steps', `50:20,${mib(0.92)}:20,${mib(1.2)}:0`] },
    { name: 'gc-sawtooth', what: 'sawtooth: +60 MiB garbage per 3 s then gc(), floor rising 2 MiB/s, until killed', expectKill: true, maxS: 600,
      cmd: [node, '--expose-gc', join(WL, 'sawtooth.mjs'), '--period-s', '3', '--burst-s', '1.5', '--burst-mib', '60', '--retain-mib-s', '2'],
      env: { MALLOC_MMAP_THRESHOLD_: '131072' } },
    { name: 'pagecache-flood', what: `write + read twice a ${mib(2)} MiB file on ${fsType(disk)}, repeatedly, 180 s`, expectKill: false, maxS: 400,
      cmd: [node, join(WL, 'pagecache.mjs'), '--file', join(disk, 'data'), '--file-mib', String(mib(2)), '--reads', '2', '--seconds', '180'] },
    { name: 'hot-file-cache', what: `a ${mib(0.9)} MiB file (90 % of the limit) written once, then read over and over, 240 s`, expectKill: false, maxS: 500,
      cmd: [node, join(WL, 'pagecache.mjs'), '--file', join(disk, 'data'), '--file-mib', String(mib(0.9)), '--reads', '1', '--seconds', '240', '--write-once'] },
    { name: 'tmpfs-growth', what: 'tmpfs (/dev/shm) grows 3 MiB/s until killed', expectKill: true, maxS: 600,
      cmd: [node, join(WL, 'tmpfs.mjs'), '--dir', shm, '--rate-mib-s', '3'] },
    { name: 'tmpfs-below-limit', what: `tmpfs filled to 60 % (${mib(0.6)} MiB) at start, then page-cache churn (${mib(2)} MiB file) 150 s`, expectKill: false, maxS: 400,
      cmd: [node, join(WL, 'pagecache.mjs'), '--tmpfs-dir', shm, '--tmpfs-mib', String(mib(0.6)),
        '--file', join(disk, 'data'), '--file-mib', String(mib(2)), '--reads', '2', '--seconds', '150'] },
    { name: 'slow-leak-levels-off', what: `grows 0.2 MiB/s from 50 % to 70 % (${mib(0.5)} -> ${mib(0.7)} MiB), holds 60 s`, expectKill: false, maxS: 800,
      cmd: [node, join(WL, 'leak.mjs'), '--rate-mib-s', '0.2', '--start-mib', String(mib(0.5)), '--max-mib', String(mib(0.7)), '--hold-s', '60'] },
  ];
}

function fsType(dir) {
  try {
    const m = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' '))
      .filter((f) => f.length > 9 && (dir === f[4] || dir.startsWith(f[4] === '/' ? '/' : `${f[4]}/`)))
      .sort((a, b) => b[4].length - a[4].length)[0];
    return m ? m[m.indexOf('-') + 1] : 'unknown fs';
  } catch { return 'unknown fs'; }
}

// ---- the rules -----------------------------------------------------------------------------------

/** Prometheus `for:` semantics over (t, condition) evaluations: fires at the first evaluation where
 * the condition has held at every evaluation since one ≥ forMs earlier. */
function firesAt(evals, forMs) {
  let activeAt;
  for (const { t, c } of evals) {
    if (!c) { activeAt = undefined; continue; }
    activeAt ??= t;
    if (t - activeAt >= forMs) return t;
  }
  return undefined;
}

function staticRule(samples, ratio, forMs) {
  return firesAt(samples.filter((s) => s.limit).map((s) => ({ t: s.t, c: s.ws / s.limit > ratio })), forMs);
}

/** The static rule with a scrape every scrapeMs at phase (ms after the first sample). A scrape sees
 * the latest sample taken at or before it (and not older than 5 s: none otherwise, like a failed scrape). */
function scrapedRule(samples, ratio, forMs, scrapeMs, phase) {
  if (samples.length === 0) return undefined;
  const evals = [];
  let i = 0;
  for (let t = samples[0].t + phase; t <= samples[samples.length - 1].t; t += scrapeMs) {
    while (i + 1 < samples.length && samples[i + 1].t <= t) i++;
    const s = samples[i];
    if (s.t > t || t - s.t > 5000 || !s.limit) { evals.push({ t, c: false }); continue; }
    evals.push({ t, c: s.ws / s.limit > ratio });
  }
  return firesAt(evals, forMs);
}

const median = (xs) => { const a = [...xs].sort((x, y) => x - y); const n = a.length; return n === 0 ? undefined : n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2; };

/** A rule's outcome: lead before the kill, missed, false alarm or quiet. */
function outcome(fireT, run) {
  if (run.killed) {
    if (fireT !== undefined && fireT <= run.killT) return { verdict: 'warned', leadS: (run.killT - fireT) / 1000, atS: (fireT - run.t0) / 1000 };
    return { verdict: 'missed', leadS: undefined, atS: fireT === undefined ? undefined : (fireT - run.t0) / 1000 };
  }
  if (fireT !== undefined) return { verdict: 'false alarm', leadS: undefined, atS: (fireT - run.t0) / 1000 };
  return { verdict: 'quiet', leadS: undefined, atS: undefined };
}

// ---- cgroups, processes, cleanup -----------------------------------------------------------------

const cleanups = []; // LIFO, each runs once
let child;
async function cleanupAll() {
  if (child && child.exitCode === null && child.signalCode === null) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
  while (cleanups.length > 0) {
    const f = cleanups.pop();
    try { await f(); } catch (err) { console.error(`cleanup: ${err.message ?? err}`); }
  }
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up`);
    cleanupAll().finally(() => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)));
  });
}

const quietLog = {
  debug() {}, info() {},
  warn: (m) => console.error(`warn: ${m}`), error: (m) => console.error(`error: ${m}`),
};

function oomKillsOf(dir, version) {
  try {
    const text = readFileSync(join(dir, version === 2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
    const m = /^oom_kill (\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch { return undefined; }
}

// ---- one workload --------------------------------------------------------------------------------

async function runOne(agent, layout, riskConfig, w, L, dirs) {
  const cg = await agent.createRunCgroup('/proc', layout, `headroom-leadtime-${process.pid}-${w.name}`, L, quietLog);
  let cgDone = false;
  const removeCg = async () => { if (!cgDone) { cgDone = true; await cg.cleanup(); } };
  cleanups.push(removeCg);
  const env = { procRoot: '/proc', layout };
  const target0 = await agent.targetForCgroup(env, cg.dir, w.name);
  const target = { ...target0, pressureDir: cg.pressureDir };
  const sampler = new agent.Sampler({
    procRoot: '/proc', intervalMs: 1000, peakWindowMs: 60_000, processIntervalMs: 10_000, topProcesses: 10,
    discoveryIntervalMs: 5000, risk: riskConfig, memoryRequest: { container: undefined, bytes: undefined },
    discover: async () => ({ targets: [target], errors: [], notes: [] }),
  });
  const events = [];
  sampler.on((e) => {
    if (e.type === 'risk') events.push({ t: Date.now(), type: 'risk', from: e.from, to: e.to, eta: e.eta, slope: e.slope, causes: e.causes });
    else if (e.type === 'oom_kill') events.push({ t: Date.now(), type: 'oom_kill', count: e.count, total: e.total });
    else if (e.type === 'note' || e.type === 'read_error') events.push({ t: Date.now(), type: e.type, text: e.message ?? `${e.error?.source}: ${e.error?.message}` });
  });
  const kills0 = oomKillsOf(cg.dir, cg.version) ?? 0;

  // Start the command inside the cgroup(s) before it execs, exactly as `headroom run` does.
  const t0 = Date.now();
  child = agent.spawnInCgroup(w.cmd, cg.procsFiles, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(w.env ?? {}) } });
  let out = '';
  child.stdout.on('data', (d) => { out = (out + d).slice(-2000); });
  child.stderr.on('data', (d) => { out = (out + d).slice(-2000); });
  let exit;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { exit = { code, signal, t: Date.now() }; resolve(); }));

  const samples = [];
  const record = () => {
    const st = sampler.status()[0];
    const s = st?.latest;
    if (!s) return;
    const b = s.view.breakdown;
    samples.push({
      t: s.t, usage: s.view.usage, ws: s.view.workingSet, unrec: s.view.unreclaimable, limit: s.view.limit,
      risk: st.risk, eta: st.eta, slope: st.growth,
      anon: b.get('anon'), shmem: b.get('shmem'), file: b.get('file'), kernel: b.get('kernel'),
      active_file: b.get('active_file'), inactive_file: b.get('inactive_file'), dirty: b.get('file_dirty'), writeback: b.get('file_writeback'),
    });
  };
  // One tick per second on the wall clock, as Sampler.start() would; two more after the exit.
  let after = 0;
  let stopped = false;
  for (let k = 0; ; k++) {
    await sampler.tick();
    record();
    if (exit && ++after > 2) break;
    if (!exit && !stopped && Date.now() - t0 > w.maxS * 1000) {
      console.error(`  ${w.name}: still running after ${w.maxS} s, stopping it`);
      stopped = true;
      child.kill('SIGTERM');
    }
    await sleep(Math.max(0, t0 + (k + 1) * 1000 - Date.now()));
  }
  await exited;
  await sampler.stop();
  const kills = (oomKillsOf(cg.dir, cg.version) ?? 0) - kills0;
  await removeCg();
  for (const d of Object.values(dirs)) { rmSync(d, { recursive: true, force: true }); mkdirSync(d); }

  const killed = exit.signal === 'SIGKILL' && kills > 0;
  const base = {
    name: w.name, what: w.what, command: w.cmd.map((a) => a.replace(REPO, '')).join(' '),
    cgroup: { dir: cg.dir, version: cg.version, limitBytes: L, pressureDir: cg.pressureDir ?? null },
    exit: { code: exit.code, signal: exit.signal, afterS: (exit.t - t0) / 1000 }, oomKills: kills, killed, expectKill: w.expectKill,
    output: out.trim().split('\n').slice(-3).join(' | '),
    events: events.map((e) => ({ ...e, t: (e.t - t0) / 1000 })),
  };
  return {
    ...base, ...evaluate(base, samples.map((s) => ({ ...s, t: s.t - t0 })), agent, riskConfig),
    columns: COLUMNS,
    samples: samples.map((s) => [(s.t - t0) / 1000, s.usage, s.ws, s.unrec, s.limit ?? null, s.risk, s.eta === undefined ? null : Math.round(s.eta * 10) / 10,
      s.slope === undefined ? null : Math.round(s.slope), s.anon ?? null, s.shmem ?? null, s.file ?? null, s.kernel ?? null,
      s.active_file ?? null, s.inactive_file ?? null, s.dirty ?? null, s.writeback ?? null]),
  };
}

const COLUMNS = ['tS', 'usage', 'ws', 'unrec', 'limit', 'risk', 'eta', 'slope', 'anon', 'shmem', 'file', 'kernel', 'active_file', 'inactive_file', 'dirty', 'writeback'];

/** Every rule's outcome from one run's samples (t in ms since the start). Also used by --from. */
function evaluate(r, samples, agent, riskConfig) {
  const exitT = r.exit.afterS * 1000;
  const run = { t0: 0, killed: r.killed, killT: r.killed ? exitT : undefined };
  // samples taken after the kill do not count for a warning
  const live = samples.filter((s) => s.t <= exitT);
  const firstAt = (pred) => live.find(pred)?.t;
  const hWarn = firstAt((s) => s.risk === 'warning' || s.risk === 'critical');
  const hCrit = firstAt((s) => s.risk === 'critical');
  // headroom's risk replayed with the agent's own nextRisk on the same samples, from the
  // unreclaimable ratio and the ETA alone: what it says where there is no PSI (pure cgroup v1)
  let state = agent.INITIAL_RISK;
  const noPsi = [];
  for (const s of live) {
    state = agent.nextRisk(state, { unreclaimable: s.unrec, limit: s.limit, eta: s.eta }, riskConfig);
    noPsi.push({ t: s.t, level: state.level });
  }
  const npWarn = noPsi.find((x) => x.level !== 'ok')?.t;
  const npCrit = noPsi.find((x) => x.level === 'critical')?.t;
  const s1 = staticRule(live, 0.8, 120_000);
  const phases = [];
  for (let p = 0; p < 30_000; p += 1000) phases.push({ phaseS: p / 1000, ...outcome(scrapedRule(live, 0.8, 120_000, 30_000, p), run) });
  const leads = phases.filter((p) => p.verdict === 'warned').map((p) => p.leadS);
  const fired = phases.filter((p) => p.verdict === 'warned' || p.verdict === 'false alarm').length;
  const max = (f) => live.reduce((m, s) => (f(s) === undefined ? m : Math.max(m ?? -Infinity, f(s))), undefined);
  const min = (f) => live.reduce((m, s) => (f(s) === undefined ? m : Math.min(m ?? Infinity, f(s))), undefined);
  const warnEvent = r.events.find((e) => e.type === 'risk' && e.to !== 'ok');
  return {
    headroom: {
      warning: outcome(hWarn, run), critical: outcome(hCrit, run),
      firstCauses: warnEvent?.causes, firstEta: warnEvent?.eta,
      minEtaS: min((s) => s.eta), maxUnreclaimableRatio: max((s) => (s.limit ? s.unrec / s.limit : undefined)),
      withoutPsi: { warning: outcome(npWarn, run), critical: outcome(npCrit, run) },
    },
    static1s: outcome(s1, run),
    static30s: {
      firedPhases: fired, phases: phases.length,
      verdict: run.killed ? (leads.length === phases.length ? 'warned' : leads.length === 0 ? 'missed' : 'sometimes') : (fired > 0 ? 'false alarm' : 'quiet'),
      medianLeadS: median(leads), minLeadS: leads.length ? Math.min(...leads) : undefined, maxLeadS: leads.length ? Math.max(...leads) : undefined,
      byPhase: phases,
    },
    peaks: {
      unreclaimable: max((s) => s.unrec), workingSet: max((s) => s.ws), usage: max((s) => s.usage),
      workingSetRatio: max((s) => (s.limit ? s.ws / s.limit : undefined)), shmem: max((s) => s.shmem), kernel: max((s) => s.kernel),
      dirty: max((s) => s.dirty), writeback: max((s) => s.writeback), activeFile: max((s) => s.active_file),
    },
  };
}

// ---- output --------------------------------------------------------------------------------------

const f0 = (x) => (x === undefined ? '–' : x.toFixed(Math.abs(x) < 10 ? 1 : 0));
const f1 = (x) => (x === undefined ? '–' : x.toFixed(1));
const mb = (x) => (x === undefined ? '–' : (x / MiB).toFixed(0));
const pc = (x) => (x === undefined ? '–' : `${(x * 100).toFixed(0)} %`);

function cell(o) {
  if (o.verdict === 'warned') return `**${f0(o.leadS)} s**`;
  if (o.verdict === 'false alarm') return `false alarm (at ${f0(o.atS)} s)`;
  if (o.verdict === 'missed') return o.atS === undefined ? 'missed' : `missed (fired ${f0(o.atS)} s, after the kill)`;
  return 'quiet';
}
function cell30(s) {
  if (s.verdict === 'quiet') return 'quiet';
  if (s.verdict === 'false alarm') return `false alarm (${s.firedPhases}/${s.phases} phases)`;
  if (s.verdict === 'missed') return 'missed';
  const range = s.minLeadS === s.maxLeadS ? '' : ` (${f0(s.minLeadS)}–${f0(s.maxLeadS)})`;
  return `**${f0(s.medianLeadS)} s**${range}${s.verdict === 'sometimes' ? `, missed in ${s.phases - s.firedPhases}/${s.phases} phases` : ''}`;
}

function tables(results) {
  const a = [
    '| workload | killed | kill after | headroom warning | headroom critical | headroom without PSI: warning / critical | static 1 s (ws/limit > 0.8 for 2m) | static, 30 s scrape (median, range over phases) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    a.push(`| ${r.name} | ${r.killed ? 'yes' : 'no'}${r.killed !== r.expectKill ? ' (unexpected)' : ''} | ${r.killed ? `${f0(r.exit.afterS)} s` : '–'} | ${cell(r.headroom.warning)} | ${cell(r.headroom.critical)} | ${cell(r.headroom.withoutPsi.warning)} / ${cell(r.headroom.withoutPsi.critical)} | ${cell(r.static1s)} | ${cell30(r.static30s)} |`);
  }
  const b = [
    '| workload | peak unreclaimable MiB | peak working set MiB | max unreclaimable/limit | max working set/limit | min ETA s | headroom first cause |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    b.push(`| ${r.name} | ${mb(r.peaks.unreclaimable)} | ${mb(r.peaks.workingSet)} | ${pc(r.headroom.maxUnreclaimableRatio)} | ${pc(r.peaks.workingSetRatio)} | ${f1(r.headroom.minEtaS)} | ${r.headroom.firstCauses?.[0] ?? '–'} |`);
  }
  return `${a.join('\n')}\n\nLead = seconds from the first sample at which the rule fired to the kill (the workload's SIGKILL exit). Bold = warned in time.\n\n${b.join('\n')}\n`;
}

function machineLines(machine) {
  const rc = machine.risk;
  return [
    `- date: ${machine.date}`,
    `- kernel ${machine.kernel}, cgroup ${machine.cgroup}, swap ${machine.swap}, MGLRU ${machine.mglru}`,
    `- Node ${machine.node}, ${machine.cpus}, ${machine.memory} RAM`,
    `- limit ${machine.limit} per workload; page cache on ${machine.diskDir}, tmpfs ${machine.shmDir}`,
    `- headroom defaults (agent's config parser): warning ${rc.warningRatio} / critical ${rc.criticalRatio} of the limit, ETA warning ${rc.etaWarningS} s / critical ${rc.etaCriticalS} s over a ${rc.etaWindowMs / 1000} s window, PSI full warning ${rc.psiFullWarning}, clear after ${rc.clearSamples} samples; interval 1 s`,
  ].join('\n');
}

/** --from: the rules again on recorded samples (e.g. after changing this script's evaluation). */
function reevaluate(agent) {
  const j = JSON.parse(readFileSync(opt.from, 'utf8'));
  const results = j.results.map((r) => {
    const samples = r.samples.map((a) => Object.fromEntries(r.columns.map((c, i) => [c === 'tS' ? 't' : c, c === 'tS' ? a[i] * 1000 : a[i] ?? undefined])));
    return { ...r, ...evaluate(r, samples, agent, j.machine.risk) };
  });
  console.log(machineLines(j.machine));
  console.log(`\n${tables(results)}`);
  // --from only re-scores: it writes a file only when --out names one, never over the recorded data
  if (fromOutGiven && opt.out !== '-' && resolve(opt.out) !== resolve(opt.from)) writeFileSync(opt.out, `${JSON.stringify({ machine: j.machine, results }, null, 1)}\n`);
}

// ---- main ----------------------------------------------------------------------------------------

function fail(msg) {
  console.error(`bench-leadtime: ${msg}`);
  process.exit(2);
}

async function main() {
  if (opt.help) {
    console.log('sudo node scripts/bench-leadtime.mjs [--only NAME,NAME] [--limit-mib 256] [--out docs/leadtime.json (- = none)] [--shm-dir /dev/shm] [--disk-dir /var/tmp]');
    console.log(`workloads: ${workloads(256 * MiB, '', '/').map((w) => w.name).join(', ')}`);
    return;
  }
  if (process.getuid?.() !== 0 && !opt.from) fail('run as root: it creates memory cgroups');
  if (!existsSync(join(DIST, 'sampler.js'))) fail('dist/agent/sampler.js is missing: run `npm run build` first');
  const newest = (dir) => readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts')).reduce((m, e) => Math.max(m, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs), 0);
  if (newest(join(REPO, 'agent')) > statSync(join(DIST, 'sampler.js')).mtimeMs) console.error('note: agent/ has sources newer than dist/: `npm run build` to measure them');

  const [{ Sampler }, { targetForCgroup }, { detectLayout }, { createRunCgroup, spawnInCgroup }, { parseCli }, { nextRisk, INITIAL_RISK }] = await Promise.all([
    import(join(DIST, 'sampler.js')), import(join(DIST, 'discovery.js')), import(join(DIST, 'sources/cgroup.js')),
    import(join(DIST, 'cli/run.js')), import(join(DIST, 'config.js')), import(join(DIST, 'analysis/risk.js')),
  ]);
  const agent = { Sampler, targetForCgroup, createRunCgroup, spawnInCgroup, nextRisk, INITIAL_RISK };
  if (opt.from) return reevaluate(agent);
  const layout = await detectLayout('/sys/fs/cgroup');
  if (layout.memoryVersion === undefined) fail('no cgroup memory controller (v1 memory/ or v2 cgroup.controllers with memory) under /sys/fs/cgroup');
  // The defaults exactly as the agent parses them (no HEADROOM_* variables from this environment).
  const parsed = parseCli(['--cgroup', '/', '--interval', '1s'], {});
  const riskConfig = parsed.config.risk;

  const L = Math.round(Number(opt['limit-mib']) * MiB);
  if (!(L >= 64 * MiB)) fail('--limit-mib must be at least 64');
  const dirs = {
    shm: join(opt['shm-dir'], `headroom-leadtime-${process.pid}`),
    disk: join(opt['disk-dir'], `headroom-leadtime-${process.pid}`),
  };
  for (const d of Object.values(dirs)) {
    mkdirSync(d, { recursive: true });
    cleanups.push(async () => rmSync(d, { recursive: true, force: true }));
  }
  if (fsType(dirs.disk) === 'tmpfs') fail(`--disk-dir ${opt['disk-dir']} is a tmpfs: the page-cache workloads need a disk file system`);
  let list = workloads(L, dirs.shm, dirs.disk);
  if (opt.only) {
    const want = opt.only.split(',').map((s) => s.trim());
    const unknown = want.filter((n) => !list.some((w) => w.name === n));
    if (unknown.length) fail(`unknown workload(s) ${unknown.join(', ')}; known: ${list.map((w) => w.name).join(', ')}`);
    list = list.filter((w) => want.includes(w.name));
  }

  const lruGen = (() => { try { return readFileSync('/sys/kernel/mm/lru_gen/enabled', 'utf8').trim(); } catch { return undefined; } })();
  const machine = {
    date: new Date().toISOString(), kernel: release(), cgroup: `${layout.mode} (memory controller v${layout.memoryVersion})`,
    node: process.version, cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, memory: `${Math.round(totalmem() / MiB)} MiB`,
    swap: readFileSync('/proc/meminfo', 'utf8').match(/^SwapTotal:\s+(\d+)/m)?.[1] === '0' ? 'none' : 'present',
    mglru: lruGen ?? 'not built', diskDir: `${opt['disk-dir']} (${fsType(dirs.disk)})`, shmDir: `${opt['shm-dir']} (${fsType(dirs.shm)})`,
    limit: `${L / MiB} MiB`, risk: riskConfig,
  };
  const head = machineLines(machine);
  console.log(head);

  const results = [];
  for (const w of list) {
    console.error(`${w.name}: ${w.what} ...`);
    const r = await runOne(agent, layout, riskConfig, w, L, dirs);
    console.error(`  ${r.killed ? `killed after ${f0(r.exit.afterS)} s` : `exited ${r.exit.code ?? r.exit.signal} after ${f0(r.exit.afterS)} s`} (oom_kill +${r.oomKills}); headroom ${r.headroom.warning.verdict}${r.headroom.warning.leadS !== undefined ? ` ${f0(r.headroom.warning.leadS)} s` : ''}, static ${r.static1s.verdict}${r.static1s.leadS !== undefined ? ` ${f0(r.static1s.leadS)} s` : ''}`);
    if (r.killed !== r.expectKill) console.error(`  note: expected ${w.expectKill ? 'an OOM kill' : 'no kill'}; output: ${r.output}`);
    results.push(r);
    if (interrupted) return;
    await sleep(2000);
  }
  const md = tables(results);
  console.log(`\n${md}`);
  if (opt.out !== '-') {
    mkdirSync(dirname(opt.out), { recursive: true });
    writeFileSync(opt.out, `${JSON.stringify({ machine, results }, null, 1)}\n`);
    console.error(`raw results written to ${opt.out}`);
  }
}

main().then(() => cleanupAll(), async (err) => {
  console.error(`bench-leadtime failed: ${err.stack ?? err}`);
  await cleanupAll();
  process.exit(1);
});
