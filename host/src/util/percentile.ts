/**
 * The `q` quantile of `values` by the nearest-rank rule used across the host's stats: the element
 * at index `floor(q * n)` of the ascending order (clamped to the last), so p50 of 4 values is the
 * 3rd. 0 for an empty list. Does not modify `values`.
 * @param q the quantile as a fraction, 0..1 (0.5 = median, 0.99 = p99)
 * @param sorted true when `values` is already ascending (skips the copy and sort)
 */
export function percentile(values: ArrayLike<number>, q: number, sorted = false): number {
  const n = values.length;
  if (n === 0) return 0;
  const s = sorted ? values : Array.from(values).sort((a, b) => a - b);
  return s[Math.min(n - 1, Math.floor(q * n))]!;
}
