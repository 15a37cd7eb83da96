// Generic webhook: POST the event as JSON with a stable schema (README "Notifications").
import { request } from './http.js';
import { description } from './describe.js';
import type { Notification, NotifyEvent, PodRef, Sink } from './notify.js';

export interface WebhookPayload {
  readonly schema: 'headroom.notification/v1';
  /** risk: a risk level change (to ok = resolved); oom_kill: the kernel killed processes */
  readonly kind: 'risk' | 'oom_kill';
  readonly container: string;
  /** risk: the new level; oom_kill: null */
  readonly level: 'ok' | 'warning' | 'critical' | null;
  /** risk: the level before; oom_kill: null */
  readonly previous: 'ok' | 'warning' | 'critical' | null;
  /** bytes; a field is null when unknown (no limit, no sample) */
  readonly memory: {
    readonly unreclaimable_bytes: number | null;
    readonly limit_bytes: number | null;
    readonly working_set_bytes: number | null;
    readonly usage_bytes: number | null;
    readonly reclaimable_bytes: number | null;
  };
  /** risk: seconds to OOM at the current growth, growth in bytes/s, and what raised the level (plain words); null when not known */
  readonly trend: { readonly eta_seconds: number | null; readonly growth_bytes_per_second: number | null; readonly causes: readonly string[] } | null;
  /** oom_kill: processes killed in this event and in total; risk: null */
  readonly oom_kills: { readonly count: number; readonly total: number } | null;
  readonly message: string;
  /** ISO 8601, when the sampler saw it */
  readonly time: string;
  readonly pod: string | null;
  readonly namespace: string | null;
}

export function webhookPayload(e: NotifyEvent, time: number, pod: PodRef): WebhookPayload {
  const common = { schema: 'headroom.notification/v1' as const, container: e.container, message: description(e), time: new Date(time).toISOString(), pod: pod.name ?? null, namespace: pod.namespace ?? null };
  if (e.type === 'risk') {
    const v = e.view;
    return {
      ...common, kind: 'risk', level: e.to, previous: e.from, oom_kills: null,
      trend: {
        eta_seconds: e.eta === undefined ? null : Math.round(e.eta),
        growth_bytes_per_second: e.slope === undefined ? null : Math.round(e.slope),
        causes: e.causes ?? [],
      },
      memory: { unreclaimable_bytes: v.unreclaimable, limit_bytes: v.limit ?? null, working_set_bytes: v.workingSet, usage_bytes: v.usage, reclaimable_bytes: v.reclaimable },
    };
  }
  return {
    ...common, kind: 'oom_kill', level: null, previous: null, trend: null, oom_kills: { count: e.count, total: e.total },
    memory: { unreclaimable_bytes: e.peakUnreclaimable ?? null, limit_bytes: e.limit ?? null, working_set_bytes: null, usage_bytes: null, reclaimable_bytes: null },
  };
}

export class WebhookSink implements Sink {
  readonly name = 'webhook';
  constructor(private readonly url: string, private readonly pod: PodRef) {}

  async send(n: Notification, signal: AbortSignal): Promise<boolean> {
    if (n.kind !== 'event') return false;
    await request({ url: this.url, method: 'POST', body: webhookPayload(n.event, n.time, this.pod), signal });
    return true;
  }
}
