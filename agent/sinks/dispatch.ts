// Hands risk changes and OOM kills to the notification sinks without ever blocking sampling:
// the listener only queues. Per sink: a bounded queue (the oldest is dropped when full), one
// delivery in flight, a time-out per attempt, one retry, and a minimum interval between repeated
// identical notifications (risk level changes and resolves always go out). Counts sent / failed /
// dropped per sink for headroom_sink_notifications_total; failures go to the log, rate-limited.
import type { AgentEvent } from '../events.js';
import type { Logger } from '../log.js';
import { HttpError } from './http.js';
import { isNotifyEvent, type Notification, type Sink } from './notify.js';

export const SINK_RESULTS = ['sent', 'failed', 'dropped'] as const;
export type SinkResult = (typeof SINK_RESULTS)[number];

export interface DispatchOptions {
  readonly log: Logger;
  /** per sink (default 100) */
  readonly queueSize?: number;
  /** per attempt (default 5 s) */
  readonly timeoutMs?: number;
  /** before the single retry (default 1 s) */
  readonly retryDelayMs?: number;
  /** repeated identical notifications per (sink, container, kind) at most this often (default 30 s) */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

export interface SinkStat {
  readonly sink: string;
  readonly result: SinkResult;
  readonly count: number;
}

interface Lane {
  readonly sink: Sink;
  readonly queue: Notification[];
  busy: boolean;
  refreshQueued: boolean;
  readonly counts: Record<SinkResult, number>;
  /** (container, kind) -> when the last one was queued */
  readonly last: Map<string, number>;
}

const LOG_INTERVAL_MS = 60_000;

function retryable(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return true; // connection refused, reset, timed out
}

export class Dispatcher {
  private readonly lanes: Lane[];
  private readonly queueSize: number;
  private readonly timeoutMs: number;
  private readonly retryDelayMs: number;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(sinks: readonly Sink[], private readonly opts: DispatchOptions) {
    this.lanes = sinks.map((sink) => ({
      sink, queue: [], busy: false, refreshQueued: false,
      counts: { sent: 0, failed: 0, dropped: 0 }, last: new Map(),
    }));
    this.queueSize = opts.queueSize ?? 100;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
    this.minIntervalMs = opts.minIntervalMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.lanes.length;
  }

  /** The sampler's listener: queues and returns at once. */
  readonly listener = (e: AgentEvent): void => {
    if (this.closed || !isNotifyEvent(e)) return;
    const time = this.now();
    for (const lane of this.lanes) {
      const key = `${e.container}\0${e.type}`;
      // Risk events are level changes (or resolves) by construction: always delivered. Another OOM
      // kill in the same container within the interval is a repeat: the next one carries the total.
      if (e.type !== 'risk') {
        const prev = lane.last.get(key);
        if (prev !== undefined && time - prev < this.minIntervalMs) {
          lane.counts.dropped++;
          this.opts.log.rateLimited(`sink-ratelimit:${lane.sink.name}:${e.container}`, LOG_INTERVAL_MS, 'debug',
            `${lane.sink.name}: ${e.type} notification for container ${e.container} suppressed (another one went out less than ${Math.round(this.minIntervalMs / 1000)}s ago)`,
            { sink: lane.sink.name, container: e.container });
          continue;
        }
        lane.last.set(key, time);
      }
      this.enqueue(lane, { kind: 'event', event: e, time });
    }
  };

  /** Start the periodic refreshes of sinks that want them (timers do not keep the process alive). */
  start(): void {
    for (const lane of this.lanes) {
      if (!lane.sink.refreshMs) continue;
      const t = setInterval(() => {
        if (this.closed || lane.refreshQueued) return;
        lane.refreshQueued = true;
        this.enqueue(lane, { kind: 'refresh', time: this.now() });
      }, lane.sink.refreshMs);
      t.unref();
      this.timers.push(t);
    }
  }

  stats(): SinkStat[] {
    return this.lanes.flatMap((l) => SINK_RESULTS.map((result) => ({ sink: l.sink.name, result, count: l.counts[result] })));
  }

  /** Resolves when every queue is empty and nothing is in flight, or after timeoutMs. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.idle()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => this.idleWaiters.push(r)),
      new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); }),
    ]);
    clearTimeout(timer);
  }

  /** Stop the refresh timers, try to deliver what is queued for up to timeoutMs, then drop the rest. */
  async close(timeoutMs = 3000): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    await this.flush(timeoutMs);
    this.closed = true;
    for (const lane of this.lanes) {
      lane.counts.dropped += lane.queue.length;
      lane.queue.length = 0;
    }
  }

  private idle(): boolean {
    return this.lanes.every((l) => !l.busy && l.queue.length === 0);
  }

  private enqueue(lane: Lane, n: Notification): void {
    if (lane.queue.length >= this.queueSize) {
      const old = lane.queue.shift()!;
      if (old.kind === 'refresh') lane.refreshQueued = false;
      lane.counts.dropped++;
      this.opts.log.rateLimited(`sink-full:${lane.sink.name}`, LOG_INTERVAL_MS, 'warn',
        `${lane.sink.name}: notification queue full (${this.queueSize}); dropped the oldest`, { sink: lane.sink.name });
    }
    lane.queue.push(n);
    if (!lane.busy) void this.drain(lane);
  }

  private async drain(lane: Lane): Promise<void> {
    lane.busy = true;
    try {
      for (let n = lane.queue.shift(); n; n = lane.queue.shift()) {
        if (n.kind === 'refresh') lane.refreshQueued = false;
        await this.deliver(lane, n);
      }
    } finally {
      lane.busy = false;
      if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async deliver(lane: Lane, n: Notification): Promise<void> {
    const { sink } = lane;
    const container = n.kind === 'event' ? n.event.container : undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const sent = await sink.send(n, AbortSignal.timeout(this.timeoutMs));
        if (sent) lane.counts.sent++;
        return;
      } catch (err) {
        if (attempt < 2 && retryable(err) && !this.closed) {
          await new Promise((r) => setTimeout(r, this.retryDelayMs).unref());
          continue;
        }
        lane.counts.failed++;
        const what = n.kind === 'event' ? `${n.event.type === 'risk' ? `risk ${n.event.to}` : 'OOM kill'} notification for container ${container}` : 'refresh';
        this.opts.log.rateLimited(`sink-fail:${sink.name}`, LOG_INTERVAL_MS, 'warn',
          `${sink.name}: could not deliver the ${what} after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${(err as Error)?.message ?? String(err)}`,
          { sink: sink.name, container });
        return;
      }
    }
  }
}
