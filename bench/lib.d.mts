// Types for the parts of lib.mjs that TypeScript tests import (no allowJs in tsconfig); the
// benchmarks themselves are plain JavaScript.

/** Median of numbers (the mean of the two middle ones for an even count; NaN for none). */
export function median(values: readonly number[]): number;

/**
 * Busy CPU time of the whole machine so far, ms summed over its cores (Linux `/proc/stat`: user,
 * nice, system, irq, softirq, steal).
 */
export function machineCpuMs(): number;

/**
 * The verdict on one target from paired rounds: met or not by the median of the per-round values,
 * with every round's value, the spread and how many rounds met it alone. One line.
 */
export function verdictLine(label: string, perRound: readonly number[], ok: (v: number) => boolean, fmt: (v: number) => string): string;

/** One paired round's figures as {@link targetVerdicts} reads them. */
export interface VerdictRound {
  turn: { p50: number };
  rate: number;
  others: { seq: number; load: number };
}

/** The verdict lines on issue 13's three turn targets from paired rounds (see lib.mjs). */
export function targetVerdicts(opts: { durable: readonly VerdictRound[]; memory: readonly VerdictRound[]; parallel: number; noisyCores: number }): {
  lines: string[];
  noisy: boolean;
};

/** The order of paired rounds: `pair` as given in round 1, reversed in round 2, and so on. */
export function alternatingRounds<T extends string>(pair: readonly [T, T], rounds: number): [T, T][];
