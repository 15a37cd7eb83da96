// OOM risk from unreclaimable memory against the tightest limit, with hysteresis (DESIGN §6).
// Pure: the caller keeps the state between samples. Later inputs (ETA, PSI) extend RiskInput.
export const RISK_LEVELS = ['ok', 'warning', 'critical'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export interface RiskConfig {
  /** share of the limit at which unreclaimable memory is a warning (default 0.8) */
  readonly warningRatio: number;
  /** share of the limit at which it is critical (default 0.9) */
  readonly criticalRatio: number;
  /** a level is left only after its cause stayed clear for this many consecutive samples */
  readonly clearSamples: number;
}

export const DEFAULT_RISK: RiskConfig = { warningRatio: 0.8, criticalRatio: 0.9, clearSamples: 5 };

export interface RiskInput {
  readonly unreclaimable: number | undefined;
  /** undefined = unlimited: no risk from the limit */
  readonly limit: number | undefined;
}

export interface RiskState {
  readonly level: RiskLevel;
  /** consecutive samples whose raw level was below `level` */
  readonly clearCount: number;
}

export const INITIAL_RISK: RiskState = { level: 'ok', clearCount: 0 };

const rank = (l: RiskLevel) => RISK_LEVELS.indexOf(l);

/** The level this one sample alone would give. */
export function rawLevel(input: RiskInput, cfg: RiskConfig): RiskLevel {
  if (input.limit === undefined || input.unreclaimable === undefined || input.limit <= 0) return 'ok';
  const ratio = input.unreclaimable / input.limit;
  if (ratio >= cfg.criticalRatio) return 'critical';
  if (ratio >= cfg.warningRatio) return 'warning';
  return 'ok';
}

/** Rises at once; falls one sample after the cause stayed clear for cfg.clearSamples samples. */
export function nextRisk(prev: RiskState, input: RiskInput, cfg: RiskConfig): RiskState {
  const now = rawLevel(input, cfg);
  if (rank(now) >= rank(prev.level)) return { level: now, clearCount: 0 };
  const clearCount = prev.clearCount + 1;
  if (clearCount >= cfg.clearSamples) return { level: now, clearCount: 0 };
  return { level: prev.level, clearCount };
}
