// Turns agent events into log lines in plain words (DESIGN §6). Computes nothing.
import type { AgentEvent } from '../events.js';
import { humanBytes, type Logger } from '../log.js';

const ERROR_LOG_INTERVAL_MS = 60_000;

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

export function logSink(log: Logger): (e: AgentEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'risk': {
        const v = e.view;
        const fields = {
          container: e.container, risk: e.to, previous: e.from,
          unreclaimable_bytes: v.unreclaimable, limit_bytes: v.limit, working_set_bytes: v.workingSet,
          reclaimable_bytes: v.reclaimable, usage_bytes: v.usage,
          eta_seconds: e.eta === undefined ? undefined : Math.round(e.eta),
          growth_bytes_per_second: e.slope === undefined ? undefined : Math.round(e.slope),
          cause: e.causes && e.causes.length > 0 ? e.causes.join('; ') : undefined,
        };
        const what = e.to === 'ok' ? 'OOM risk cleared' : `OOM risk ${e.to}`;
        const why = e.to !== 'ok' && e.causes && e.causes.length > 0 ? ` (${e.causes.join('; ')})` : '';
        log.log(e.to === 'ok' ? 'info' : 'warn', `${what}: ${describeMemory(e.container, v, { eta: e.eta, slope: e.slope })}${why}`, fields);
        return;
      }
      case 'oom_kill':
        log.error(
          `container ${e.container}: the kernel OOM-killed ${e.count} process${e.count === 1 ? '' : 'es'} (${e.total} so far)` +
            (e.peakUnreclaimable !== undefined
              ? `; unreclaimable memory peaked at ${humanBytes(e.peakUnreclaimable)}${e.limit !== undefined ? ` of ${humanBytes(e.limit)} limit` : ''} in the last samples`
              : ''),
          { container: e.container, oom_kills: e.count, oom_kills_total: e.total },
        );
        return;
      case 'target_added':
        log.info(`container ${e.container}: watching cgroup v${e.version} at ${e.dir}`, { container: e.container, cgroup_dir: e.dir });
        return;
      case 'target_unreadable':
        log.rateLimited(`unreadable:${e.container}`, 5 * 60_000, 'warn', `container ${e.container}: ${e.problem}${e.processesOnly ? '; only per-process numbers are available' : ''}`, { container: e.container });
        return;
      case 'target_gone':
        log.info(`container ${e.container}: ${e.why}`, { container: e.container });
        return;
      case 'restart':
        log.warn(`container ${e.container}: restarted (new cgroup); counters carry on from their previous totals`, { container: e.container, restarts: e.restarts });
        return;
      case 'read_error':
        log.rateLimited(`err:${e.container ?? ''}:${e.error.source}:${e.error.code}`, ERROR_LOG_INTERVAL_MS, 'warn',
          `${e.container ? `container ${e.container}: ` : ''}${e.error.message}`, { container: e.container, source: e.error.source, code: e.error.code });
        return;
      case 'note':
        log.rateLimited(`note:${e.message}`, 60_000, 'info', e.message);
        return;
    }
  };
}
