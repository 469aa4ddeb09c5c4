// Table tests for the router (issue 5, "Router"): every tier, every tie, `matchedBy`, config
// errors with the binding's index, and that resolution cost does not grow with the bindings.
import { describe, expect, it } from "vitest";
import { compileRouter, RouterConfigError, TIERS, type Binding, type InboundAddress, type MatchedBy, type Tier } from "../../host/src/router/index.js";

const AGENTS = ["main", "a", "b", "c", "d", "e", "f"];
const msg = (over: Partial<InboundAddress> = {}): InboundAddress => ({ channel: "telegram", account: "bot1", peer: "u1", ...over });

/** A binding of tier `t` that matches `msg({guild: "g1", team: "t1"})`. */
const matching: Record<Tier, Omit<Binding, "agent">> = {
  peer: { peer: "u1" },
  guild: { guild: "g1" },
  team: { team: "t1" },
  account: { account: "bot1" },
  channel: { channel: "telegram" },
};
const full = msg({ guild: "g1", team: "t1" });

interface Row {
  name: string;
  bindings: Binding[];
  message: InboundAddress;
  agent: string;
  matchedBy: MatchedBy;
}

const rows: Row[] = [
  { name: "no bindings: default", bindings: [], message: msg(), agent: "main", matchedBy: "default" },
  // Each tier alone, hit and miss.
  ...TIERS.map((t): Row => ({ name: `${t} alone matches`, bindings: [{ agent: "a", ...matching[t] }], message: full, agent: "a", matchedBy: `binding.${t}` })),
  ...TIERS.map(
    (t): Row => ({
      name: `${t} alone, other value: default`,
      bindings: [{ agent: "a", [t]: "other" }],
      message: full,
      agent: "main",
      matchedBy: "default",
    }),
  ),
  // An absent field equals nothing: guild/team bindings never match a message without them.
  { name: "guild binding vs message without guild", bindings: [{ agent: "a", guild: "g1" }], message: msg(), agent: "main", matchedBy: "default" },
  { name: "team binding vs message without team", bindings: [{ agent: "a", team: "t1" }], message: msg({ guild: "g1" }), agent: "main", matchedBy: "default" },
  // Every selector a binding sets must equal the message's.
  ...[
    { over: {}, agent: "a", matchedBy: "binding.peer" as const },
    { over: { channel: "slack" }, agent: "main", matchedBy: "default" as const },
    { over: { peer: "u2" }, agent: "main", matchedBy: "default" as const },
    { over: { channel: "slack", peer: "u2" }, agent: "main", matchedBy: "default" as const },
  ].map(
    ({ over, agent, matchedBy }): Row => ({
      name: `peer+channel binding vs ${JSON.stringify(over)}`,
      bindings: [{ agent: "a", peer: "u1", channel: "telegram" }],
      message: msg(over),
      agent,
      matchedBy,
    }),
  ),
  {
    name: "peer+account+channel needs all three",
    bindings: [{ agent: "a", peer: "u1", account: "bot2", channel: "telegram" }],
    message: msg(),
    agent: "main",
    matchedBy: "default",
  },
  {
    name: "guild+team binding: tier guild, needs the team too",
    bindings: [
      { agent: "a", guild: "g1", team: "t2" },
      { agent: "b", team: "t1" },
    ],
    message: full,
    agent: "b",
    matchedBy: "binding.team",
  },
  {
    name: "account+channel: same account name on another channel does not match",
    bindings: [
      { agent: "a", account: "bot1", channel: "slack" },
      { agent: "b", channel: "telegram" },
    ],
    message: msg(),
    agent: "b",
    matchedBy: "binding.channel",
  },
  // A non-matching higher-tier binding does not block a lower tier.
  {
    name: "peer+channel elsewhere, channel here",
    bindings: [
      { agent: "a", peer: "u1", channel: "slack" },
      { agent: "b", channel: "telegram" },
    ],
    message: msg(),
    agent: "b",
    matchedBy: "binding.channel",
  },
  // The peer selector is compared alone: a peer-only binding follows that id on every channel.
  {
    name: "peer-only binding on any channel",
    bindings: [{ agent: "a", peer: "u1" }],
    message: msg({ channel: "whatsapp", account: "x" }),
    agent: "a",
    matchedBy: "binding.peer",
  },
  // Ties within a tier: first in config order, whatever else the bindings set.
  {
    name: "same selectors twice: first wins",
    bindings: [
      { agent: "a", peer: "u1" },
      { agent: "b", peer: "u1" },
    ],
    message: msg(),
    agent: "a",
    matchedBy: "binding.peer",
  },
  {
    name: "peer then peer+channel (same tier): the earlier, less narrow one wins",
    bindings: [
      { agent: "a", peer: "u1" },
      { agent: "b", peer: "u1", channel: "telegram" },
    ],
    message: msg(),
    agent: "a",
    matchedBy: "binding.peer",
  },
  {
    name: "peer+channel then peer (same tier): the earlier wins",
    bindings: [
      { agent: "b", peer: "u1", channel: "telegram" },
      { agent: "a", peer: "u1" },
    ],
    message: msg(),
    agent: "b",
    matchedBy: "binding.peer",
  },
  {
    name: "two peer bindings with different extra selectors, both match: first wins",
    bindings: [
      { agent: "c", peer: "u9" },
      { agent: "a", peer: "u1", account: "bot1" },
      { agent: "b", peer: "u1", channel: "telegram" },
    ],
    message: msg(),
    agent: "a",
    matchedBy: "binding.peer",
  },
  {
    name: "two peer bindings with different extra selectors, only the later matches",
    bindings: [
      { agent: "a", peer: "u1", account: "bot2" },
      { agent: "b", peer: "u1", channel: "telegram" },
    ],
    message: msg(),
    agent: "b",
    matchedBy: "binding.peer",
  },
  {
    name: "guild ties: first of guild and guild+channel",
    bindings: [
      { agent: "a", guild: "g1", channel: "telegram" },
      { agent: "b", guild: "g1" },
    ],
    message: full,
    agent: "a",
    matchedBy: "binding.guild",
  },
  {
    name: "channel ties: first wins",
    bindings: [
      { agent: "a", channel: "telegram" },
      { agent: "b", channel: "telegram" },
    ],
    message: msg(),
    agent: "a",
    matchedBy: "binding.channel",
  },
  // Ids are compared exactly: no case folding, no globs, no prototype lookups.
  { name: "case-sensitive", bindings: [{ agent: "a", peer: "U1" }], message: msg(), agent: "main", matchedBy: "default" },
  { name: "'*' is a literal id, not a glob", bindings: [{ agent: "a", peer: "*" }], message: msg(), agent: "main", matchedBy: "default" },
  { name: "'*' peer matches only the id '*'", bindings: [{ agent: "a", peer: "*" }], message: msg({ peer: "*" }), agent: "a", matchedBy: "binding.peer" },
  ...["__proto__", "constructor", "toString", "hasOwnProperty"].map(
    (id): Row => ({
      name: `id ${id} behaves like any id`,
      bindings: [{ agent: "a", peer: id }],
      message: msg({ peer: id }),
      agent: "a",
      matchedBy: "binding.peer",
    }),
  ),
  ...["__proto__", "constructor"].map(
    (id): Row => ({
      name: `unbound id ${id}: default`,
      bindings: [{ agent: "a", peer: "u1" }],
      message: msg({ peer: id }),
      agent: "main",
      matchedBy: "default",
    }),
  ),
  // Values containing separators cannot splice into another binding's selectors.
  {
    name: "separator characters inside ids do not collide",
    bindings: [
      { agent: "a", peer: "x", channel: "y\u0000channel=z" },
      { agent: "b", peer: "x:y", channel: "z" },
    ],
    message: msg({ peer: "x\u0000channel=y", channel: "z" }),
    agent: "main",
    matchedBy: "default",
  },
  {
    name: "':' inside ids is an ordinary character",
    bindings: [{ agent: "a", peer: "x:y", channel: "z" }],
    message: msg({ peer: "x", channel: "y:z" }),
    agent: "main",
    matchedBy: "default",
  },
  {
    name: "unicode ids",
    bindings: [{ agent: "a", peer: "Zoë 😀", guild: "日本" }],
    message: msg({ peer: "Zoë 😀", guild: "日本" }),
    agent: "a",
    matchedBy: "binding.peer",
  },
  {
    name: "unicode normalization is not applied",
    bindings: [{ agent: "a", peer: "Zo\u00eb" }],
    message: msg({ peer: "Zoe\u0308" }),
    agent: "main",
    matchedBy: "default",
  },
];

// Every pair of tiers, the higher one placed before and after the lower: the higher tier wins.
for (let hi = 0; hi < TIERS.length; hi++) {
  for (let lo = hi + 1; lo < TIERS.length; lo++) {
    const [h, l] = [TIERS[hi]!, TIERS[lo]!];
    rows.push({
      name: `${h} (earlier) beats ${l}`,
      bindings: [
        { agent: "a", ...matching[h] },
        { agent: "b", ...matching[l] },
      ],
      message: full,
      agent: "a",
      matchedBy: `binding.${h}`,
    });
    rows.push({
      name: `${h} (later in config) still beats ${l}`,
      bindings: [
        { agent: "b", ...matching[l] },
        { agent: "a", ...matching[h] },
      ],
      message: full,
      agent: "a",
      matchedBy: `binding.${h}`,
    });
  }
}

describe("router: table", () => {
  it.each(rows.map((r) => [r.name, r] as const))("%s", (_name, r) => {
    const route = compileRouter(r.bindings, AGENTS, "main").resolve(r.message);
    expect(route.agentId).toBe(r.agent);
    expect(route.matchedBy).toBe(r.matchedBy);
  });

  it("all five tiers bound: each message falls to the highest tier that matches", () => {
    const r = compileRouter(
      [
        { agent: "a", channel: "telegram" },
        { agent: "b", account: "bot1" },
        { agent: "c", team: "t1" },
        { agent: "d", guild: "g1" },
        { agent: "e", peer: "u1" },
      ],
      AGENTS,
      "main",
    );
    const cases: [InboundAddress, string, MatchedBy][] = [
      [full, "e", "binding.peer"],
      [{ ...full, peer: "u2" }, "d", "binding.guild"],
      [msg({ peer: "u2", team: "t1" }), "c", "binding.team"],
      [msg({ peer: "u2" }), "b", "binding.account"],
      [msg({ peer: "u2", account: "bot2" }), "a", "binding.channel"],
      [{ channel: "ws", account: "default", peer: "u2" }, "main", "default"],
    ];
    for (const [m, agent, by] of cases) expect(r.resolve(m), JSON.stringify(m)).toMatchObject({ agentId: agent, matchedBy: by });
  });

  it("returns agent, session key and matchedBy; the default route too", () => {
    const r = compileRouter([{ agent: "a", peer: "u1" }], AGENTS, "main");
    expect(r.resolve(msg())).toEqual({ agentId: "a", sessionKey: "agent:a:telegram:bot1:u1", matchedBy: "binding.peer" });
    expect(r.resolve(msg({ peer: "u2" }))).toEqual({ agentId: "main", sessionKey: "agent:main:telegram:bot1:u2", matchedBy: "default" });
  });

  it("guild and team do not split a peer's session", () => {
    const r = compileRouter([{ agent: "a", channel: "discord" }], AGENTS, "main");
    const keys = new Set(
      [undefined, "g1", "g2"].flatMap((guild) =>
        [undefined, "t1"].map((team) => r.resolve({ channel: "discord", account: "default", peer: "u1", guild, team }).sessionKey),
      ),
    );
    expect([...keys]).toEqual(["agent:a:discord:default:u1"]);
  });

  it("ignores later changes to the arrays it was compiled from", () => {
    const bindings: Binding[] = [{ agent: "a", peer: "u1" }];
    const agents = [...AGENTS];
    const r = compileRouter(bindings, agents, "main");
    bindings[0]!.agent = "b";
    bindings.push({ agent: "c", channel: "telegram" });
    agents.reverse();
    expect(r.resolve(msg())).toMatchObject({ agentId: "a", matchedBy: "binding.peer" });
    expect(r.resolve(msg({ peer: "u2" }))).toMatchObject({ agentId: "main", matchedBy: "default" });
  });
});

describe("router: config errors name the binding", () => {
  const fail = (bindings: unknown[], agents = AGENTS, def = "main"): RouterConfigError => {
    try {
      compileRouter(bindings as Binding[], agents, def);
    } catch (err) {
      expect(err).toBeInstanceOf(RouterConfigError);
      return err as RouterConfigError;
    }
    throw new Error("compileRouter accepted a bad config");
  };
  const ok = { agent: "a", peer: "u1" };

  it.each([
    [
      "unknown agent",
      [ok, ok, { agent: "ghost", peer: "x" }],
      2,
      /bindings\[2\] \(the 3rd \[\[bindings\]\] table\): unknown agent "ghost" \(agents: main, a, b/,
    ],
    ["no selector", [{ agent: "a" }], 0, /bindings\[0\] \(the 1st .*agent "a" has no selector; set at least one of peer, guild, team, account, channel/],
    ["empty selector", [ok, { agent: "a", peer: "" }], 1, /bindings\[1\].*peer must be a non-empty string, got ""/],
    ["non-string selector", [ok, ok, ok, { agent: "a", guild: 42 }], 3, /bindings\[3\] \(the 4th .*guild must be a non-empty string, got 42/],
    ["null selector", [{ agent: "a", team: null }], 0, /team must be a non-empty string, got null/],
    ["misspelt field", [{ agent: "a", peers: "u1", channel: "x" }], 0, /unknown field "peers"/],
    ["not a table", [ok, "a"], 1, /bindings\[1\].*must be a table/],
    ["missing agent", [{ peer: "u1" }], 0, /unknown agent undefined/],
    ["11th, 12th, 13th, 22nd", [...Array(21).fill(ok), { agent: "nope", peer: "x" }], 21, /the 22nd \[\[bindings\]\]/],
  ] as const)("%s", (_name, bindings, index, message) => {
    const err = fail([...bindings]);
    expect(err.index).toBe(index);
    expect(err.message).toMatch(message);
  });

  it("the 12th binding is called the 12th", () => {
    expect(fail([...Array(11).fill(ok), { agent: "a" }]).message).toMatch(/bindings\[11\] \(the 12th /);
  });

  it("an undefined default agent: index -1", () => {
    const err = fail([], ["main"], "nobody");
    expect(err.index).toBe(-1);
    expect(err.message).toMatch(/default agent "nobody" is not defined \(agents: main\)/);
    expect(fail([], [], "main").message).toMatch(/agents: none/);
  });

  it("reports the first bad binding, in config order", () => {
    expect(fail([ok, { agent: "a" }, { agent: "ghost", peer: "x" }]).index).toBe(1);
  });
});

describe("router: resolution does not scan the bindings", () => {
  /** Resolves through a Proxy and counts reads of the message's fields. */
  function reads(bindings: Binding[], m: InboundAddress): number {
    const r = compileRouter(bindings, AGENTS, "main");
    let n = 0;
    const spy = new Proxy(m, {
      get(target, key, recv) {
        n++;
        return Reflect.get(target, key, recv);
      },
    });
    r.resolve(spy);
    return n;
  }
  const mixed = (count: number): Binding[] =>
    Array.from({ length: count }, (_, i): Binding => {
      switch (i % 6) {
        case 0:
          return { agent: "a", peer: `p${i}` };
        case 1:
          return { agent: "b", peer: `p${i}`, channel: "telegram" };
        case 2:
          return { agent: "c", guild: `g${i}`, channel: "discord" };
        case 3:
          return { agent: "d", team: `t${i}` };
        case 4:
          return { agent: "e", account: `a${i}`, channel: "telegram" };
        default:
          return { agent: "f", channel: `c${i}` };
      }
    });
  const messages: InboundAddress[] = [
    msg({ peer: "p0" }),
    msg({ peer: "p1" }),
    msg({ peer: "nobody", guild: "g2", channel: "discord" }),
    msg({ peer: "nobody", team: "t3" }),
    msg({ peer: "nobody", account: "a4" }),
    msg({ peer: "nobody", channel: "c5" }),
    msg({ peer: "nobody", channel: "nowhere", guild: "g?", team: "t?" }),
  ];

  it("reads the same number of message fields with 12 and 60,000 bindings", () => {
    const small = mixed(12);
    const big = mixed(60_000);
    for (const m of messages) {
      const a = reads(small, m);
      expect(a).toBeGreaterThan(0);
      expect(reads(big, m), JSON.stringify(m)).toBe(a);
    }
  });

  it("stays bounded when thousands of bindings share one peer", () => {
    const crowd: Binding[] = Array.from({ length: 5000 }, (_, i) => ({ agent: "a", peer: "u1", channel: `c${i}`, account: `a${i % 7}` }));
    // Per tier: the tier field, then each selector of each mask under that value; plus the route.
    expect(reads(crowd, msg())).toBeLessThanOrEqual(20);
    expect(compileRouter(crowd, AGENTS, "main").resolve(msg({ channel: "c4999", account: `a${4999 % 7}` }))).toMatchObject({
      agentId: "a",
      matchedBy: "binding.peer",
    });
  });
});
