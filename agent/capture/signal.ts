// Which process gets the capture signal: the container's earliest-started process that has a
// handler for it (/proc/PID/status SigCgt). A process without one would take the signal's default
// action, which for SIGUSR1/SIGUSR2 is to die: headroom then sends nothing and says why.
import { constants as osConstants } from 'node:os';
import { catches, readCaughtSignals, readProcStat } from '../sources/procfs.js';
import { isGone, mapInBatches } from '../sources/read.js';

export interface SignalTarget {
  readonly pid: number;
  readonly comm: string;
}

export interface PickResult {
  readonly target: SignalTarget | undefined;
  /** the processes looked at that do not catch it (for the log when none does) */
  readonly notCatching: readonly SignalTarget[];
  /** reads that failed other than by the process exiting (e.g. EACCES) */
  readonly problems: readonly string[];
}

export function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}

export async function pickProcess(procRoot: string, pids: readonly number[], signal: NodeJS.Signals): Promise<PickResult> {
  const num = signalNumber(signal);
  const infos = await mapInBatches([...pids], 32, async (pid) => {
    const [st, cgt] = await Promise.all([readProcStat(procRoot, pid), readCaughtSignals(procRoot, pid)]);
    return { pid, st, cgt };
  });
  const problems: string[] = [];
  const candidates: Array<SignalTarget & { start: number; catches: boolean }> = [];
  for (const { pid, st, cgt } of infos) {
    if (!st.ok || !cgt.ok) {
      const err = !st.ok ? st.error : !cgt.ok ? cgt.error : undefined;
      if (err && !isGone(err.code)) problems.push(`${err.path}: ${err.message}`);
      continue;
    }
    candidates.push({ pid, comm: st.value.comm, start: st.value.startTime, catches: catches(cgt.value, num) });
  }
  candidates.sort((a, b) => a.start - b.start || a.pid - b.pid);
  const found = candidates.find((c) => c.catches);
  return {
    target: found ? { pid: found.pid, comm: found.comm } : undefined,
    notCatching: candidates.filter((c) => !c.catches).map(({ pid, comm }) => ({ pid, comm })),
    problems,
  };
}
