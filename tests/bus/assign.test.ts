// Partition assignment among bus members: every member computes the same owners from the same
// member set, loads differ by at most one, and no member is left out while partitions >= members.
import { describe, expect, it } from "vitest";
import { assignPartitions } from "../../host/src/bus/nats/index.js";
import { prng } from "../support/prng.mjs";

const randomId = (rand: () => number) =>
  Math.floor(rand() * 2 ** 32)
    .toString(16)
    .padStart(8, "0");

describe("assignPartitions", () => {
  it("is empty with no members and gives everything to a lone member", () => {
    expect(assignPartitions(4, [])).toEqual([]);
    expect(assignPartitions(4, ["a"])).toEqual(["a", "a", "a", "a"]);
  });

  it("balances every random member set (loads floor/ceil, nobody left out) and ignores member order", () => {
    const rand = prng(7);
    for (let run = 0; run < 2000; run++) {
      const n = 1 + Math.floor(rand() * 5);
      const partitions = n + Math.floor(rand() * 30);
      const members = Array.from({ length: n }, () => randomId(rand));
      const owners = assignPartitions(partitions, members);
      expect(owners).toHaveLength(partitions);
      const loads = members.map((m) => owners.filter((o) => o === m).length);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
      expect(Math.min(...loads)).toBeGreaterThanOrEqual(1);
      expect(assignPartitions(partitions, [...members].reverse())).toEqual(owners);
    }
  });

  it("moves a minority of partitions when a member joins", () => {
    const members = ["g0", "g1", "g2"];
    const before = assignPartitions(16, members);
    const after = assignPartitions(16, [...members, "g3"]);
    const moved = before.filter((o, k) => after[k] !== o).length;
    expect(after.filter((o) => o === "g3")).toHaveLength(4);
    expect(moved).toBeLessThan(16);
  });
});
