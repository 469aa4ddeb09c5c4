import { describe, expect, it } from "vitest";
import { compileRouter, RouterConfigError, sessionKey } from "../../host/src/router/index.js";

const base = { channel: "telegram", account: "bot1", peer: "u1" };

describe("router", () => {
  it("falls back to the default agent", () => {
    const r = compileRouter([], ["main"], "main");
    expect(r.resolve(base)).toEqual({ agentId: "main", sessionKey: "agent:main:telegram:bot1:u1", matchedBy: "default" });
  });

  it("prefers the most specific tier: peer > guild > team > account > channel", () => {
    const agents = ["main", "byChannel", "byAccount", "byTeam", "byGuild", "byPeer"];
    const bindings = [
      { agent: "byChannel", channel: "telegram" },
      { agent: "byAccount", account: "bot1" },
      { agent: "byTeam", team: "t1" },
      { agent: "byGuild", guild: "g1" },
      { agent: "byPeer", peer: "u1" },
    ];
    const r = compileRouter(bindings, agents, "main");
    expect(r.resolve({ ...base, guild: "g1", team: "t1" })).toMatchObject({ agentId: "byPeer", matchedBy: "binding.peer" });
    expect(r.resolve({ ...base, peer: "u2", guild: "g1", team: "t1" })).toMatchObject({ agentId: "byGuild", matchedBy: "binding.guild" });
    expect(r.resolve({ ...base, peer: "u2", team: "t1" })).toMatchObject({ agentId: "byTeam", matchedBy: "binding.team" });
    expect(r.resolve({ ...base, peer: "u2" })).toMatchObject({ agentId: "byAccount", matchedBy: "binding.account" });
    expect(r.resolve({ ...base, account: "bot2", peer: "u2" })).toMatchObject({ agentId: "byChannel", matchedBy: "binding.channel" });
    expect(r.resolve({ channel: "ws", account: "x", peer: "y" })).toMatchObject({ agentId: "main", matchedBy: "default" });
  });

  it("needs every selector of a binding to match, and the first in config order wins a tier", () => {
    const r = compileRouter(
      [
        { agent: "a", peer: "u1", channel: "slack" },
        { agent: "b", peer: "u1" },
        { agent: "c", peer: "u1" },
      ],
      ["main", "a", "b", "c"],
      "main",
    );
    expect(r.resolve(base).agentId).toBe("b");
    expect(r.resolve({ ...base, channel: "slack" }).agentId).toBe("a");
  });

  it("rejects unknown agents and selector-less bindings at compile time", () => {
    expect(() => compileRouter([{ agent: "ghost", peer: "x" }], ["main"], "main")).toThrow(RouterConfigError);
    expect(() => compileRouter([{ agent: "main" }], ["main"], "main")).toThrow(/at least one of/);
    expect(() => compileRouter([], ["main"], "nobody")).toThrow(/default agent/);
  });

  it("escapes session key parts so ids cannot forge another key", () => {
    expect(sessionKey("main", "ws", "a:b", "c")).not.toBe(sessionKey("main", "ws", "a", "b:c"));
    expect(sessionKey("main", "ws", "a%3Ab", "c")).not.toBe(sessionKey("main", "ws", "a:b", "c"));
    expect(sessionKey("main", "ws", "a:b", "c")).toBe("agent:main:ws:a%3Ab:c");
    // guild and team do not split a peer's session
    const r = compileRouter([], ["main"], "main");
    expect(r.resolve({ ...base, guild: "g1" }).sessionKey).toBe(r.resolve(base).sessionKey);
  });
});
