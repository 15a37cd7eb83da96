// Alertmanager v2 API sink: POST {url}/api/v2/alerts.
// HeadroomOOMRisk{severity=warning|critical}: startsAt when the level was reached, endsAt a few
// minutes ahead and re-sent every refreshMs while active so it never expires; a level change
// resolves the old severity's alert (endsAt = now) and fires the new one; back to ok resolves it.
// HeadroomOOMKilled: one alert per kill notification, ending on its own after 10 minutes.
import { request } from './http.js';
import { description, summary } from './describe.js';
import type { Notification, NotifyEvent, PodRef, Sink } from './notify.js';

export interface AlertmanagerOptions {
  readonly url: string;
  readonly pod: PodRef;
  /** re-send active alerts this often (default 60 s) */
  readonly refreshMs?: number;
  /** an active alert's endsAt = now + this (default 5 min) */
  readonly activeForMs?: number;
  /** a kill alert's endsAt = now + this (default 10 min) */
  readonly killForMs?: number;
}

export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

interface Active {
  readonly severity: 'warning' | 'critical';
  readonly startsAt: number;
  readonly annotations: Record<string, string>;
}

const iso = (t: number) => new Date(t).toISOString();

export class AlertmanagerSink implements Sink {
  readonly name = 'alertmanager';
  readonly refreshMs: number;
  private readonly endpoint: string;
  private readonly activeForMs: number;
  private readonly killForMs: number;
  /** container -> the alert now firing */
  private readonly active = new Map<string, Active>();

  constructor(private readonly opts: AlertmanagerOptions) {
    this.endpoint = `${opts.url.replace(/\/+$/, '')}/api/v2/alerts`;
    this.refreshMs = opts.refreshMs ?? 60_000;
    this.activeForMs = opts.activeForMs ?? 5 * 60_000;
    this.killForMs = opts.killForMs ?? 10 * 60_000;
  }

  private labels(alertname: string, severity: string, container: string): Record<string, string> {
    // source=headroom tells these from the same alerts evaluated by Prometheus from
    // deploy/prometheus/headroom.rules.yaml, so an inhibit rule can keep one of each (README).
    const l: Record<string, string> = { alertname, severity, container, source: 'headroom' };
    if (this.opts.pod.name) l['pod'] = this.opts.pod.name;
    if (this.opts.pod.namespace) l['namespace'] = this.opts.pod.namespace;
    return l;
  }

  private annotations(e: NotifyEvent): Record<string, string> {
    return { summary: summary(e), description: description(e) };
  }

  /** The alerts one notification turns into (exported for tests). */
  alerts(n: Notification): AmAlert[] {
    const now = n.time;
    const out: AmAlert[] = [];
    const firing = (container: string, a: Active): AmAlert => ({
      labels: this.labels('HeadroomOOMRisk', a.severity, container), annotations: a.annotations,
      startsAt: iso(a.startsAt), endsAt: iso(now + this.activeForMs),
    });
    if (n.kind === 'refresh') {
      for (const [container, a] of this.active) out.push(firing(container, a));
      return out;
    }
    const e = n.event;
    if (e.type === 'oom_kill') {
      out.push({
        labels: this.labels('HeadroomOOMKilled', 'warning', e.container), annotations: this.annotations(e),
        startsAt: iso(now), endsAt: iso(now + this.killForMs),
      });
      return out;
    }
    const prev = this.active.get(e.container);
    if (prev && prev.severity !== e.to) {
      // Resolve the old severity; the description says how it ended.
      out.push({
        labels: this.labels('HeadroomOOMRisk', prev.severity, e.container), annotations: { ...prev.annotations, description: description(e) },
        startsAt: iso(prev.startsAt), endsAt: iso(now),
      });
      this.active.delete(e.container);
    }
    if (e.to !== 'ok') {
      const a: Active = prev && prev.severity === e.to ? prev : { severity: e.to, startsAt: now, annotations: this.annotations(e) };
      this.active.set(e.container, a);
      out.push(firing(e.container, a));
    }
    return out;
  }

  async send(n: Notification, signal: AbortSignal): Promise<boolean> {
    const alerts = this.alerts(n);
    if (alerts.length === 0) return false;
    await request({ url: this.endpoint, method: 'POST', body: alerts, signal });
    return true;
  }
}
