// Property tests: random bindings and messages, the compiled router checked against a
// brute-force reference written here straight from the words (issue 5, "Router"):
//   "A binding matches when every field it sets equals the message's field. Its tier is its most
//   specific field set: peer > guild > team > account > channel. The matching binding of the
//   highest tier wins; within a tier, the first in config order. No match: the default agent."
// Values come from small alphabets (with ':' and '%' in them) so that bindings collide, tie and
// shadow each other often. Seeded, so a failure is reproducible from the seed in its message.
import { describe, expect, it } from "vitest";
import { compileRouter, RouterConfigError, type Binding, type InboundAddress, type Route } from "../../host/src/router/index.js";
import { prng } from "../support/prng.mjs";

const ORDER = ["peer", "guild", "team", "account", "channel"] as const; // most specific first
type Field = (typeof ORDER)[number];
const AGENTS = ["main", "a", "b", "c"];

function referenceKey(agent: string, channel: string, account: string, peer: string): string {
  const esc = (s: string) => s.split("%").join("%25").split(":").join("%3A");
  return `agent:${esc(agent)}:${esc(channel)}:${esc(account)}:${esc(peer)}`;
}

/** The spec, by brute force: scan every binding. */
function reference(bindings: readonly Binding[], defaultAgent: string, m: InboundAddress): Route {
  let winner: { binding: Binding; rank: number } | undefined;
  for (const binding of bindings) {
    const set = ORDER.filter((f) => binding[f] !== undefined);
    if (!set.every((f) => binding[f] === m[f])) continue;
    const rank = ORDER.indexOf(set[0]!);
    // Strictly better only: an equal rank keeps the earlier binding (config order).
    if (winner === undefined || rank < winner.rank) winner = { binding, rank };
  }
  const agentId = winner?.binding.agent ?? defaultAgent;
  return {
    agentId,
    sessionKey: referenceKey(agentId, m.channel, m.account, m.peer),
    matchedBy: winner ? `binding.${ORDER[winner.rank]!}` : "default",
  };
}

/** Shared small alphabet: the same strings appear in every field, so fields cannot be confused unnoticed. */
const VALUES = ["1", "2", "3", ":", "1:2", "%3A", "ü"];

function generator(seed: number, values = VALUES) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  return {
    rand,
    pick,
    binding(p = 0.3): Binding {
      const b: Binding = { agent: pick(AGENTS) };
      for (const f of ORDER) if (rand() < p) b[f] = pick(values);
      if (ORDER.every((f) => b[f] === undefined)) b[pick(ORDER)] = pick(values);
      return b;
    },
    message(): InboundAddress {
      const m: InboundAddress = { channel: pick(values), account: pick(values), peer: pick(values) };
      if (rand() < 0.6) m.guild = pick(values);
      if (rand() < 0.6) m.team = pick(values);
      return m;
    },
  };
}

describe("router: property, against a brute-force reference", () => {
  it("agrees on 3,000 random configs x 30 messages each", () => {
    const seen = new Map<string, number>();
    for (let seed = 1; seed <= 3000; seed++) {
      const g = generator(seed);
      const n = Math.floor(g.rand() * 25);
      const bindings = Array.from({ length: n }, () => g.binding());
      const def = g.pick(AGENTS);
      const router = compileRouter(bindings, AGENTS, def);
      for (let i = 0; i < 30; i++) {
        const m = g.message();
        const want = reference(bindings, def, m);
        const got = router.resolve(m);
        if (got.agentId !== want.agentId || got.matchedBy !== want.matchedBy || got.sessionKey !== want.sessionKey) {
          expect.fail(
            `seed ${seed}, message ${i}: ${JSON.stringify(m)}\nbindings ${JSON.stringify(bindings)}\nwant ${JSON.stringify(want)}\ngot  ${JSON.stringify(got)}`,
          );
        }
        seen.set(want.matchedBy, (seen.get(want.matchedBy) ?? 0) + 1);
      }
    }
    // Every outcome was exercised many times, so the agreement above means something.
    for (const by of ["default", ...ORDER.map((f) => `binding.${f}`)]) expect(seen.get(by) ?? 0, by).toBeGreaterThan(1000);
  });

  it("agrees where ties are the rule: many bindings over two values", () => {
    let ties = 0;
    for (let seed = 1; seed <= 500; seed++) {
      const g = generator(10_000 + seed, ["x", "y"]);
      const bindings = Array.from({ length: 10 + Math.floor(g.rand() * 40) }, () => g.binding(0.5));
      const router = compileRouter(bindings, AGENTS, "main");
      for (let i = 0; i < 20; i++) {
        const m = g.message();
        const want = reference(bindings, "main", m);
        expect(router.resolve(m), `seed ${10_000 + seed}: ${JSON.stringify(m)} / ${JSON.stringify(bindings)}`).toEqual(want);
        // Count messages where more than one binding of the winning tier matched.
        const tier = want.matchedBy.replace("binding.", "") as Field;
        const sameTier = bindings.filter((b) => ORDER.find((f) => b[f] !== undefined) === tier && ORDER.every((f) => b[f] === undefined || b[f] === m[f]));
        if (sameTier.length > 1) ties++;
      }
    }
    expect(ties).toBeGreaterThan(2000);
  });

  it("agrees with 5,000 bindings over a larger alphabet", () => {
    const values = Array.from({ length: 60 }, (_, i) => (i % 7 === 0 ? `id:${i}` : `id${i}`));
    const g = generator(42, values);
    const bindings = Array.from({ length: 5000 }, () => g.binding(0.25));
    const router = compileRouter(bindings, AGENTS, "main");
    for (let i = 0; i < 3000; i++) {
      const m = g.message();
      expect(router.resolve(m), JSON.stringify(m)).toEqual(reference(bindings, "main", m));
    }
  });

  it("rejects exactly the configs the spec rejects, naming the first bad binding", () => {
    let rejected = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const g = generator(20_000 + seed);
      const bindings: Binding[] = Array.from({ length: 1 + Math.floor(g.rand() * 8) }, () => {
        const b = g.binding();
        const r = g.rand();
        if (r < 0.05) return { agent: b.agent }; // no selector
        if (r < 0.1) return { ...b, agent: "ghost" }; // unknown agent
        return b;
      });
      const firstBad = bindings.findIndex((b) => !AGENTS.includes(b.agent) || ORDER.every((f) => b[f] === undefined));
      let err: unknown;
      try {
        compileRouter(bindings, AGENTS, "main");
      } catch (e) {
        err = e;
      }
      if (firstBad < 0) {
        expect(err, `seed ${20_000 + seed}`).toBeUndefined();
      } else {
        rejected++;
        expect(err, `seed ${20_000 + seed}`).toBeInstanceOf(RouterConfigError);
        expect((err as RouterConfigError).index).toBe(firstBad);
        expect((err as RouterConfigError).message).toContain(`bindings[${firstBad}]`);
      }
    }
    expect(rejected).toBeGreaterThan(300);
  });
});
