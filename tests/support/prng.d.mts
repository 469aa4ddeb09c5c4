// Types for prng.mjs, so TypeScript tests can import it (no allowJs in tsconfig).

/**
 * A seeded PRNG (mulberry32): uniform floats in [0, 1), the same sequence for the same seed
 * (only its low 32 bits count), so a failing property run can be replayed by its seed.
 */
export function prng(seed: number): () => number;
