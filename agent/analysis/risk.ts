// OOM risk from unreclaimable memory against the tightest limit, its trend (ETA) and memory
// pressure, with hysteresis (DESIGN §6). Pure: the caller keeps the state between samples and
// computes the ETA and the pressure rates (analysis/eta.ts).
export const RISK_LEVELS = ['ok', 'warning', 'critical'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export interface RiskConfig {
  /** share of the limit at which unreclaimable memory is a warning (default 0.8) */
  readonly warningRatio: number;
  /** share of the limit at which it is critical (default 0.9) */
  readonly criticalRatio: number;
  /** a level is left only after its cause stayed clear for this many consecutive samples */
  readonly clearSamples: number;
  /** trailing window of the ETA slope, the PSI full rate and memory.high events (ms, default 60 s) */
  readonly etaWindowMs: number;
  /** ETA at or below which risk is warning (seconds, default 300) */
  readonly etaWarningS: number;
  /** ETA at or below which risk is critical (seconds, default 60) */
  readonly etaCriticalS: number;
  /** PSI full stall rate over the window (stalled seconds per second) at which risk is warning (default 0.1) */
  readonly psiFullWarning: number;
  /**
   * PSI full and memory.high throttling raise risk only while unreclaimable memory is at least this
   * share of the limit (default 0.7; 0 = always, even unlimited). With most of the limit page cache
   * they mean slow I/O, not an OOM kill on the way: a page-cache flood stalled all tasks 13–26 % of
   * the time at 4–66 % unreclaimable (docs/leadtime.md) and nothing was ever killed.
   */
  readonly pressureMinRatio: number;
}

export const DEFAULT_RISK: RiskConfig = {
  warningRatio: 0.8, criticalRatio: 0.9, clearSamples: 5,
  etaWindowMs: 60_000, etaWarningS: 300, etaCriticalS: 60, psiFullWarning: 0.1, pressureMinRatio: 0.7,
};

export interface RiskInput {
  readonly unreclaimable: number | undefined;
  /** undefined = unlimited: no risk from the limit or the ETA */
  readonly limit: number | undefined;
  /** seconds until unreclaimable memory reaches the limit at its current slope; undefined = not rising */
  readonly eta?: number | undefined;
  /** PSI memory full: stalled seconds per second over the window (v2 and hybrid) */
  readonly psiFullRate?: number | undefined;
  /** the v2 memory.events "high" counter rose within the window */
  readonly highEventsRising?: boolean | undefined;
}

export interface RiskCause {
  readonly level: Exclude<RiskLevel, 'ok'>;
  /** plain words, for the log */
  readonly text: string;
}

export interface RiskAssessment {
  readonly level: RiskLevel;
  /** every cause that raised this sample above ok, the worst first */
  readonly causes: readonly RiskCause[];
}

export interface RiskState {
  readonly level: RiskLevel;
  /** consecutive samples whose raw level was below `level` */
  readonly clearCount: number;
  /** what put (or keeps) risk at this level; empty at ok */
  readonly causes?: readonly RiskCause[];
}

export const INITIAL_RISK: RiskState = { level: 'ok', clearCount: 0, causes: [] };

const rank = (l: RiskLevel) => RISK_LEVELS.indexOf(l);
const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The level this one sample alone would give, and why. */
export function assessRisk(input: RiskInput, cfg: RiskConfig): RiskAssessment {
  const causes: RiskCause[] = [];
  const limited = input.limit !== undefined && input.limit > 0;
  if (limited && input.unreclaimable !== undefined) {
    const ratio = input.unreclaimable / input.limit!;
    if (ratio >= cfg.criticalRatio) causes.push({ level: 'critical', text: `unreclaimable memory at ${pct(ratio)} of the limit, over the ${pct(cfg.criticalRatio)} critical line` });
    else if (ratio >= cfg.warningRatio) causes.push({ level: 'warning', text: `unreclaimable memory at ${pct(ratio)} of the limit, over the ${pct(cfg.warningRatio)} warning line` });
  }
  if (limited && input.eta !== undefined && Number.isFinite(input.eta)) {
    if (input.eta <= cfg.etaCriticalS) causes.push({ level: 'critical', text: `OOM predicted within ${cfg.etaCriticalS} s at the current growth` });
    else if (input.eta <= cfg.etaWarningS) causes.push({ level: 'warning', text: `OOM predicted within ${cfg.etaWarningS} s at the current growth` });
  }
  const window = `${Math.round(cfg.etaWindowMs / 1000)} s`;
  const share = limited && input.unreclaimable !== undefined ? input.unreclaimable / input.limit! : undefined;
  const pressureCounts = cfg.pressureMinRatio === 0 || (share !== undefined && share >= cfg.pressureMinRatio);
  const atShare = share === undefined ? '' : ` with unreclaimable memory at ${pct(share)} of the limit`;
  if (pressureCounts && input.psiFullRate !== undefined && input.psiFullRate >= cfg.psiFullWarning) {
    causes.push({ level: 'warning', text: `all tasks stalled on memory ${pct(input.psiFullRate)} of the last ${window}, PSI full${atShare}` });
  }
  if (pressureCounts && input.highEventsRising) causes.push({ level: 'warning', text: `the kernel is throttling at memory.high, high events in the last ${window}${atShare}` });
  causes.sort((a, b) => rank(b.level) - rank(a.level));
  return { level: causes[0]?.level ?? 'ok', causes };
}

/** The level this one sample alone would give. */
export function rawLevel(input: RiskInput, cfg: RiskConfig): RiskLevel {
  return assessRisk(input, cfg).level;
}

/** Rises at once; falls one sample after the cause stayed clear for cfg.clearSamples samples. */
export function nextRisk(prev: RiskState, input: RiskInput, cfg: RiskConfig): RiskState {
  const now = assessRisk(input, cfg);
  if (rank(now.level) >= rank(prev.level)) return { level: now.level, clearCount: 0, causes: now.causes };
  const clearCount = prev.clearCount + 1;
  if (clearCount >= cfg.clearSamples) return { level: now.level, clearCount: 0, causes: now.causes };
  return { level: prev.level, clearCount, causes: prev.causes ?? [] };
}
