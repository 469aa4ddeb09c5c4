// The webhook intake's token buckets and in-flight budget (pure logic, injected clock), and the
// transports' side of the contract: `release` runs exactly once per admitted request, whether it
// is answered, over the limit, or aborted mid-body (real uWS and node:http servers, real clients).
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressBuckets, InFlightBudget } from "../../host/src/gateway/webhook-intake.js";
import { createUwsTransport, loadUws } from "../../host/src/gateway/transport-uws.js";
import { createWsTransport } from "../../host/src/gateway/transport-ws.js";
import type { HttpHandler, Transport } from "../../host/src/gateway/types.js";

describe("AddressBuckets", () => {
  it("allows a burst, then refuses with the seconds until the next token, and refills with time", () => {
    let now = 0;
    const b = new AddressBuckets(2, 3, 100, () => now);
    expect([b.take("a"), b.take("a"), b.take("a")]).toEqual([0, 0, 0]);
    expect(b.take("a")).toBe(1);
    expect(b.take("b")).toBe(0); // another address has its own bucket
    now += 500; // one token back at 2 per second
    expect(b.take("a")).toBe(0);
    expect(b.take("a")).toBe(1);
  });

  it("names a wait of several seconds at a slow rate; rate 0 disables the limit", () => {
    let now = 0;
    const slow = new AddressBuckets(0.25, 1, 100, () => now);
    expect(slow.take("a")).toBe(0);
    expect(slow.take("a")).toBe(4);
    const off = new AddressBuckets(0, 1);
    for (let i = 0; i < 100; i++) expect(off.take("a")).toBe(0);
  });

  it("keeps at most maxAddresses buckets, forgetting the least recently seen", () => {
    const now = 0;
    const b = new AddressBuckets(1, 1, 2, () => now);
    b.take("a");
    b.take("b");
    b.take("a"); // a is now the most recent (and empty)
    b.take("c"); // forgets b
    expect(b.take("a")).toBe(1);
    expect(b.take("b")).toBe(0); // a new, full bucket
  });
});

describe("InFlightBudget", () => {
  it("caps requests and bytes, keeps the signed reserve from unsigned requests, and releases once", () => {
    const budget = new InFlightBudget({ maxInFlight: 4, maxInFlightBytes: 1000, unsignedShare: 0.5, perAddressInFlight: 10 });
    const u1 = budget.reserve(400, false, "a");
    expect(typeof u1).toBe("function");
    expect(budget.reserve(200, false, "b")).toBe("budget"); // 600 > the unsigned half (500)
    const s1 = budget.reserve(500, true, "c");
    expect(typeof s1).toBe("function");
    expect(budget.reserve(200, true, "d")).toBe("budget"); // 1100 > 1000
    expect(budget.stats()).toEqual({ requests: 2, bytes: 900 });
    (u1 as () => void)();
    (u1 as () => void)(); // idempotent
    expect(budget.stats()).toEqual({ requests: 1, bytes: 500 });
    expect(typeof budget.reserve(500, false, "a")).toBe("function");
    (s1 as () => void)();
    expect(typeof budget.reserve(0, true, "e")).toBe("function");
    expect(typeof budget.reserve(0, true, "e")).toBe("function");
    expect(typeof budget.reserve(0, true, "e")).toBe("function");
    expect(budget.reserve(0, true, "f")).toBe("budget"); // 4 requests in flight
  });

  it("lets one address hold only its share of requests, and gives it back on release", () => {
    const budget = new InFlightBudget({ maxInFlight: 100, maxInFlightBytes: 1 << 20, unsignedShare: 1, perAddressInFlight: 2 });
    const a1 = budget.reserve(10, true, "a") as () => void;
    budget.reserve(10, true, "a");
    expect(budget.reserve(10, true, "a")).toBe("address");
    expect(typeof budget.reserve(10, true, "b")).toBe("function");
    a1();
    expect(typeof budget.reserve(10, true, "a")).toBe("function");
  });
});

const transports: [string, () => Transport | null][] = [
  [
    "uws",
    () => {
      const l = loadUws();
      return l.ok ? createUwsTransport(l.uws, 16 * 1024 * 1024) : null;
    },
  ],
  ["ws", () => createWsTransport()],
];

describe.each(transports)("route release on the %s transport", (_name, make) => {
  let transport: Transport | null;
  let port = 0;
  let released = 0;
  let handled = 0;
  let answer: () => void = () => {};

  beforeAll(async () => {
    transport = make();
    if (transport === null) return;
    const http: HttpHandler = {
      route: (head) => ({ maxBodyBytes: 1024, release: () => released++, ...(head.path === "/slow" ? { bodyTimeoutMs: 300 } : {}) }),
      async handle() {
        handled++;
        await new Promise<void>((r) => (answer = r));
        return { status: 200, headers: {}, body: "ok" };
      },
    };
    port = await transport.listen(
      { host: "127.0.0.1", port: 0, maxPayloadBytes: 1 << 20 },
      { authorize: () => ({ ok: false, status: 401, error: "no WebSocket here" }), open() {}, message() {}, close() {}, http },
    );
  });
  afterAll(async () => {
    await transport?.close();
  });

  const until = async (cond: () => boolean) => {
    // generous: the machine may be loaded (a timing bound here only makes the test flaky)
    for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(cond()).toBe(true);
  };

  it("releases after the answer settles, not before", async ({ skip }) => {
    if (transport === null) return skip();
    const before = released;
    const res = new Promise<number>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/x", method: "POST", agent: false }, (r) => {
        r.resume();
        r.on("end", () => resolve(r.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end("body");
    });
    await until(() => handled > 0);
    expect(released).toBe(before); // the handler still holds the body
    answer();
    expect(await res).toBe(200);
    await until(() => released === before + 1);
  });

  it("releases once when the client aborts mid-body, and once on 413", async ({ skip }) => {
    if (transport === null) return skip();
    const before = released;
    const req = request({ host: "127.0.0.1", port, path: "/x", method: "POST", headers: { "content-length": "1000" }, agent: false });
    req.on("error", () => {});
    req.write(Buffer.alloc(100));
    await new Promise((r) => setTimeout(r, 50));
    req.destroy();
    await until(() => released === before + 1);
    const big = request({ host: "127.0.0.1", port, path: "/x", method: "POST", headers: { "content-length": "5000" }, agent: false });
    const status = await new Promise<number>((resolve) => {
      big.on("response", (r) => resolve(r.statusCode ?? 0));
      big.on("error", () => resolve(-1));
      big.end(Buffer.alloc(5000));
    });
    expect([413, -1]).toContain(status);
    await until(() => released === before + 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(released).toBe(before + 2);
  });

  it("answers 408 and releases once when the body does not arrive within bodyTimeoutMs", async ({ skip }) => {
    if (transport === null) return skip();
    const before = released;
    const handledBefore = handled;
    const slow = request({ host: "127.0.0.1", port, path: "/slow", method: "POST", headers: { "content-length": "1000" }, agent: false });
    const reply = new Promise<{ status: number; text: string }>((resolve) => {
      slow.on("response", (r) => {
        const parts: Buffer[] = [];
        r.on("data", (c: Buffer) => parts.push(c));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(parts).toString("utf8") }));
      });
      slow.on("error", (err) => resolve({ status: -1, text: err.message }));
    });
    slow.write(Buffer.alloc(100)); // and never the rest
    const r = await reply;
    expect(r.status).toBe(408);
    expect(JSON.parse(r.text).error).toBe("request body not received within 300 ms");
    await until(() => released === before + 1);
    expect(handled).toBe(handledBefore);
    slow.destroy();
  });
});
