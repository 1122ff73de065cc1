/** The benchmarks' shared arithmetic. */

/** The p-quantile (0..1) of xs by nearest rank; NaN for none. */
export const pct = (xs: readonly number[], p: number): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : NaN);

/** Whole milliseconds for a table, '-' for none. */
export const fmtMs = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
