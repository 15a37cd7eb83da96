// Time to OOM from the trend of unreclaimable memory (DESIGN §6). Pure: no I/O, no clock.
//
// The slope is Theil–Sen: the median of the slopes between every pair of points in the trailing
// window. Half the points can be outliers before it moves, so a single spike, a GC sawtooth or
// allocator jitter do not swing it the way the last two points or least squares would. The window
// is thinned to at most maxPoints evenly spaced samples (≤ 1,770 pairs), so it stays cheap at any
// sampling interval.
//
// The "current level" the ETA counts from is the median of the last three samples: the memory that
// is there now (a drop after a GC shows at once and lengthens the ETA, instead of predicting from a
// line the process already left), and one spike among them is ignored.

export interface TrendPoint {
  /** ms */
  readonly t: number;
  readonly v: number;
}

export interface EtaOptions {
  /** trailing window the slope is fitted over (ms, default 60 s) */
  readonly windowMs: number;
  /** fewer samples than this in the window: no estimate (default 5) */
  readonly minSamples?: number;
  /** the samples must span at least this much of the window (ms; default half the window) */
  readonly minSpanMs?: number;
  /** at most this many points enter the pairwise slopes (default 60) */
  readonly maxPoints?: number;
  /** slopes below this are "not rising" (bytes/s; default 1 MiB per minute) */
  readonly minSlope?: number;
}

export const DEFAULT_ETA_WINDOW_MS = 60_000;
export const DEFAULT_MIN_SLOPE = (1024 * 1024) / 60;

export interface EtaResult {
  /** Theil–Sen slope over the window in bytes/s; undefined when there are too few samples */
  readonly slope: number | undefined;
  /** seconds until the level reaches the limit at this slope; 0 at or over it; undefined when not rising, unlimited or too little data */
  readonly eta: number | undefined;
  /** the level the ETA counts from (median of the last three samples) */
  readonly level: number | undefined;
}

const NONE: EtaResult = { slope: undefined, eta: undefined, level: undefined };

function median(xs: Float64Array | number[]): number {
  const a = Float64Array.from(xs).sort();
  const n = a.length;
  return n % 2 === 1 ? a[(n - 1) / 2]! : (a[n / 2 - 1]! + a[n / 2]!) / 2;
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** The points within windowMs of the last one (points are in time order). */
export function trailing<T extends { t: number }>(points: readonly T[], windowMs: number): T[] {
  if (points.length === 0) return [];
  const cutoff = points[points.length - 1]!.t - windowMs;
  let i = 0;
  while (i < points.length && points[i]!.t < cutoff) i++;
  return points.slice(i);
}

/** At most max points, evenly spaced by index, always keeping the first and the last. */
export function thin<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]!);
  return out;
}

/** Theil–Sen slope in units of v per second; undefined with fewer than two distinct times. */
export function theilSen(points: readonly TrendPoint[]): number | undefined {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const dt = points[j]!.t - points[i]!.t;
      if (dt > 0) slopes.push(((points[j]!.v - points[i]!.v) * 1000) / dt);
    }
  }
  return slopes.length === 0 ? undefined : median(slopes);
}

export function estimateEta(points: readonly TrendPoint[], limit: number | undefined, opts: EtaOptions): EtaResult {
  const minSamples = opts.minSamples ?? 5;
  const minSpanMs = opts.minSpanMs ?? opts.windowMs / 2;
  const minSlope = opts.minSlope ?? DEFAULT_MIN_SLOPE;
  const win = trailing(points, opts.windowMs);
  if (win.length < Math.max(2, minSamples)) return NONE;
  if (win[win.length - 1]!.t - win[0]!.t < minSpanMs) return NONE;
  const pts = thin(win, Math.max(2, opts.maxPoints ?? 60));
  const slope = theilSen(pts);
  if (slope === undefined) return NONE;
  const level = median(win.slice(-3).map((p) => p.v));
  if (limit === undefined || limit <= 0) return { slope, eta: undefined, level };
  if (level >= limit) return { slope, eta: 0, level };
  if (slope < minSlope || slope <= 0) return { slope, eta: undefined, level };
  // Rising means the rise across the window stands out of the spread around the line (the
  // interquartile range of the residuals): a GC sawtooth or jitter without a net rise can still
  // give a small positive median slope when the window does not hold whole periods.
  const span = (pts[pts.length - 1]!.t - pts[0]!.t) / 1000;
  const t0 = pts[0]!.t; // relative times: epoch milliseconds times a slope would lose precision
  const residuals = Float64Array.from(pts, (p) => p.v - (slope * (p.t - t0)) / 1000).sort();
  if (slope * span <= quantile(residuals, 0.75) - quantile(residuals, 0.25)) return { slope, eta: undefined, level };
  return { slope, eta: (limit - level) / slope, level };
}

/**
 * Average rate of a monotonic counter over the trailing window (units per second), from its first
 * and last value there; undefined with fewer than two values or when they span less than minSpanMs
 * (default: half the window, at most 10 s, as the kernel's own avg10). A counter that went down (a
 * reset) gives undefined rather than a negative rate.
 */
export function counterRate(points: readonly TrendPoint[], windowMs: number, minSpanMs = Math.min(windowMs / 2, 10_000)): number | undefined {
  const win = trailing(points, windowMs);
  if (win.length < 2) return undefined;
  const a = win[0]!;
  const b = win[win.length - 1]!;
  if (b.t <= a.t || b.t - a.t < minSpanMs || b.v < a.v) return undefined;
  return ((b.v - a.v) * 1000) / (b.t - a.t);
}

/** Did a monotonic counter increase within the trailing window? */
export function counterRose(points: readonly TrendPoint[], windowMs: number): boolean {
  const win = trailing(points, windowMs);
  return win.length >= 2 && win[win.length - 1]!.v > win[0]!.v;
}
