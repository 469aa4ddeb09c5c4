/**
 * The paired-rounds helpers of the benchmarks (bench/lib.mjs), which `npm run bench` and
 * `npm run bench:persistence` base issue 13's ratio verdicts on: the alternating order, the median,
 * the verdict line, and the machine's busy CPU the noise indicator subtracts from. No speed is
 * checked here (benchmarks do that).
 */
import { describe, expect, it } from "vitest";
import { alternatingRounds, machineCpuMs, median, targetVerdicts, verdictLine } from "../../bench/lib.mjs";

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

  it("gives issue 13's three target lines over every round, then over the clean rounds when some were noisy", () => {
    const round = (p50: number, rate: number, noise = 0) => ({ turn: { p50 }, rate, others: { seq: 0, load: noise } });
    const memory = [round(2, 1000), round(2, 1000), round(2, 1000)];
    const durable = [round(2.5, 900), round(4, 500, 1.2), round(2.8, 850)];
    const { lines, noisy } = targetVerdicts({ durable, memory, parallel: 50, noisyCores: 0.25 });
    expect(noisy).toBe(true);
    expect(lines[0]).toContain("NOISY run");
    expect(lines[1]).toBe(
      "  durable turn p50 <= memory p50 + 1 ms: met, median +0.80 ms (rounds +0.50 ms, +2.00 ms, +0.80 ms; min-max +0.50 ms..+2.00 ms; met in 2 of 3 rounds)",
    );
    expect(lines[2]).toContain("durable turns/s (50 sessions) >= 80 % of memory's: met, median 85 %");
    expect(lines[3]).toContain(">= 1,000: NOT MET, median 850");
    // Round 2 was noisy: the clean-rounds lines leave it out, and the all-rounds lines came first.
    expect(lines[4]).toBe("verdict over the clean rounds only (1, 3: others <= 0.25 cores in all four phases):");
    expect(lines[6]).toContain("(rounds 90 %, 85 %;");
    const quiet = targetVerdicts({ durable: [round(2.5, 900)], memory: [round(2, 1000)], parallel: 50, noisyCores: 0.25 });
    expect(quiet.noisy).toBe(false);
    expect(quiet.lines).toHaveLength(4);
  });
});
