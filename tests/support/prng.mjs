// The one seeded PRNG of the tests and benchmarks (plain JS so that bench/*.mjs can import it too;
// types in prng.d.mts).

/**
 * A seeded PRNG (mulberry32): uniform floats in [0, 1). Property tests and benchmarks use it
 * instead of Math.random (and instead of a property-testing library, none is a dependency) so
 * every run checks the same cases and a failure can be replayed by its seed.
 * @param {number} seed any number; only its low 32 bits count
 * @returns {() => number}
 */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
