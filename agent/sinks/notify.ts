// What the notification sinks receive: the risk changes and OOM kills of AgentEvent, stamped with the
// time the sampler saw them, or a periodic refresh (Alertmanager re-sends active alerts).
import type { AgentEvent } from '../events.js';

export type NotifyEvent = Extract<AgentEvent, { type: 'risk' }> | Extract<AgentEvent, { type: 'oom_kill' }>;

export type Notification =
  | { readonly kind: 'event'; readonly event: NotifyEvent; readonly time: number }
  | { readonly kind: 'refresh'; readonly time: number };

export interface PodRef {
  readonly name: string | undefined;
  readonly namespace: string | undefined;
}

export interface Sink {
  /** the `sink` label: alertmanager, webhook, kubernetes */
  readonly name: string;
  /** Deliver one notification; resolves false when there was nothing to send. Throws on failure. */
  send(n: Notification, signal: AbortSignal): Promise<boolean>;
  /** when set, the dispatcher queues a refresh this often (e.g. to keep Alertmanager alerts alive) */
  readonly refreshMs?: number;
}

export function isNotifyEvent(e: AgentEvent): e is NotifyEvent {
  return e.type === 'risk' || e.type === 'oom_kill';
}
