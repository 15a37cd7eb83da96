// Fixed-interval sampling of every target's cgroup files, a trailing window per target, monotonic
// counters across restarts, and the risk state. One read per file per tick; scrapes never read files.
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { memoryView, type MemoryView } from './analysis/memory.js';
import { counterRate, counterRose, estimateEta, type EtaResult, type TrendPoint } from './analysis/eta.js';
import { INITIAL_RISK, nextRisk, type RiskConfig, type RiskLevel, type RiskState } from './analysis/risk.js';
import { CounterFamily, MonotonicCounter } from './counters.js';
import type { DiscoveryResult, Target } from './discovery.js';
import type { AgentEvent, EventListener } from './events.js';
import { humanBytes } from './log.js';
import { currentPids, topProcessGroups, type ProcessGroup } from './processes.js';
import { readAncestorLimitV2, readCgroupV2, readEventsV2 } from './sources/cgroup-v2.js';
import { readCgroupV1 } from './sources/cgroup-v1.js';
import type { CgroupReadResult, RawCgroupMemory } from './sources/raw.js';
import type { ReadError } from './sources/read.js';

export interface SamplerOptions {
  readonly procRoot: string;
  readonly intervalMs: number;
  readonly peakWindowMs: number;
  readonly processIntervalMs: number;
  readonly topProcesses: number;
  readonly discoveryIntervalMs: number;
  readonly risk: RiskConfig;
  /** requests.memory of the named container (downward API) */
  readonly memoryRequest: { readonly container: string | undefined; readonly bytes: number | undefined };
  /** limits.memory of the named container (downward API), compared once with the cgroup's limit */
  readonly declaredLimit?: number | undefined;
  readonly discover: () => Promise<DiscoveryResult>;
  readonly now?: () => number;
}

export interface Sample {
  readonly t: number;
  readonly raw: RawCgroupMemory;
  readonly view: MemoryView;
}

/** What metrics and the API read: the latest state of one target. */
export interface TargetStatus {
  readonly name: string;
  readonly target: Target;
  /** discovered and not gone; false after the container exited (its counters stay exported) */
  readonly present: boolean;
  /** undefined while the cgroup cannot be read or is gone: its gauges are then absent */
  readonly latest: Sample | undefined;
  readonly workingSetMax: number | undefined;
  readonly unreclaimableMax: number | undefined;
  readonly oomKills: number | undefined;
  readonly events: ReadonlyArray<[string, number]>;
  readonly pressureSeconds: ReadonlyArray<[string, number]>;
  readonly refaults: ReadonlyArray<[string, number]>;
  readonly restarts: number;
  readonly risk: RiskLevel;
  /** seconds to OOM at the current growth of unreclaimable memory; undefined when not rising */
  readonly eta: number | undefined;
  /** growth of unreclaimable memory, bytes/s (Theil–Sen over the ETA window) */
  readonly growth: number | undefined;
  readonly request: number | undefined;
  readonly processes: readonly ProcessGroup[];
}

interface TargetState {
  target: Target;
  /** id of the last cgroup instance that could be read: a different readable one later is a restart */
  instance: string | undefined;
  present: boolean;
  gone: boolean;
  ancestorLimit: number | undefined;
  ring: Sample[];
  latest: Sample | undefined;
  oomKills: MonotonicCounter;
  events: CounterFamily;
  pressure: CounterFamily;
  refaults: CounterFamily;
  restarts: number;
  risk: RiskState;
  trend: EtaResult;
  /** ms; the trend only uses samples after this (the last OOM kill: memory before it is another process's growth) */
  trendSince: number;
  reportedKills: number;
  /** the declared limit was compared with this instance's cgroup limit */
  limitChecked: boolean;
  /** false until the first oom_kill value was seen: kills before headroom started are history, not news */
  killsPrimed: boolean;
  processes: ProcessGroup[];
  watcher: FSWatcher | undefined;
  watchedDir: string | undefined;
}

const V1_REFAULTS: ReadonlyArray<[string, string]> = [
  ['total_workingset_refault_anon', 'anon'], ['total_workingset_refault_file', 'file'], ['total_workingset_refault', 'file'],
];
const V2_REFAULTS: ReadonlyArray<[string, string]> = [
  ['workingset_refault_anon', 'anon'], ['workingset_refault_file', 'file'], ['workingset_refault', 'file'],
];

const NO_TREND: EtaResult = { slope: undefined, eta: undefined, level: undefined };

export class Sampler {
  private readonly states = new Map<string, TargetState>();
  private readonly errorCounts = new Map<string, { container: string; source: string; count: number }>();
  private readonly listeners: EventListener[] = [];
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastDiscovery = -Infinity;
  private lastProcesses = -Infinity;
  private needDiscovery = true;
  private ticking: Promise<void> | undefined;
  /** true once the first tick completed (for /readyz) */
  ready = false;
  ticks = 0;
  private statusCache: TargetStatus[] | undefined;

  constructor(private readonly opts: SamplerOptions) {
    this.now = opts.now ?? Date.now;
  }

  on(listener: EventListener): void {
    this.listeners.push(listener);
  }

  private emit(e: AgentEvent): void {
    for (const l of this.listeners) {
      try { l(e); } catch { /* a sink must never break sampling */ }
    }
  }

  recordError(container: string | undefined, error: ReadError): void {
    const key = `${container ?? ''}\0${error.source}`;
    const c = this.errorCounts.get(key);
    if (c) c.count++;
    else this.errorCounts.set(key, { container: container ?? '', source: error.source, count: 1 });
    this.emit({ type: 'read_error', container, error });
  }

  readErrors(): ReadonlyArray<{ container: string; source: string; count: number }> {
    return [...this.errorCounts.values()];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = async () => {
      if (!this.running) return;
      const t0 = this.now();
      await this.tick();
      if (!this.running) return;
      this.timer = setTimeout(loop, Math.max(0, this.opts.intervalMs - (this.now() - t0)));
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    for (const st of this.states.values()) this.unwatch(st);
  }

  /** One sampling pass; never throws. Concurrent calls share the pass already running. */
  tick(): Promise<void> {
    if (!this.ticking) {
      this.ticking = this.doTick().finally(() => { this.ticking = undefined; });
    }
    return this.ticking;
  }

  private async doTick(): Promise<void> {
    // statusCache stays valid during the pass: a scrape meanwhile gets the last complete state (samples
    // are replaced, never changed in place); the finally below drops it once the pass is done.
    try {
      const t = this.now();
      if (this.needDiscovery || t - this.lastDiscovery >= this.opts.discoveryIntervalMs) {
        await this.discover();
      }
      await Promise.all([...this.states.values()].filter((s) => s.present).map((s) => this.sampleTarget(s)));
      if (this.needDiscovery) await this.discover(); // a target vanished: find its successor now
      if (this.now() - this.lastProcesses >= this.opts.processIntervalMs) {
        this.lastProcesses = this.now();
        await this.sampleProcesses();
      }
      this.ticks++;
      this.ready = true;
    } catch (err) {
      this.emit({ type: 'note', message: `sampling pass failed: ${(err as Error).stack ?? String(err)}` });
    } finally {
      this.statusCache = undefined; // the pass changed the state (a scrape meanwhile may also have cached a half-updated one)
    }
  }

  private async discover(): Promise<void> {
    this.lastDiscovery = this.now();
    this.needDiscovery = false;
    const result = await this.opts.discover();
    for (const { container, error } of result.errors) this.recordError(container, error);
    for (const message of result.notes) this.emit({ type: 'note', message });
    const seen = new Set<string>();
    for (const target of result.targets) {
      seen.add(target.name);
      let st = this.states.get(target.name);
      if (!st) {
        st = {
          target, instance: target.dir ? target.id : undefined, present: true, gone: false, ancestorLimit: undefined, ring: [], latest: undefined,
          oomKills: new MonotonicCounter(), events: new CounterFamily(), pressure: new CounterFamily(), refaults: new CounterFamily(),
          restarts: 0, risk: INITIAL_RISK, trend: NO_TREND, trendSince: -Infinity, reportedKills: 0, limitChecked: false, killsPrimed: false, processes: [], watcher: undefined, watchedDir: undefined,
        };
        this.states.set(target.name, st);
        if (target.dir) this.emit({ type: 'target_added', container: target.name, dir: target.dir, version: target.version });
      } else if (target.dir !== undefined && st.instance !== target.id) {
        if (st.instance !== undefined) {
          // Same container name, new cgroup instance: the container restarted (or its cgroup was re-created).
          st.oomKills.rebase(); st.events.rebase(); st.pressure.rebase(); st.refaults.rebase();
          st.ring = []; st.latest = undefined; st.risk = INITIAL_RISK; st.trend = NO_TREND;
          st.restarts++;
          st.limitChecked = false;
          this.emit({ type: 'restart', container: target.name, restarts: st.restarts });
        } else {
          this.emit({ type: 'target_added', container: target.name, dir: target.dir, version: target.version });
        }
        st.instance = target.id;
      }
      st.target = target;
      st.present = true;
      st.gone = false;
      if (target.problem) this.emit({ type: 'target_unreadable', container: target.name, problem: target.problem, processesOnly: target.pids.length > 0 });
      st.ancestorLimit = target.dir && target.version === 2 && target.limitRoot
        ? await readAncestorLimitV2(target.dir, target.limitRoot)
        : undefined;
      this.watch(st);
    }
    for (const [name, st] of this.states) {
      if (!seen.has(name) && st.present) {
        st.present = false;
        st.latest = undefined;
        this.unwatch(st);
        if (!st.gone) this.emit({ type: 'target_gone', container: name, why: 'no longer found (its processes exited)' });
      }
    }
  }

  /**
   * v2: the kernel signals every memory.events change (cgroup_file_notify). An OOM-killed
   * container's cgroup is often removed before the next sample, so read the counters at once.
   */
  private watch(st: TargetState): void {
    const dir = st.target.dir;
    if (st.watchedDir === dir) return;
    this.unwatch(st);
    if (!dir || st.target.version !== 2) return;
    try {
      // Under sustained pressure "max" changes thousands of times a second: coalesce to one read
      // in flight plus at most one more for the changes that came in meanwhile.
      let reading = false;
      let again = false;
      const read = async (): Promise<void> => {
        if (reading) { again = true; return; }
        reading = true;
        do {
          again = false;
          const r = await readEventsV2(dir);
          if (r.ok && st.target.dir === dir) { this.applyEvents(st, r.value); this.checkKills(st); this.statusCache = undefined; }
        } while (again);
        reading = false;
      };
      st.watcher = watch(join(dir, 'memory.events'), { persistent: false }, () => { void read(); });
      st.watcher.on('error', () => this.unwatch(st));
      st.watchedDir = dir;
    } catch {
      st.watcher = undefined; // inotify unavailable: polling still counts kills that outlive one interval
    }
  }

  private unwatch(st: TargetState): void {
    st.watcher?.close();
    st.watcher = undefined;
    st.watchedDir = undefined;
  }

  private applyEvents(st: TargetState, events: ReadonlyMap<string, number>): void {
    for (const [k, v] of events) st.events.update(k, v);
    const kills = events.get('oom_kill');
    if (kills !== undefined) st.oomKills.update(kills);
  }

  private checkKills(st: TargetState): void {
    if (!st.oomKills.seen) return;
    const total = st.oomKills.value;
    if (!st.killsPrimed) {
      st.killsPrimed = true;
      st.reportedKills = total;
      if (total > 0) this.emit({ type: 'note', message: `container ${st.target.name}: the kernel had already OOM-killed ${total} process(es) in this cgroup before headroom started watching` });
      return;
    }
    if (total > st.reportedKills) {
      // the same window as headroom_memory_unreclaimable_max_bytes (the ring may be longer: --eta-window)
      const cutoff = (st.ring[st.ring.length - 1]?.t ?? 0) - this.opts.peakWindowMs;
      let peak: number | undefined;
      let limit: number | undefined;
      for (let i = st.ring.length - 1; i >= 0 && st.ring[i]!.t > cutoff; i--) {
        const v = st.ring[i]!.view;
        peak = Math.max(peak ?? 0, v.unreclaimable);
        limit ??= v.limit;
      }
      this.emit({ type: 'oom_kill', container: st.target.name, count: total - st.reportedKills, total, peakUnreclaimable: peak, limit });
      // The killed process's memory is gone: a slope across the drop would predict from a line
      // nothing follows any more (an ETA of 0 s after the kill). Start the trend afresh.
      st.trendSince = this.now();
      st.trend = NO_TREND;
    }
    st.reportedKills = Math.max(st.reportedKills, total);
  }

  private async sampleTarget(st: TargetState): Promise<void> {
    const { dir, version, name } = st.target;
    if (!dir || !version) {
      st.latest = undefined;
      return;
    }
    const r: CgroupReadResult = version === 2 ? await readCgroupV2(dir) : await readCgroupV1(dir, st.target.pressureDir);
    for (const e of r.errors) this.recordError(name, e);
    if (r.gone) {
      st.latest = undefined;
      if (!st.gone) {
        st.gone = true;
        this.emit({ type: 'target_gone', container: name, why: 'its cgroup is gone (the container exited or restarted)' });
      }
      this.needDiscovery = true;
      return;
    }
    if (!r.memory) {
      st.latest = undefined;
      return;
    }
    const raw = r.memory;
    const t = this.now();
    const view = memoryView(raw, st.ancestorLimit);
    this.updateCounters(st, raw);
    const sample: Sample = { t, raw, view };
    st.latest = sample;
    st.ring.push(sample);
    const cutoff = t - Math.max(this.opts.peakWindowMs, this.opts.risk.etaWindowMs);
    while (st.ring.length > 0 && st.ring[0]!.t <= cutoff) st.ring.shift();
    this.checkKills(st);
    this.checkDeclaredLimit(st, view);
    const prev = st.risk.level;
    // The ring covers max(--peak-window, --eta-window): the trend functions take their own window.
    const win = this.opts.risk.etaWindowMs;
    let from = st.ring.length;
    while (from > 0 && st.ring[from - 1]!.t >= t - win) from--;
    const recent = st.ring.slice(from);
    const unreclaimable: TrendPoint[] = [];
    for (const s of recent) if (s.t > st.trendSince) unreclaimable.push({ t: s.t, v: s.view.unreclaimable });
    st.trend = estimateEta(unreclaimable, view.limit, { windowMs: win });
    const psiFull: TrendPoint[] = [];
    const high: TrendPoint[] = [];
    for (const s of recent) {
      const full = s.raw.pressure?.full?.totalUs;
      if (full !== undefined) psiFull.push({ t: s.t, v: full / 1e6 });
      const h = s.raw.version === 2 ? s.raw.events?.get('high') : undefined;
      if (h !== undefined) high.push({ t: s.t, v: h });
    }
    st.risk = nextRisk(st.risk, {
      unreclaimable: view.unreclaimable, limit: view.limit, eta: st.trend.eta,
      psiFullRate: counterRate(psiFull, win), highEventsRising: counterRose(high, win),
    }, this.opts.risk);
    if (st.risk.level !== prev) {
      this.emit({
        type: 'risk', container: name, from: prev, to: st.risk.level, view,
        eta: st.trend.eta, slope: st.trend.slope, causes: (st.risk.causes ?? []).map((c) => c.text),
      });
    }
  }

  /**
   * The pod spec's limit (downward API) and the kernel's can differ: a tighter pod-level limit, an
   * in-place resize not applied yet, or no limit at all (the downward API then gives the node's
   * allocatable memory). The kernel's is what kills; say once when they differ.
   */
  private checkDeclaredLimit(st: TargetState, view: MemoryView): void {
    const declared = this.opts.declaredLimit;
    if (st.limitChecked || declared === undefined || !this.requestApplies(st)) return;
    st.limitChecked = true;
    if (view.limit !== undefined && Math.abs(view.limit - declared) < 4096) return;
    const found = view.limit === undefined ? 'no cgroup limit' : `a cgroup limit of ${humanBytes(view.limit)}`;
    this.emit({ type: 'note', message: `container ${st.target.name}: the pod spec says limits.memory ${humanBytes(declared)}, the kernel enforces ${found} (a pod-level limit, a pending resize, or no limit set); headroom uses the kernel's` });
  }

  /** The downward-API request/limit belong to the named container; unnamed, only to a pod's single container. */
  private requestApplies(st: TargetState): boolean {
    const c = this.opts.memoryRequest.container;
    if (c !== undefined) return c === st.target.name;
    let present = 0;
    for (const s of this.states.values()) if (s.present) present++;
    return present === 1 && st.present;
  }

  private updateCounters(st: TargetState, raw: RawCgroupMemory): void {
    if (raw.version === 2) {
      if (raw.events) this.applyEvents(st, raw.events);
    } else {
      const kills = raw.oomControl?.get('oom_kill'); // 4.13+
      if (kills !== undefined) st.oomKills.update(kills);
      if (raw.failcnt !== undefined) st.events.update('max', raw.failcnt);
    }
    if (raw.pressure) {
      st.pressure.update('some', raw.pressure.some.totalUs);
      if (raw.pressure.full) st.pressure.update('full', raw.pressure.full.totalUs);
    }
    const seenTypes = new Set<string>();
    for (const [key, type] of raw.version === 2 ? V2_REFAULTS : V1_REFAULTS) {
      const v = raw.stat.get(key);
      if (v !== undefined && !seenTypes.has(type)) { st.refaults.update(type, v); seenTypes.add(type); }
    }
  }

  private async sampleProcesses(): Promise<void> {
    if (this.opts.topProcesses <= 0) return;
    await Promise.all([...this.states.values()].filter((s) => s.present).map(async (st) => {
      const { pids, error } = await currentPids(st.target);
      if (error) this.recordError(st.target.name, error);
      const { groups, errors } = await topProcessGroups(this.opts.procRoot, pids, this.opts.topProcesses);
      for (const e of errors) this.recordError(st.target.name, e);
      st.processes = groups;
    }));
  }

  /** Run one pass now (e.g. right after the watched command exited). */
  sampleNow(): Promise<void> {
    return this.tick();
  }

  /**
   * The latest state of every target. Every metric's collect() asks for it, about 20 times per
   * scrape: it is built once after each change (a tick, a memory.events read) and reused.
   */
  /** The current target of a container (its cgroup directory and processes), without building a status. */
  target(name: string): Target | undefined {
    return this.states.get(name)?.target;
  }

  status(): TargetStatus[] {
    return (this.statusCache ??= this.buildStatus());
  }

  private buildStatus(): TargetStatus[] {
    const out: TargetStatus[] = [];
    for (const st of this.states.values()) {
      let wsMax: number | undefined;
      let unMax: number | undefined;
      // the ring may be longer than --peak-window when --eta-window is: only the peak window counts here
      const peakCutoff = (st.ring[st.ring.length - 1]?.t ?? 0) - this.opts.peakWindowMs;
      for (const s of st.ring) {
        if (s.t <= peakCutoff) continue;
        wsMax = Math.max(wsMax ?? 0, s.view.workingSet);
        unMax = Math.max(unMax ?? 0, s.view.unreclaimable);
      }
      const req = this.opts.memoryRequest;
      out.push({
        name: st.target.name,
        target: st.target,
        present: st.present && !st.gone,
        latest: st.present ? st.latest : undefined,
        workingSetMax: st.present && st.latest ? wsMax : undefined,
        unreclaimableMax: st.present && st.latest ? unMax : undefined,
        oomKills: st.oomKills.seen ? st.oomKills.value : undefined,
        events: st.events.entries(),
        pressureSeconds: st.pressure.entries().map(([k, us]) => [k, us / 1e6]),
        refaults: st.refaults.entries(),
        restarts: st.restarts,
        risk: st.risk.level,
        eta: st.present && st.latest ? st.trend.eta : undefined,
        growth: st.present && st.latest ? st.trend.slope : undefined,
        request: req.bytes !== undefined && this.requestApplies(st) ? req.bytes : undefined,
        processes: st.present ? st.processes : [],
      });
    }
    return out;
  }
}
