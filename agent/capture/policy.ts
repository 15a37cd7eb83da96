// When to capture pre-OOM evidence: once per episode, never every second. Pure.
//
// An episode starts when a container's risk reaches the capture level (--capture-on) and ends when
// its risk is back to ok. Within one episode there is at most one capture, however often the level
// moves between warning and critical. A new episode sooner than cooldownMs after the last capture
// is not captured either: a container that flaps around the line must not be paused for a heap
// snapshot every few minutes.
import type { RiskLevel } from '../analysis/risk.js';

export interface EpisodeState {
  /** inside an episode (its capture was taken or deliberately skipped) */
  readonly active: boolean;
  /** ms; when the last capture was started */
  readonly lastCaptureAt: number | undefined;
}

export const NO_EPISODE: EpisodeState = { active: false, lastCaptureAt: undefined };

export type CaptureDecision =
  | { readonly capture: true; readonly state: EpisodeState }
  | { readonly capture: false; readonly state: EpisodeState; readonly skipped?: 'cooldown' };

const RANK: Record<RiskLevel, number> = { ok: 0, warning: 1, critical: 2 };

export function onRiskChange(
  prev: EpisodeState, to: RiskLevel, on: 'warning' | 'critical', now: number, cooldownMs: number,
): CaptureDecision {
  if (to === 'ok') return { capture: false, state: { active: false, lastCaptureAt: prev.lastCaptureAt } };
  if (RANK[to] < RANK[on] || prev.active) return { capture: false, state: prev };
  if (prev.lastCaptureAt !== undefined && now - prev.lastCaptureAt < cooldownMs) {
    return { capture: false, state: { active: true, lastCaptureAt: prev.lastCaptureAt }, skipped: 'cooldown' };
  }
  return { capture: true, state: { active: true, lastCaptureAt: now } };
}
