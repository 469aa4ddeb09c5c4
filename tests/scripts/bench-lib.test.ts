/**
 * The paired-rounds helpers of the benchmarks (bench/lib.mjs), which `npm run bench` and
 * `npm run bench:persistence` base issue 13's ratio verdicts on: the alternating order, the median,
 * the verdict line, and the machine's busy CPU the noise indicator subtracts from. No speed is
 * checked here (benchmarks do that).
 */
import { describe, expect, it } from "vitest";
import { alternatingRounds, machineCpuMs, median, verdictLine } from "../../bench/lib.mjs";

describe("bench/lib.mjs paired rounds", () => {
  it("alternates which member of the pair runs first, starting as given", () => {
    expect(alternatingRounds(["memory", "rocksdb"], 4)).toEqual([
      ["memory", "rocksdb"],
      ["rocksdb", "memory"],
      ["memory", "rocksdb"],
      ["rocksdb", "memory"],
    ]);
    expect(alternatingRounds(["a", "b"], 1)).toEqual([["a", "b"]]);
  });

  it("takes the median of odd and even counts, without reordering its input", () => {
    const values = [3, 1, 2];
    expect(median(values)).toBe(2);
    expect(values).toEqual([3, 1, 2]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it("judges a target by the median of the rounds and prints every round, the spread and the rounds met", () => {
    const pct = (v: number) => `${v} %`;
    const atLeast80 = (v: number) => v >= 80;
    // One bad round out of three does not decide; the line still shows it.
    expect(verdictLine("rate >= 80 %", [64, 84, 88], atLeast80, pct)).toBe(
      "rate >= 80 %: met, median 84 % (rounds 64 %, 84 %, 88 %; min-max 64 %..88 %; met in 2 of 3 rounds)",
    );
    expect(verdictLine("rate >= 80 %", [90, 70, 75], atLeast80, pct)).toBe(
      "rate >= 80 %: NOT MET, median 75 % (rounds 90 %, 70 %, 75 %; min-max 70 %..90 %; met in 1 of 3 rounds)",
    );
  });

  it("counts this process's own CPU in the machine's busy time", () => {
    const usage = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const machine0 = machineCpuMs();
    const own0 = usage();
    let x = 0;
    while (usage() - own0 < 300) x += Math.sqrt(x + 1);
    const own = usage() - own0;
    // Other processes only add to the machine's figure; 10 ms ticks on both sides.
    expect(machineCpuMs() - machine0).toBeGreaterThanOrEqual(own - 30);
    expect(x).toBeGreaterThan(0);
  });
});
