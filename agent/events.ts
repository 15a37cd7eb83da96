// What the sampler tells the sinks. Sinks turn these into words, Events, webhooks; they never compute.
import type { RiskLevel } from './analysis/risk.js';
import type { MemoryView } from './analysis/memory.js';
import type { ReadError } from './sources/read.js';

export type AgentEvent =
  | {
    readonly type: 'risk'; readonly container: string; readonly from: RiskLevel; readonly to: RiskLevel; readonly view: MemoryView;
    /** seconds to OOM at the current growth; undefined when unreclaimable memory is not rising (or unlimited) */
    readonly eta?: number | undefined;
    /** growth of unreclaimable memory in bytes/s (robust slope over the ETA window) */
    readonly slope?: number | undefined;
    /** what raised (or keeps) the new level, in plain words, worst first; empty when cleared */
    readonly causes?: readonly string[] | undefined;
  }
  | { readonly type: 'oom_kill'; readonly container: string; readonly count: number; readonly total: number; readonly peakUnreclaimable: number | undefined; readonly limit: number | undefined }
  | { readonly type: 'target_added'; readonly container: string; readonly dir: string | undefined; readonly version: number | undefined }
  | { readonly type: 'target_unreadable'; readonly container: string; readonly problem: string; readonly processesOnly: boolean }
  | { readonly type: 'target_gone'; readonly container: string; readonly why: string }
  | { readonly type: 'restart'; readonly container: string; readonly restarts: number }
  | { readonly type: 'read_error'; readonly container: string | undefined; readonly error: ReadError }
  | { readonly type: 'note'; readonly message: string };

export type EventListener = (e: AgentEvent) => void;
