/**
 * The embedded engine's fast CBOR encoder (store/surreal/cbor-plain.ts) writes exactly the bytes
 * of the SurrealDB SDK's own codec for plain values, and declines (undefined) everything it does
 * not know, so the engine falls back to the SDK for those.
 */
import { CborCodec, DateTime, RecordId, Table, Uuid } from "surrealdb";
import { describe, expect, it } from "vitest";
import { encodePlainCbor } from "../../host/src/store/surreal/cbor-plain.js";
import { projectionVars } from "../../host/src/store/surreal/statements.js";
import { formatSessionKey } from "../../host/src/store/index.js";

const sdk = new CborCodec({});
const same = (v: unknown) => expect(Buffer.from(encodePlainCbor(v)!).toString("hex")).toBe(Buffer.from(sdk.encode(v)).toString("hex"));

describe("encodePlainCbor", () => {
  it("writes the SDK's bytes for scalars at every length and width boundary", () => {
    const numbers = [
      0,
      1,
      23,
      24,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 53,
      1_796_450_400_123,
      2 ** 53 - 1,
      -1,
      -24,
      -25,
      -256,
      -257,
      -65537,
      -(2 ** 32) - 1,
      -(2 ** 53),
    ];
    for (const n of numbers) same(n);
    for (const n of [0.5, -1.25, 1e-300, 123456.789, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0]) same(n);
    for (const v of [true, false, null, undefined]) same(v);
    for (const len of [0, 1, 23, 24, 85, 86, 255, 256, 21845, 21846, 65535, 65536, 70000]) same("x".repeat(len));
    // Multi-byte UTF-8 (2, 3 and 4 bytes per character), lone surrogates (replaced as TextEncoder does).
    for (const s of [
      "é",
      "日本語のテキスト",
      "emoji 🙂 and more 🙂",
      "\ud800 lone",
      "a\u0000b",
      "é".repeat(12),
      "é".repeat(127),
      "é".repeat(128),
      "é".repeat(200),
      "日".repeat(85),
      "日".repeat(86),
      "日".repeat(21845),
      "日".repeat(21846),
      "日".repeat(30000),
      `${"x".repeat(250)}🙂`,
    ])
      same(s);
  });

  it("writes the SDK's bytes for arrays and objects, nested, with NONE fields and null prototypes", () => {
    same([]);
    same([1, "two", [3, [4]], { five: 5 }]);
    same(Array.from({ length: 300 }, (_, i) => i * 1000));
    // biome-ignore lint/suspicious/noSparseArray: holes are encoded as NONE, as the SDK does
    same([1, , 3]);
    same({ a: 1, b: undefined, c: null, d: { e: [true, false] }, é: "ü" });
    const bare = Object.create(null) as Record<string, unknown>;
    bare.x = 1;
    bare.y = "z";
    same(bare);
    same({ id: 7, method: "query", params: ["SELECT * FROM event WHERE x = $x;", { x: "y", n: [1, 2.5] }] });
  });

  it("writes the SDK's bytes for a projection batch (the rows the journal hands the engine)", () => {
    const key = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "p-1" });
    const at = 1_780_000_000_000;
    const { after: _after, ...vars } = projectionVars(
      [
        {
          sessionKey: key,
          expectedSeq: 4,
          createdAt: at,
          updatedAt: at + 5,
          events: [
            {
              kind: "message_received",
              at,
              data: { content: "hello, wörld", channel: "ws", account: "default", peer: "p-1", idempotencyKey: "k-1", awaitsReply: true },
            },
            { kind: "turn_started", at, runId: "r-1", data: { runId: "r-1" } },
            { kind: "assistant_text", at, runId: "r-1", data: { text: "It is sunny 🙂" } },
            { kind: "usage", at, runId: "r-1", data: { inputTokens: 120, outputTokens: 20, costUsd: 0.00042 } },
            { kind: "turn_ended", at, runId: "r-1", data: { runId: "r-1", stopReason: "end_turn" } },
          ],
        },
      ],
      () => ({ lastSeq: 4, resetSeq: 2, compactionSeq: 3, compactionUpTo: 1, openTurns: 1 }),
    );
    same({ id: 12, method: "query", params: ["BEGIN; COMMIT;", vars] });
  });

  it("declines values the SDK encodes with its own tags or rules", () => {
    const declined = [
      new Date(0),
      new RecordId("event", ["k", 1]),
      new Table("event"),
      new DateTime(),
      new Uuid("0190b3a4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"),
      new Map([["a", 1]]),
      new Set([1]),
      new Uint8Array([1, 2]),
      10n,
      2 ** 60,
      -(2 ** 60),
      1e300, // an integer past 2^53: the SDK throws; so does the fallback
      Symbol("s"),
      () => 1,
      { [Symbol("marker")]: true, a: 1 },
      new (class Point {
        x = 1;
      })(),
    ];
    for (const v of declined) {
      expect(encodePlainCbor(v)).toBeUndefined();
      // Nested deep inside a plain value too: the whole request falls back.
      expect(encodePlainCbor({ params: ["q", { rows: [{ ok: 1 }, { v }] }] })).toBeUndefined();
    }
  });

  it("returns an independent copy each time (the buffer is reused between calls)", () => {
    const a = encodePlainCbor({ s: "first" })!;
    const b = encodePlainCbor({ s: "second, longer" })!;
    expect(Buffer.from(a).toString("hex")).toBe(Buffer.from(sdk.encode({ s: "first" })).toString("hex"));
    expect(Buffer.from(b).toString("hex")).toBe(Buffer.from(sdk.encode({ s: "second, longer" })).toString("hex"));
    // A request larger than the kept buffer grows it, and the next small one still encodes.
    same({ big: "y".repeat(3 * 1024 * 1024) });
    same({ small: 1 });
  });
});
