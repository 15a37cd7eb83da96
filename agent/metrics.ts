// Every headroom_* metric, defined in one place (DESIGN §5). Values are read from the sampler's
// latest state at scrape time (collect()); a scrape never touches the file system.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BREAKDOWN_TYPES } from './analysis/memory.js';
import { RISK_LEVELS } from './analysis/risk.js';
import type { TargetStatus } from './sampler.js';

export interface MetricsSource {
  status(): TargetStatus[];
  readErrors(): ReadonlyArray<{ container: string; source: string; count: number }>;
  /** notification sinks (agent/sinks/dispatch.ts): sent / failed / dropped per sink */
  notifications?(): ReadonlyArray<{ sink: string; result: string; count: number }>;
  /** pre-OOM captures (agent/capture/capturer.ts): ok / failed / skipped per container and method */
  captures?(): ReadonlyArray<{ container: string; method: string; result: string; count: number }>;
}

export interface MetricsOptions {
  readonly version: string;
  readonly cgroupMode: string;
  /** prom-client's process_* and nodejs_* metrics (off in golden tests: they vary) */
  readonly defaultMetrics: boolean;
}

export function createRegistry(source: MetricsSource, opts: MetricsOptions): Registry {
  const registry = new Registry();
  const registers = [registry];
  const C = ['container'] as const;

  /** A gauge whose series are rebuilt from the latest state at every scrape. */
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Record<L, string>, v: number) => void, s: TargetStatus) => void) =>
    new Gauge<string>({
      name, help, labelNames: [...labelNames], registers,
      collect() {
        this.reset();
        for (const s of source.status()) fill((labels, v) => this.set(labels as Record<string, string>, v), s);
      },
    });

  /** A counter that mirrors a monotonic total kept by the sampler. */
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Record<L, string>, v: number) => void, s: TargetStatus) => void) =>
    new Counter<string>({
      name, help, labelNames: [...labelNames], registers,
      collect() {
        this.reset();
        for (const s of source.status()) fill((labels, v) => this.inc(labels as Record<string, string>, v), s);
      },
    });

  const latest = (s: TargetStatus) => s.latest?.view;

  gauge('headroom_memory_usage_bytes', 'Memory usage of the container cgroup, including all page cache (memory.current / memory.usage_in_bytes).', C,
    (set, s) => { const v = latest(s); if (v) set({ container: s.name }, v.usage); });
  gauge('headroom_memory_working_set_bytes', 'Working set: usage minus inactive_file, floored at 0, exactly as the kubelet and cAdvisor compute container_memory_working_set_bytes.', C,
    (set, s) => { const v = latest(s); if (v) set({ container: s.name }, v.workingSet); });
  gauge('headroom_memory_unreclaimable_bytes', 'Memory the kernel cannot reclaim without swap: anon + shmem/tmpfs + kernel (minus reclaimable slab). This is what counts toward an OOM kill. Dirty/writeback page cache is in flight and counted in neither this nor reclaimable.', C,
    (set, s) => { const v = latest(s); if (v) set({ container: s.name }, v.unreclaimable); });
  gauge('headroom_memory_reclaimable_bytes', 'Clean page cache (file minus shmem, dirty and writeback) plus reclaimable slab: memory the kernel drops before it OOM-kills.', C,
    (set, s) => { const v = latest(s); if (v) set({ container: s.name }, v.reclaimable); });
  gauge('headroom_memory_bytes', 'Memory by type from memory.stat. Types overlap: file includes shmem, active_file and inactive_file; kernel includes slab_reclaimable.', ['container', 'type'] as const,
    (set, s) => {
      const v = latest(s);
      if (!v) return;
      for (const t of BREAKDOWN_TYPES) { const b = v.breakdown.get(t); if (b !== undefined) set({ container: s.name, type: t }, b); }
    });
  gauge('headroom_memory_limit_bytes', 'Tightest memory limit on the cgroup path headroom can read. Absent when unlimited.', C,
    (set, s) => { const v = latest(s); if (v?.limit !== undefined) set({ container: s.name }, v.limit); });
  gauge('headroom_memory_high_bytes', 'cgroup v2 memory.high (throttling threshold). Absent when max or on v1.', C,
    (set, s) => { const h = s.latest?.raw.high; if (h !== undefined) set({ container: s.name }, h); });
  gauge('headroom_memory_request_bytes', "The container's requests.memory, from the downward API (HEADROOM_MEMORY_REQUEST).", C,
    (set, s) => { if (s.request !== undefined) set({ container: s.name }, s.request); });
  gauge('headroom_memory_peak_bytes', "The kernel's peak usage of this cgroup (memory.peak, 5.19+; v1 memory.max_usage_in_bytes).", C,
    (set, s) => { const p = s.latest?.raw.peak; if (p !== undefined) set({ container: s.name }, p); });
  gauge('headroom_memory_working_set_max_bytes', 'Maximum working set over the trailing --peak-window of samples: spikes between scrapes.', C,
    (set, s) => { if (s.workingSetMax !== undefined) set({ container: s.name }, s.workingSetMax); });
  gauge('headroom_memory_unreclaimable_max_bytes', 'Maximum unreclaimable memory over the trailing --peak-window of samples.', C,
    (set, s) => { if (s.unreclaimableMax !== undefined) set({ container: s.name }, s.unreclaimableMax); });
  counter('headroom_oom_kills_total', 'Processes the kernel OOM-killed in this container (memory.events / memory.oom_control oom_kill), monotonic across restarts; counts a child killed while PID 1 lives.', C,
    (set, s) => { if (s.oomKills !== undefined) set({ container: s.name }, s.oomKills); });
  counter('headroom_memory_events_total', 'cgroup v2 memory.events counters as the kernel reports them (low, high, max, oom, oom_kill, oom_group_kill); on v1 memory.failcnt as event="max".', ['container', 'event'] as const,
    (set, s) => { for (const [event, v] of s.events) set({ container: s.name, event }, v); });
  counter('headroom_memory_pressure_seconds_total', 'PSI memory stall time: some = at least one task stalled on memory, full = all tasks stalled.', ['container', 'kind'] as const,
    (set, s) => { for (const [kind, v] of s.pressureSeconds) set({ container: s.name, kind }, v); });
  counter('headroom_memory_refaults_total', 'Pages refaulted shortly after eviction (workingset_refault_*): page cache thrashing, a sign the limit is too tight even without kills.', ['container', 'type'] as const,
    (set, s) => { for (const [type, v] of s.refaults) set({ container: s.name, type }, v); });
  counter('headroom_container_restarts_total', 'Container restarts headroom saw (a new cgroup under the same container name).', C,
    (set, s) => set({ container: s.name }, s.restarts));
  gauge('headroom_oom_risk', 'OOM risk as a state set: exactly one of ok, warning, critical is 1.', ['container', 'level'] as const,
    (set, s) => { if (!s.latest) return; for (const level of RISK_LEVELS) set({ container: s.name, level }, s.risk === level ? 1 : 0); });
  gauge('headroom_oom_eta_seconds', 'Predicted seconds until unreclaimable memory reaches the limit at its current growth (Theil-Sen slope over --eta-window); 0 at the limit. Absent when not rising, unlimited, or too few samples.', C,
    (set, s) => { if (s.latest && s.eta !== undefined) set({ container: s.name }, s.eta); });
  gauge('headroom_process_memory_bytes', 'Top process groups by PSS, grouped by comm: rss, pss, uss (private), swap.', ['container', 'comm', 'type'] as const,
    (set, s) => { for (const g of s.processes) for (const [type, v] of g.bytes) set({ container: s.name, comm: g.comm, type }, v); });
  gauge('headroom_target_readable', '1 when the container cgroup files can be read, 0 when not (see headroom_read_errors_total and the log).', C,
    (set, s) => { if (s.present) set({ container: s.name }, s.latest ? 1 : 0); });

  new Counter({
    name: 'headroom_read_errors_total',
    help: 'Reads that failed, by container and source file (never silent; the log says why).',
    labelNames: ['container', 'source'],
    registers,
    collect() {
      this.reset();
      for (const e of source.readErrors()) this.inc({ container: e.container, source: e.source }, e.count);
    },
  });
  // Only when sinks are configured (main passes notifications() then): no empty family otherwise.
  if (source.notifications) new Counter({
    name: 'headroom_sink_notifications_total',
    help: 'Risk changes and OOM kills handed to each notification sink: sent, failed (after one retry; the log says why) or dropped (queue full, or a repeat within the minimum interval).',
    labelNames: ['sink', 'result'],
    registers,
    collect() {
      this.reset();
      for (const n of source.notifications?.() ?? []) this.inc({ sink: n.sink, result: n.result }, n.count);
    },
  });
  // Only when --capture-signal or --capture-url is set.
  if (source.captures) new Counter({
    name: 'headroom_captures_total',
    help: 'Pre-OOM evidence captures by container and method (signal, url): ok, failed (the log says why) or skipped (no process catches the signal, or a repeat within the cool-down).',
    labelNames: ['container', 'method', 'result'],
    registers,
    collect() {
      this.reset();
      for (const c of source.captures?.() ?? []) this.inc({ container: c.container, method: c.method, result: c.result }, c.count);
    },
  });
  new Gauge({ name: 'headroom_build_info', help: 'headroom version and the cgroup layout it found (v1, v2, hybrid, none). Always 1.', labelNames: ['version', 'cgroup'], registers })
    .set({ version: opts.version, cgroup: opts.cgroupMode }, 1);

  if (opts.defaultMetrics) {
    // Event-loop lag sampled every 100 ms, not prom-client's default 10 ms: the 10 ms timer alone
    // cost 0.7 % of a core here (scripts/bench.mjs, docs/benchmarks.md).
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
    // prom-client names three gauges *_total, which `promtool check metrics` rejects; the same
    // numbers stay available per type in nodejs_active_handles / nodejs_active_requests / nodejs_active_resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name);
    }
  }
  return registry;
}
