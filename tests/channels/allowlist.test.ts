import { describe, expect, it } from "vitest";
import { AllowlistError, compileAllowlist, type AllowSubject } from "../../host/src/channels/allowlist.js";

const alice: AllowSubject = { peer: "alice" };
const group: AllowSubject = { peer: "-1001234", guild: "G42" };
const slack: AllowSubject = { peer: "C0123", team: "T0ABC" };
const everyone = [alice, group, slack, { peer: "" }, { peer: "x", guild: "", team: "" }];

describe("channel allowlists", () => {
  // [entries, subject, expected]
  const table: [string[], AllowSubject, boolean][] = [
    [[], alice, false],
    [[], group, false],
    [["alice"], alice, true],
    [["alice"], { peer: "alicea" }, false],
    [["alice"], { peer: "Alice" }, false],
    [["ali*"], alice, true],
    [["ali*"], { peer: "al" }, false],
    [["-100*"], group, true],
    [["-100*"], alice, false],
    [["guild:G42"], group, true],
    [["guild:G42"], { peer: "-1001234", guild: "G43" }, false],
    [["guild:G42"], { peer: "G42" }, false], // a guild entry never matches a peer id
    [["G42"], group, false], // nor a peer entry a guild id
    [["guild:G*"], group, true],
    [["guild:*"], group, true],
    [["guild:*"], alice, false],
    [["team:T0ABC"], slack, true],
    [["team:T0*"], slack, true],
    [["team:T1*"], slack, false],
    [["team:T0ABC"], { peer: "C0123", guild: "T0ABC" }, false],
    [["bob", "team:T0ABC"], alice, false],
    [["bob", "alice"], alice, true],
    [["*"], alice, true],
    [["*"], { peer: "anyone at all" }, true],
  ];
  it.each(table)("%j admits %j: %s", (entries, subject, expected) => {
    expect(compileAllowlist(entries, "test")(subject)).toBe(expected);
  });

  it("is closed by default and open only with an explicit *", () => {
    const closed = compileAllowlist([], "test");
    const open = compileAllowlist(["*"], "test");
    for (const s of everyone) {
      expect(closed(s)).toBe(false);
      expect(open(s)).toBe(true);
    }
  });

  it("never matches an empty guild or team with a prefix", () => {
    expect(compileAllowlist(["guild:*", "team:*"], "test")({ peer: "x", guild: "", team: "" })).toBe(false);
  });

  it.each([
    ["", "is empty"],
    ["guild:", 'has no guild id after "guild:"'],
    ["team:", 'has no team id after "team:"'],
    ["a*b", '"*" is only allowed at the end'],
    ["guild:*x", '"*" is only allowed at the end'],
    ["**", '"*" is only allowed at the end'],
    [" alice", "leading or trailing whitespace"],
  ])("rejects %j naming the channel and entry", (entry, reason) => {
    let err: unknown;
    try {
      compileAllowlist(["ok", entry], "telegram");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AllowlistError);
    expect((err as Error).message).toContain("[channels.telegram]");
    expect((err as Error).message).toContain(JSON.stringify(entry));
    expect((err as Error).message).toContain(reason);
  });
});
