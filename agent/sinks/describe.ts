// Plain words for the notification sinks (the same words as the log lines).
import { humanBytes } from '../log.js';
import { describeMemory } from './log.js';
import type { NotifyEvent } from './notify.js';

export function summary(e: NotifyEvent): string {
  if (e.type === 'oom_kill') return `container ${e.container} was OOM-killed`;
  return e.to === 'ok' ? `OOM risk cleared for container ${e.container}` : `OOM risk ${e.to} for container ${e.container}`;
}

export function description(e: NotifyEvent): string {
  if (e.type === 'oom_kill') {
    return `container ${e.container}: the kernel OOM-killed ${e.count} process${e.count === 1 ? '' : 'es'} (${e.total} so far)` +
      (e.peakUnreclaimable !== undefined
        ? `; unreclaimable memory peaked at ${humanBytes(e.peakUnreclaimable)}${e.limit !== undefined ? ` of ${humanBytes(e.limit)} limit` : ''} in the last samples`
        : '');
  }
  const what = e.to === 'ok' ? 'OOM risk cleared' : `OOM risk ${e.to}`;
  const why = e.to !== 'ok' && e.causes && e.causes.length > 0 ? ` (${e.causes.join('; ')})` : '';
  return `${what}${e.from === 'ok' ? '' : ` (was ${e.from})`}: ${describeMemory(e.container, e.view, { eta: e.eta, slope: e.slope })}${why}`;
}
