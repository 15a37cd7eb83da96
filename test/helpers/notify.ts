// Synthetic AgentEvents and a capturing logger for the notification sink tests.
import type { AgentEvent } from '../../agent/events.js';
import type { MemoryView } from '../../agent/analysis/memory.js';
import { createLogger, type Logger } from '../../agent/log.js';

export const MiB = 1024 * 1024;

export function view(unreclaimableMiB: number, limitMiB: number | undefined = 256): MemoryView {
  const u = unreclaimableMiB * MiB;
  return {
    usage: u + 20 * MiB, workingSet: u + 10 * MiB, reclaimable: 20 * MiB, unreclaimable: u,
    pageCache: 20 * MiB, breakdown: new Map(), limit: limitMiB === undefined ? undefined : limitMiB * MiB,
  };
}

export function risk(container: string, from: 'ok' | 'warning' | 'critical', to: 'ok' | 'warning' | 'critical', unreclaimableMiB: number): AgentEvent {
  return { type: 'risk', container, from, to, view: view(unreclaimableMiB) };
}

export function oomKill(container: string, count = 1, total = 1): AgentEvent {
  return { type: 'oom_kill', container, count, total, peakUnreclaimable: 255 * MiB, limit: 256 * MiB };
}

export function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { log: createLogger({ format: 'json', level: 'debug', write: (l) => lines.push(JSON.parse(l)) }), lines };
}
