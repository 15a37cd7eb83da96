// Pre-OOM evidence (DESIGN §6, README "Pre-OOM evidence"): when a container's risk reaches
// --capture-on, tell the app to dump what it knows before the kernel kills it. Once per episode
// (policy.ts). Never blocks sampling: the listener starts a job and returns; one job per container.
//
//   signal: to the container's earliest-started process that catches it (signal.ts), e.g. SIGUSR2
//           for node --heapsnapshot-signal=SIGUSR2; with --capture-dir, headroom waits for the file
//           the app writes there, then keeps the directory within its caps.
//   url:    GET (e.g. a pprof heap endpoint), the body saved into --capture-dir (url.ts).
import { unlink } from 'node:fs/promises';
import type { CaptureConfig } from '../config.js';
import type { AgentEvent } from '../events.js';
import { humanBytes, type Logger } from '../log.js';
import type { Target } from '../discovery.js';
import { currentPids } from '../processes.js';
import { prune, waitForNewFile } from './dir.js';
import { NO_EPISODE, onRiskChange, type EpisodeState } from './policy.js';
import { pickProcess } from './signal.js';
import { download, safeUrl } from './url.js';

export type CaptureMethod = 'signal' | 'url';
export type CaptureResult = 'ok' | 'failed' | 'skipped';

/** What the capturer needs of a target: its cgroup directory and the processes discovery saw. */
export type CaptureTarget = Pick<Target, 'dir' | 'pids'>;

export interface CapturerOptions {
  readonly config: CaptureConfig;
  readonly log: Logger;
  readonly procRoot: string;
  /** the container's cgroup and processes now */
  readonly lookup: (container: string) => CaptureTarget | undefined;
  /** a new episode sooner than this after the last capture is skipped (default 10 min) */
  readonly cooldownMs?: number;
  readonly now?: () => number;
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
  /** poll interval while waiting for the app's file (default 500 ms) */
  readonly pollMs?: number;
}

export interface CaptureStat {
  readonly container: string;
  readonly method: CaptureMethod;
  readonly result: CaptureResult;
  readonly count: number;
}

/** The last capture of a container, for /api/v1/snapshot. */
export interface CaptureRecord {
  /** ms; when it started */
  readonly at: number;
  readonly risk: string;
  /** per method: ok, failed or skipped */
  readonly results: Readonly<Partial<Record<CaptureMethod, CaptureResult>>>;
  /** the file it produced (the app's, or the download), when there is one */
  readonly file?: string | undefined;
  readonly bytes?: number | undefined;
  /** false when the app was OOM-killed while or after writing it */
  readonly complete?: boolean | undefined;
}

const DEFAULT_CAPTURE_COOLDOWN_MS = 10 * 60_000;
/** after an OOM kill in the container, how long a dump in progress still gets to settle */
const KILL_GRACE_MS = 2000;

export class Capturer {
  private readonly episodes = new Map<string, EpisodeState>();
  private readonly jobs = new Map<string, Promise<void>>();
  private readonly counts = new Map<string, CaptureStat>();
  /** container -> when its last OOM kill was seen */
  private readonly kills = new Map<string, number>();
  /** container -> its last capture */
  private readonly records = new Map<string, CaptureRecord>();
  /** container -> ends its wait for the app's file (after an OOM kill there) */
  private readonly waits = new Map<string, AbortController>();
  private readonly stop = new AbortController();
  private readonly now: () => number;
  private readonly kill: (pid: number, signal: NodeJS.Signals) => void;

  private readonly cooldownMs: number;

  constructor(private readonly opts: CapturerOptions) {
    this.now = opts.now ?? Date.now;
    this.cooldownMs = opts.cooldownMs ?? DEFAULT_CAPTURE_COOLDOWN_MS;
    this.kill = opts.kill ?? ((pid, sig) => { process.kill(pid, sig); });
  }

  private get methods(): CaptureMethod[] {
    const c = this.opts.config;
    return [...(c.signal ? ['signal' as const] : []), ...(c.url ? ['url' as const] : [])];
  }

  /** The sampler's listener. */
  readonly listener = (e: AgentEvent): void => {
    if (e.type === 'oom_kill') {
      this.kills.set(e.container, this.now());
      // The writer was probably the process killed: give a dump in progress a moment, then judge it.
      const waiting = this.waits.get(e.container);
      if (waiting) setTimeout(() => waiting.abort(), KILL_GRACE_MS).unref();
    }
    if (e.type !== 'risk' || this.stop.signal.aborted) return;
    // The previous episode's job still runs (a --capture-timeout longer than the cool-down): this
    // change is not an episode of its own.
    if (this.jobs.has(e.container)) return;
    const prev = this.episodes.get(e.container) ?? NO_EPISODE;
    const d = onRiskChange(prev, e.to, this.opts.config.on, this.now(), this.cooldownMs);
    this.episodes.set(e.container, d.state);
    if (d.capture === false) {
      if (d.skipped === 'cooldown') {
        for (const m of this.methods) this.count(e.container, m, 'skipped');
        this.opts.log.info(`capture: container ${e.container} reached risk ${e.to} again within ${Math.round(this.cooldownMs / 60_000)} min of the last capture; not capturing again`, { container: e.container, capture: 'skipped' });
      }
      return;
    }
    const job = this.capture(e.container, e.to).catch((err) => {
      this.opts.log.warn(`capture: container ${e.container}: ${(err as Error)?.message ?? String(err)}`, { container: e.container });
    }).finally(() => this.jobs.delete(e.container));
    this.jobs.set(e.container, job);
  };

  stats(): CaptureStat[] {
    return [...this.counts.values()];
  }

  /** The last capture of this container, if any. */
  last(container: string): CaptureRecord | undefined {
    return this.records.get(container);
  }

  private record(container: string, patch: Partial<CaptureRecord>): void {
    const prev = this.records.get(container);
    if (!prev) return;
    this.records.set(container, { ...prev, ...patch, results: { ...prev.results, ...(patch.results ?? {}) } });
  }

  /** Jobs in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs.values()]);
  }

  /** Stop waiting for files; let running downloads end (bounded by --capture-timeout). */
  async close(timeoutMs = 3000): Promise<void> {
    this.stop.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((r) => { timer = setTimeout(r, timeoutMs); })]);
    clearTimeout(timer);
  }

  private count(container: string, method: CaptureMethod, result: CaptureResult): void {
    const key = `${container}\0${method}\0${result}`;
    const c = this.counts.get(key);
    this.counts.set(key, { container, method, result, count: (c?.count ?? 0) + 1 });
  }

  /** One method's outcome of the capture in progress: counted, and kept in its record. */
  private result(container: string, method: CaptureMethod, result: CaptureResult, patch: Partial<CaptureRecord> = {}): void {
    this.count(container, method, result);
    this.record(container, { ...patch, results: { [method]: result } });
  }

  private async capture(container: string, level: string): Promise<void> {
    const { config: cfg, log } = this.opts;
    const started = this.now();
    this.records.set(container, { at: started, risk: level, results: {} });
    const fields = { container, capture: 'start', risk: level };
    log.warn(`capture: container ${container} reached risk ${level}: taking pre-OOM evidence (once per episode)`, fields);
    // Room for the new file first, so the count cap holds while the app writes.
    if (cfg.dir) await this.prune(cfg.dir, Math.max(0, cfg.maxFiles - 1), cfg.maxBytes);

    let signalled = false;
    if (cfg.signal) signalled = await this.sendSignal(container, cfg.signal);
    if (cfg.url && cfg.dir) {
      try {
        const d = await download(cfg.url, cfg.dir, container, cfg.maxBytes, cfg.timeoutMs);
        this.result(container, 'url', 'ok', { file: d.path, bytes: d.bytes, complete: true });
        log.info(`capture: saved ${humanBytes(d.bytes)} from ${safeUrl(cfg.url)} to ${d.path}`, { container, capture: 'url', file: d.path, bytes: d.bytes });
      } catch (err) {
        this.result(container, 'url', 'failed');
        const why = (err as Error)?.message ?? String(err);
        log.warn(`capture: GET ${safeUrl(cfg.url)} for container ${container} failed: ${why}`, { container, capture: 'url', error: why });
      }
    }
    if (signalled && cfg.dir) await this.awaitFile(container, cfg.dir, cfg.signal!, started);
    if (cfg.dir) await this.prune(cfg.dir, cfg.maxFiles, cfg.maxBytes);
  }

  /** The file the app writes after the signal: reported, or why it is missing or incomplete. */
  private async awaitFile(container: string, dir: string, signal: NodeJS.Signals, started: number): Promise<void> {
    const { log, config: cfg } = this.opts;
    const wait = new AbortController();
    this.waits.set(container, wait);
    let got;
    try {
      got = await waitForNewFile(dir, started, cfg.timeoutMs, this.opts.pollMs ?? 500, AbortSignal.any([this.stop.signal, wait.signal]));
    } finally {
      this.waits.delete(container);
    }
    const killedAt = this.kills.get(container);
    const killed = killedAt !== undefined && killedAt >= started;
    // A dump needs free memory of its own (a V8 heap snapshot many times the heap): written close
    // to the limit, the kernel may kill the app while it writes.
    const advice = 'a dump needs free memory of its own (a V8 heap snapshot: several times the heap); capture earlier: --capture-on warning, a lower --warning-ratio or a longer --eta-warning';
    if (!got) {
      if (killed) log.warn(`capture: container ${container} was OOM-killed before it wrote anything into ${dir}: ${advice}`, { container, capture: 'file' });
      else if (!this.stop.signal.aborted) log.warn(`capture: no new file appeared in ${dir} within ${cfg.timeoutMs / 1000}s after ${signal} to container ${container}; does the app write there (e.g. node --diagnostic-dir=${dir})?`, { container, capture: 'file' });
      return;
    }
    const f = got.file;
    if (f.bytes === 0) {
      await unlink(f.path).catch(() => undefined);
      log.warn(`capture: container ${container} left ${f.name} empty${killed ? ': it was OOM-killed while writing it' : ''}; removed; ${advice}`, { container, capture: 'file', file: f.path, bytes: 0 });
      return;
    }
    // complete: written and settled before any kill (a wait cut short by shutdown or the time-out is not)
    const complete = !killed && got.settled;
    this.record(container, { file: f.path, bytes: f.bytes, complete });
    if (killed) {
      log.warn(`capture: container ${container} was OOM-killed while or after writing ${f.name} (${humanBytes(f.bytes)}); it may be incomplete: ${advice}`, { container, capture: 'file', file: f.path, bytes: f.bytes, complete: false });
      return;
    }
    log.info(`capture: container ${container} wrote ${f.name} (${humanBytes(f.bytes)}) into ${dir}`, { container, capture: 'file', file: f.path, bytes: f.bytes, complete });
  }

  private async sendSignal(container: string, signal: NodeJS.Signals): Promise<boolean> {
    const { log, procRoot } = this.opts;
    const t = this.opts.lookup(container);
    const { pids, error } = t ? await currentPids(t) : { pids: [], error: undefined };
    if (error) log.warn(`capture: cannot list the processes of container ${container}: ${error.message}`, { container, capture: 'signal' });
    const pick = await pickProcess(procRoot, pids, signal);
    if (!pick.target) {
      this.result(container, 'signal', 'skipped');
      const seen = pick.notCatching.slice(0, 5).map((p) => `${p.pid} (${p.comm})`).join(', ');
      const why = pids.length === 0 ? 'it has no processes'
        : pick.notCatching.length > 0 ? `none of its processes catches it (${seen}), and an uncaught ${signal} would kill the app`
          : `its processes could not be read${pick.problems.length ? `: ${pick.problems[0]}` : ''}`;
      log.warn(`capture: ${signal} not sent to container ${container}: ${why}`, { container, capture: 'signal' });
      return false;
    }
    const { pid, comm } = pick.target;
    try {
      this.kill(pid, signal);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.result(container, 'signal', 'failed');
      const why = code === 'EPERM' ? 'permission denied: run headroom as the app\'s UID, or give it the KILL capability'
        : code === 'ESRCH' ? 'the process exited' : (err as Error).message;
      log.warn(`capture: cannot send ${signal} to pid ${pid} (${comm}) in container ${container}: ${why}`, { container, capture: 'signal', pid });
      return false;
    }
    this.result(container, 'signal', 'ok');
    log.info(`capture: sent ${signal} to pid ${pid} (${comm}) in container ${container}`, { container, capture: 'signal', pid, comm });
    return true;
  }

  private async prune(dir: string, maxFiles: number, maxBytes: number): Promise<void> {
    try {
      const r = await prune(dir, maxFiles, maxBytes);
      if (r.removed.length > 0) {
        this.opts.log.info(`capture: removed ${r.removed.length} old file(s) from ${dir} (${r.removed.map((f) => f.name).join(', ')}) to keep at most ${maxFiles} file(s) and ${humanBytes(maxBytes)}`, { capture: 'prune', removed: r.removed.length });
      }
      for (const e of r.errors) this.opts.log.warn(`capture: cannot remove ${e}`, { capture: 'prune' });
    } catch (err) {
      this.opts.log.warn(`capture: cannot list ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { capture: 'prune' });
    }
  }
}
