// Unit tests of the group logic (issue 18): mention gating, per-sender rates, the pairing store
// (file, mode, cross-process visibility), the gate that joins them, the new parsed-message
// fields, and image type sniffing. End to end through the real gateway: tests/e2e/channel-groups.test.ts.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ChannelGate } from "../../host/src/channels/gate.js";
import { passesMentionGate, rateReply, SenderRateLimiter } from "../../host/src/channels/groups.js";
import { oversizedReply, sniffImageType } from "../../host/src/channels/media.js";
import { normalizeInbound } from "../../host/src/channels/messages.js";
import { normalizeCode, PAIRING_CODE_TTL_MS, PairingError, PairingStore } from "../../host/src/channels/pairing.js";
import type { InboundMessage } from "../../host/src/channels/types.js";
import { toChannelGroups } from "../../host/src/config/channel-groups.js";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "exoclaw-groups-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const msg = (over: Partial<InboundMessage> = {}): InboundMessage => ({
  account: "default",
  peer: "-100",
  peerKind: "group",
  content: "hello",
  attachments: [],
  platformMessageId: "m1",
  ...over,
});

describe("mention gating", () => {
  it("lets direct messages through, and in groups only mentions, replies to the bot and commands", () => {
    expect(passesMentionGate(msg({ peerKind: "direct" }), ["/"])).toBe(true);
    expect(passesMentionGate(msg(), ["/"])).toBe(false);
    expect(passesMentionGate(msg({ peerKind: "channel" }), ["/"])).toBe(false);
    expect(passesMentionGate(msg({ mentionsBot: true }), ["/"])).toBe(true);
    expect(passesMentionGate(msg({ replyToBot: true }), ["/"])).toBe(true);
    expect(passesMentionGate(msg({ content: "  /help" }), ["/"])).toBe(true);
    expect(passesMentionGate(msg({ content: "!help" }), ["/"])).toBe(false);
    expect(passesMentionGate(msg({ content: "!help" }), ["/", "!"])).toBe(true);
  });
});

describe("per-sender rate", () => {
  it("admits `messages` per window, refuses the next with one notice per window, and forgets old arrivals", () => {
    const l = new SenderRateLimiter();
    const rate = { messages: 2, perS: 10 };
    expect(l.take("a", rate, 0)).toEqual({ ok: true });
    expect(l.take("a", rate, 1000)).toEqual({ ok: true });
    expect(l.take("a", rate, 2000)).toEqual({ ok: false, notify: true });
    expect(l.take("a", rate, 3000)).toEqual({ ok: false, notify: false });
    expect(l.take("b", rate, 3000)).toEqual({ ok: true }); // another sender
    expect(l.take("a", rate, 10_000)).toEqual({ ok: true }); // the arrival at 0 left the window
    expect(l.take("a", rate, 10_500)).toEqual({ ok: false, notify: false }); // noticed less than a window ago
  });

  it("a redelivered message id admitted in the window is not counted twice", () => {
    const l = new SenderRateLimiter();
    const rate = { messages: 2, perS: 60 };
    expect(l.take("a", rate, 0, "m1")).toEqual({ ok: true });
    expect(l.take("a", rate, 10, "m1")).toEqual({ ok: true });
    expect(l.take("a", rate, 20, "m2")).toEqual({ ok: true });
    expect(l.take("a", rate, 30, "m3")).toEqual({ ok: false, notify: true });
  });

  it("keeps at most maxKeys senders", () => {
    const l = new SenderRateLimiter(3);
    for (let i = 0; i < 10; i++) l.take(`s${i}`, { messages: 1, perS: 60 }, i);
    expect(l.size).toBe(3);
  });

  it("names the limit in the reply", () => {
    expect(rateReply({ messages: 5, perS: 60 })).toContain("the limit is 5 messages per 60 seconds");
    expect(rateReply({ messages: 1, perS: 1 })).toContain("the limit is 1 message per second");
  });
});

describe("pairing store", () => {
  const who = { channel: "telegram", account: "default", peer: "8001", senderName: "Eve" };

  it("gives a stranger one code, reminds at most every ten minutes, and approves it into a 0600 file", () => {
    const dir = tmp();
    const s = PairingStore.inStateDir(dir);
    const a = s.request(who, 1000);
    expect(a.send).toBe(true);
    expect(a.code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(s.request(who, 2000)).toEqual({ code: a.code, send: false });
    expect(s.request(who, 1000 + 10 * 60 * 1000)).toEqual({ code: a.code, send: true });
    expect(s.isApproved(who)).toBe(false);
    const approved = s.approve(a.code.toLowerCase().replace("-", " "), 5000);
    expect(approved).toMatchObject({ channel: "telegram", account: "default", peer: "8001", code: a.code });
    expect(s.isApproved(who)).toBe(true);
    expect(s.isApproved({ ...who, account: "other" })).toBe(false);
    expect(statSync(join(dir, "pairing.json")).mode & 0o777).toBe(0o600);
    expect(() => s.approve(a.code)).toThrow(PairingError);
  });

  it("an approval made by one process is seen by another on the same state directory at its next lookup, and after a restart", () => {
    const dir = tmp();
    const gatewayA = PairingStore.inStateDir(dir);
    const gatewayB = PairingStore.inStateDir(dir);
    const { code } = gatewayA.request(who);
    expect(gatewayB.isApproved(who)).toBe(false);
    gatewayB.approve(code); // B knows A's code: it re-reads the file
    expect(gatewayA.isApproved(who)).toBe(true);
    expect(PairingStore.inStateDir(dir).isApproved(who)).toBe(true);
  });

  it("deny silences a pending code (no new code for that stranger) and revokes an approval", () => {
    const s = PairingStore.inStateDir(tmp());
    const { code } = s.request(who, 0);
    expect(s.deny(code, 10)).toEqual({ code, revoked: false });
    expect(s.request(who, 20 * 60 * 1000)).toEqual({ code, send: false });
    expect(s.list(20 * 60 * 1000).pending[0]).toMatchObject({ code, denied: true });
    const other = { ...who, peer: "8002" };
    const c2 = s.request(other).code;
    s.approve(c2);
    expect(s.deny(c2)).toEqual({ code: c2, revoked: true });
    expect(s.isApproved(other)).toBe(false);
  });

  it("codes expire after an hour; malformed codes are refused; a corrupt file reads as empty", () => {
    const dir = tmp();
    const s = PairingStore.inStateDir(dir);
    const { code } = s.request(who, 0);
    expect(() => s.approve(code, PAIRING_CODE_TTL_MS + 1)).toThrow(/no pending pairing code/);
    expect(() => normalizeCode("ABC")).toThrow(PairingError);
    expect(() => normalizeCode("ABCD-EF0O")).toThrow(PairingError); // 0 and O are not in the alphabet
    writeFileSync(join(dir, "pairing.json"), "{not json");
    expect(PairingStore.inStateDir(dir).list()).toEqual({ pending: [], approved: [] });
    expect(readFileSync(join(dir, "pairing.json"), "utf8")).toBe("{not json");
  });
});

describe("ChannelGate", () => {
  const groups = toChannelGroups({ mention_only: true, rate: { messages: 1, per_s: 60 }, pairing: true, per_account: { ops: { mention_only: false } } });

  it("applies mention_only per account, the rate after it, and pairing to direct strangers only", async () => {
    const pairing = PairingStore.inStateDir(tmp());
    const gate = new ChannelGate({ pairing });
    const ch = { name: "telegram", groups };
    expect(await gate.check(ch, msg({ sender: "u1" }), 0)).toEqual({ kind: "drop", reason: "not_mentioned" });
    expect(await gate.check(ch, msg({ sender: "u1", mentionsBot: true, platformMessageId: "a" }), 0)).toEqual({ kind: "pass" });
    expect(await gate.check(ch, msg({ sender: "u1", mentionsBot: true, platformMessageId: "a" }), 1)).toEqual({ kind: "pass" }); // a redelivery
    expect(await gate.check(ch, msg({ sender: "u1", mentionsBot: true, platformMessageId: "b" }), 1)).toMatchObject({ kind: "refuse", reason: "rate_limited" });
    expect(await gate.check(ch, msg({ sender: "u2", account: "ops" }), 2)).toEqual({ kind: "pass" }); // no mention_only on "ops"
    expect(await gate.pairingAnswer(ch, msg())).toBeUndefined(); // a group is not paired
    const dm = msg({ peerKind: "direct", peer: "42" });
    const ans = (await gate.pairingAnswer(ch, dm))!;
    expect(ans.reply).toContain(ans.code);
    expect(await gate.paired(ch, dm)).toBe(false);
    pairing.approve(ans.code);
    expect(await gate.paired(ch, dm)).toBe(true);
    expect(await new ChannelGate({ pairing }).paired({ name: "telegram", groups: toChannelGroups({}) }, dm)).toBe(false); // pairing off
  });
});

describe("parsed message fields", () => {
  it("accepts senderName (one bounded line), mentionsBot, replyToBot and an attachment fetch request", () => {
    const m = normalizeInbound(
      {
        peer: "-1",
        peerKind: "group",
        sender: "7",
        senderName: "Al\nice\u0000" + "x".repeat(300),
        mentionsBot: true,
        replyToBot: false,
        content: "hi",
        platformMessageId: "1",
        attachments: [{ kind: "image", fetch: { url: "https://api.example/file/bot{{secret:T}}/a.jpg", headers: { Authorization: "Bearer {{secret:T}}" } } }],
      },
      "default",
    ) as InboundMessage;
    expect(m.senderName).toMatch(/^Al ice x+$/);
    expect(m.senderName!.length).toBe(128);
    expect(m.mentionsBot).toBe(true);
    expect(m.replyToBot).toBeUndefined();
    expect(m.attachments[0]!.fetch).toEqual({ url: "https://api.example/file/bot{{secret:T}}/a.jpg", headers: { authorization: "Bearer {{secret:T}}" } });
  });

  it("refuses malformed ones", () => {
    const base = { peer: "-1", content: "", platformMessageId: "1" };
    expect(normalizeInbound({ ...base, mentionsBot: "yes" }, "d")).toBe("field 'mentionsBot' is not a boolean");
    expect(normalizeInbound({ ...base, senderName: 5 }, "d")).toBe("field 'senderName' is not a string");
    expect(normalizeInbound({ ...base, attachments: [{ kind: "image", fetch: { url: "file:///etc/passwd" } }] }, "d")).toMatch(/fetch.url is not an http/);
    expect(normalizeInbound({ ...base, attachments: [{ kind: "image", fetch: { url: "https://x/", headers: { a: "b\r\nc: d" } } }] }, "d")).toMatch(
      /not a valid header/,
    );
  });
});

describe("media", () => {
  it("sniffs the four image types from their signatures and names the limit", () => {
    expect(sniffImageType(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("image/jpeg");
    expect(sniffImageType(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe("image/png");
    expect(sniffImageType(Buffer.from("GIF89a"))).toBe("image/gif");
    expect(sniffImageType(Buffer.from("RIFF\0\0\0\0WEBPVP8 "))).toBe("image/webp");
    expect(sniffImageType(Buffer.from("<svg>"))).toBeUndefined();
    expect(oversizedReply(4096, 5000)).toContain("the limit is 4096 bytes");
  });
});
