// Turns agent events into log lines in plain words (DESIGN §6). Computes nothing.
import type { AgentEvent } from '../events.js';
import type { Logger } from '../log.js';
import { killText, riskText } from './describe.js';

const ERROR_LOG_INTERVAL_MS = 60_000;

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
        log.log(e.to === 'ok' ? 'info' : 'warn', riskText(e), fields);
        return;
      }
      case 'oom_kill':
        log.error(killText(e), { container: e.container, oom_kills: e.count, oom_kills_total: e.total });
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
