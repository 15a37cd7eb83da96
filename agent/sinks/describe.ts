// Plain words for risk changes and OOM kills: one wording for the log lines (sinks/log.ts) and the
// notification sinks (Alertmanager, webhook, Kubernetes Events).
import type { AgentEvent } from '../events.js';
import { humanBytes } from '../log.js';
import type { NotifyEvent } from './notify.js';

type RiskEvent = Extract<AgentEvent, { type: 'risk' }>;
type KillEvent = Extract<AgentEvent, { type: 'oom_kill' }>;

/** "OOM in ~40 s", "OOM in ~4 min", "OOM in ~2 h" */
export function humanEta(seconds: number): string {
  if (seconds <= 0) return 'at the limit now';
  if (seconds < 120) return `OOM in ~${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 7200) return `OOM in ~${Math.round(seconds / 60)} min`;
  return `OOM in ~${Math.round(seconds / 3600)} h`;
}

export function describeMemory(
  container: string,
  view: { unreclaimable: number; limit: number | undefined; pageCache: number | undefined; reclaimable: number },
  trend?: { eta: number | undefined; slope: number | undefined },
): string {
  const limit = view.limit === undefined
    ? 'no memory limit'
    : `${humanBytes(view.limit)} limit (${Math.round((view.unreclaimable / view.limit) * 100)}%)`;
  const growth = trend?.eta === undefined || trend.slope === undefined || trend.slope <= 0
    ? ''
    : trend.eta <= 0 ? `, ${humanEta(0)}` : `, growing ${humanBytes(Math.round(trend.slope))}/s, ${humanEta(trend.eta)} at this rate`;
  // A few KiB of cache is noise, not something the reader needs to be reassured about.
  const cache = view.pageCache === undefined || view.reclaimable < 1024 * 1024 ? '' : `${growth ? ';' : ','} page cache ${humanBytes(view.reclaimable)} is not counted`;
  return `container ${container}: unreclaimable ${humanBytes(view.unreclaimable)} of ${limit}${growth}${cache}`;
}

/** "OOM risk warning: container app: unreclaimable ... (cause)", as the log says it. */
export function riskText(e: RiskEvent, withPrevious = false): string {
  const what = e.to === 'ok' ? 'OOM risk cleared' : `OOM risk ${e.to}`;
  const was = withPrevious && e.from !== 'ok' ? ` (was ${e.from})` : '';
  const why = e.to !== 'ok' && e.causes && e.causes.length > 0 ? ` (${e.causes.join('; ')})` : '';
  return `${what}${was}: ${describeMemory(e.container, e.view, { eta: e.eta, slope: e.slope })}${why}`;
}

export function killText(e: KillEvent): string {
  return `container ${e.container}: the kernel OOM-killed ${e.count} process${e.count === 1 ? '' : 'es'} (${e.total} so far)` +
    (e.peakUnreclaimable !== undefined
      ? `; unreclaimable memory peaked at ${humanBytes(e.peakUnreclaimable)}${e.limit !== undefined ? ` of ${humanBytes(e.limit)} limit` : ''} in the last samples`
      : '');
}

export function summary(e: NotifyEvent): string {
  if (e.type === 'oom_kill') return `container ${e.container} was OOM-killed`;
  return e.to === 'ok' ? `OOM risk cleared for container ${e.container}` : `OOM risk ${e.to} for container ${e.container}`;
}

export function description(e: NotifyEvent): string {
  return e.type === 'oom_kill' ? killText(e) : riskText(e, true);
}
