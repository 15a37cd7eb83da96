// Time-to-OOM (Theil–Sen slope) and the risk inputs built on it, on synthetic series.
import { describe, expect, it } from 'vitest';
import { counterRate, counterRose, estimateEta, theilSen, thin, type TrendPoint } from '../../agent/analysis/eta.js';
import { assessRisk, DEFAULT_RISK, INITIAL_RISK, nextRisk, type RiskInput, type RiskState } from '../../agent/analysis/risk.js';

const MiB = 1024 * 1024;
const W = { windowMs: 60_000 };

/** One sample a second for `seconds` seconds: v(i) in bytes at t = i * 1000 ms. */
const T0 = 1_764_000_000_000; // epoch milliseconds, as the sampler passes them
const series = (seconds: number, v: (i: number) => number, everyMs = 1000): TrendPoint[] =>
  Array.from({ length: Math.floor((seconds * 1000) / everyMs) + 1 }, (_, i) => ({ t: T0 + i * everyMs, v: v((i * everyMs) / 1000) }));

/** Deterministic pseudo-random noise in [-1, 1). */
function noise(seed: number): (i: number) => number {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) % 2 ** 31; return (x / 2 ** 30) - 1; };
}

describe('Theil–Sen ETA', () => {
  it('a linear ramp: exact slope, ETA from the current level', () => {
    const pts = series(60, (s) => 100 * MiB + s * MiB);
    const r = estimateEta(pts, 256 * MiB, W);
    expect(r.slope).toBeCloseTo(MiB, 0);
    expect(r.level).toBe(159 * MiB); // the median of the last three samples
    expect(r.eta).toBeCloseTo(97, 5);
  });

  it('a noisy ramp: slope within a few percent despite ±4 MiB noise', () => {
    const n = noise(7);
    const pts = series(60, (s) => 100 * MiB + s * MiB + n(s) * 4 * MiB);
    const r = estimateEta(pts, 256 * MiB, W);
    expect(r.slope! / MiB).toBeGreaterThan(0.9);
    expect(r.slope! / MiB).toBeLessThan(1.1);
    expect(r.eta).toBeGreaterThan(80);
    expect(r.eta).toBeLessThan(110);
  });

  it('a GC sawtooth that rises: the slope is the rise, not the teeth', () => {
    // +5 MiB/s for 10 s, then a GC frees 40 MiB: net +1 MiB/s
    const pts = series(60, (s) => 80 * MiB + (s % 10) * 5 * MiB + Math.floor(s / 10) * 10 * MiB);
    const r = estimateEta(pts, 512 * MiB, W);
    expect(r.slope! / MiB).toBeGreaterThan(0.5);
    expect(r.slope! / MiB).toBeLessThan(2.5);
    expect(r.eta).toBeDefined();
  });

  it('a plateau (GC sawtooth that does not rise, or flat with jitter) is not rising: no ETA', () => {
    for (const end of [60, 63, 65, 67]) { // whole periods in the window or not
      const teeth = series(end, (s) => 100 * MiB + (s % 10) * 3 * MiB);
      expect(estimateEta(teeth, 256 * MiB, W).eta, `sawtooth ending at ${end} s`).toBeUndefined();
    }
    const n = noise(3);
    const flat = series(60, () => 100 * MiB + Math.round(n(0) * 64) * 4096);
    const r2 = estimateEta(flat, 256 * MiB, W);
    expect(r2.eta).toBeUndefined();
    expect(Math.abs(r2.slope!)).toBeLessThan(64 * 1024);
  });

  it('a drop after a GC: counts from the memory that is there now, so the ETA lengthens', () => {
    const ramp = (s: number) => 100 * MiB + s * MiB;
    const before = estimateEta(series(55, ramp), 256 * MiB, W);
    const dropped = estimateEta(series(60, (s) => (s <= 55 ? ramp(s) : 60 * MiB)), 256 * MiB, W);
    expect(dropped.level).toBe(60 * MiB);
    expect(dropped.eta!).toBeGreaterThan(before.eta! + 60);
  });

  it('unlimited: a slope, but no ETA', () => {
    const r = estimateEta(series(60, (s) => s * MiB), undefined, W);
    expect(r.slope).toBeCloseTo(MiB, 0);
    expect(r.eta).toBeUndefined();
  });

  it('a single outlier spike moves neither the slope nor the ETA', () => {
    const clean = series(60, (s) => 100 * MiB + s * 512 * 1024);
    const spiked = clean.map((p, i) => (i === 30 ? { ...p, v: p.v + 120 * MiB } : p));
    const spikedLast = clean.map((p, i) => (i === clean.length - 1 ? { ...p, v: p.v + 120 * MiB } : p));
    const a = estimateEta(clean, 256 * MiB, W);
    const b = estimateEta(spiked, 256 * MiB, W);
    const c = estimateEta(spikedLast, 256 * MiB, W);
    expect(b.slope! / a.slope!).toBeCloseTo(1, 1);
    expect(b.eta! / a.eta!).toBeCloseTo(1, 1);
    expect(c.eta! / a.eta!).toBeCloseTo(1, 1); // median of the last three ignores it
  });

  it('too few samples or too short a span: no estimate', () => {
    expect(estimateEta(series(3, (s) => s * MiB), 256 * MiB, W).slope).toBeUndefined();
    // 29 s of 1 s samples: less than half the 60 s window
    expect(estimateEta(series(29, (s) => s * MiB), 256 * MiB, W).eta).toBeUndefined();
    expect(estimateEta(series(30, (s) => s * MiB), 256 * MiB, W).eta).toBeDefined();
    expect(estimateEta([], 256 * MiB, W).eta).toBeUndefined();
  });

  it('at or over the limit: 0', () => {
    const r = estimateEta(series(60, () => 256 * MiB), 256 * MiB, W);
    expect(r.eta).toBe(0);
  });

  it('only the trailing window counts, and dense sampling is thinned to 60 points', () => {
    // a flat first 10 minutes, then a ramp in the last 60 s
    const pts = series(660, (s) => (s < 600 ? 50 * MiB : 50 * MiB + (s - 600) * MiB));
    expect(estimateEta(pts, 256 * MiB, W).slope).toBeCloseTo(MiB, 0);
    const dense = series(60, (s) => s * MiB, 100);
    expect(thin(dense, 60)).toHaveLength(60);
    expect(thin(dense, 60)[59]).toEqual(dense[dense.length - 1]);
    expect(estimateEta(dense, 256 * MiB, W).slope).toBeCloseTo(MiB, 0);
    expect(theilSen([{ t: 0, v: 1 }])).toBeUndefined();
  });
});

describe('counter rates', () => {
  it('PSI full: stalled seconds per second over the window', () => {
    const pts = series(60, (s) => s * 0.2);
    expect(counterRate(pts, 60_000)).toBeCloseTo(0.2, 5);
    expect(counterRate(pts.slice(0, 1), 60_000)).toBeUndefined();
    expect(counterRate(pts.slice(0, 5), 60_000), 'a few seconds only: not yet').toBeUndefined();
    expect(counterRate(pts.slice(0, 11), 60_000)).toBeCloseTo(0.2, 5);
  });
  it('memory.high events: rose within the window or not', () => {
    expect(counterRose(series(60, (s) => (s > 50 ? 3 : 0)), 60_000)).toBe(true);
    expect(counterRose(series(120, (s) => (s > 50 ? 3 : 0)), 60_000)).toBe(false);
  });
});

describe('risk from the ETA, PSI and memory.high', () => {
  const base: RiskInput = { unreclaimable: 100, limit: 1000 };
  it('ETA ≤ 300 s is warning, ≤ 60 s critical; the ratio levels stay', () => {
    expect(assessRisk({ ...base, eta: 301 }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ ...base, eta: 300 }, DEFAULT_RISK).level).toBe('warning');
    expect(assessRisk({ ...base, eta: 60 }, DEFAULT_RISK).level).toBe('critical');
    expect(assessRisk({ ...base, eta: 60 }, DEFAULT_RISK).causes[0]!.text).toMatch(/OOM predicted within 60 s/);
    expect(assessRisk({ unreclaimable: 850, limit: 1000 }, DEFAULT_RISK).causes[0]!.text).toMatch(/85% of the limit/);
  });
  it('PSI full rising and memory.high events are warnings once unreclaimable memory is at --pressure-min-ratio of the limit', () => {
    const high: RiskInput = { unreclaimable: 700, limit: 1000 };
    expect(assessRisk({ ...high, psiFullRate: 0.09 }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ ...high, psiFullRate: 0.1 }, DEFAULT_RISK).causes.map((c) => c.text))
      .toEqual(['all tasks stalled on memory 10% of the last 60 s, PSI full with unreclaimable memory at 70% of the limit']);
    expect(assessRisk({ ...high, highEventsRising: true }, DEFAULT_RISK).causes.map((c) => c.text))
      .toEqual(['the kernel is throttling at memory.high, high events in the last 60 s with unreclaimable memory at 70% of the limit']);
  });
  it('pressure with most of the limit page cache is slow I/O, not OOM risk (the lead-time benchmark\'s page-cache false alarms)', () => {
    // docs/leadtime.md, first run: page-cache flood, PSI full 13 % at 4 % unreclaimable; tmpfs + churn 26 % at 66 %
    expect(assessRisk({ unreclaimable: 44, limit: 1000, psiFullRate: 0.13 }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ unreclaimable: 280, limit: 1000, psiFullRate: 0.13 }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ unreclaimable: 660, limit: 1000, psiFullRate: 0.26 }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ ...base, highEventsRising: true }, DEFAULT_RISK).level).toBe('ok');
    expect(assessRisk({ unreclaimable: 1e12, limit: undefined, psiFullRate: 0.5 }, DEFAULT_RISK).level).toBe('ok');
    // --pressure-min-ratio 0: DESIGN §6 as written, pressure alone always counts, even unlimited
    const always = { ...DEFAULT_RISK, pressureMinRatio: 0 };
    expect(assessRisk({ unreclaimable: 280, limit: 1000, psiFullRate: 0.13 }, always).level).toBe('warning');
    expect(assessRisk({ unreclaimable: 1e12, limit: undefined, psiFullRate: 0.5 }, always).causes[0]!.text).toBe('all tasks stalled on memory 50% of the last 60 s, PSI full');
  });
  it('unlimited: no risk from the ratio or the ETA', () => {
    expect(assessRisk({ unreclaimable: 1e12, limit: undefined, eta: 1 }, DEFAULT_RISK).level).toBe('ok');
  });
  it('several causes: all named, the worst first', () => {
    const a = assessRisk({ unreclaimable: 850, limit: 1000, eta: 30, psiFullRate: 0.3 }, DEFAULT_RISK);
    expect(a.level).toBe('critical');
    expect(a.causes.map((c) => c.level)).toEqual(['critical', 'warning', 'warning']);
  });
  it('hysteresis: an ETA that stops for a sample does not drop the level', () => {
    const cfg = { ...DEFAULT_RISK, clearSamples: 3 };
    let s: RiskState = INITIAL_RISK;
    const levels: string[] = [];
    for (const eta of [200, 50, undefined, 40, undefined, 80, 250, 280]) {
      s = nextRisk(s, { ...base, eta }, cfg);
      levels.push(s.level);
    }
    // critical clears after 3 samples without an ETA ≤ 60 s, and falls to what the sample then says
    expect(levels).toEqual(['warning', 'critical', 'critical', 'critical', 'critical', 'critical', 'warning', 'warning']);
  });
  it('the risk state carries the cause of its level', () => {
    const s = nextRisk(INITIAL_RISK, { ...base, eta: 40 }, DEFAULT_RISK);
    expect(s.causes!.map((c) => c.text)).toEqual(['OOM predicted within 60 s at the current growth']);
  });
});
