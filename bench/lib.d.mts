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

/** The order of paired rounds: `pair` as given in round 1, reversed in round 2, and so on. */
export function alternatingRounds<T extends string>(pair: readonly [T, T], rounds: number): [T, T][];
