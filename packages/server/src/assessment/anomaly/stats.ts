/**
 * Robust statistics for learned baselines: the median and the median absolute deviation (MAD)
 * of a sample, and how far a value lies above them in MAD units (the robust z-score of
 * Iglewicz and Hoaglin, 0.6745 · (x − median) / MAD). Unlike a mean and a standard deviation,
 * neither moves much when a few minutes of the history are themselves anomalous.
 */

/** 1 / Φ⁻¹(3/4): scales the MAD to the standard deviation of a normal sample. */
const MAD_TO_SIGMA = 1.4826;

/** The median of `values` (NaN for none). Sorts a copy: the caller's array is left as it was. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Baseline {
  median: number;
  /** Median absolute deviation from the median (unscaled). */
  mad: number;
  samples: number;
}

/** The sample's median and MAD. */
export function baselineOf(values: readonly number[]): Baseline {
  const m = median(values);
  return { median: m, mad: median(values.map((v) => Math.abs(v - m))), samples: values.length };
}

/**
 * How many robust standard deviations `value` lies above the baseline. When more than half the
 * sample is one value the MAD is 0: the spread then taken is `floor` (at least 1 unit of the
 * metric), so a device that sent 0 messages every minute is not infinitely anomalous at its first.
 */
export function robustZ(value: number, baseline: Baseline, floor = 1): number {
  const sigma = Math.max(baseline.mad * MAD_TO_SIGMA, floor);
  return (value - baseline.median) / sigma;
}
