// The connection host functions (ws_*, timer_*) in a real sandbox, with the hostile-conn fixture:
// they are effects of the call (returned with its outcome, secrets substituted), bounded per call,
// refused without the `http` grant or outside connect/on_frame, and dropped when the call fails.
import { afterEach, describe, expect, it } from "vitest";
import { standardMsgpack } from "../../../host/src/protocol/msgpack.mjs";
import type { SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { fixturePool } from "./support.js";

const pools: SandboxPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

const URL_OK = "ws://127.0.0.1:9/gateway";
const pack = (v: unknown) => standardMsgpack.pack(v);

async function pool(grant: Record<string, unknown>): Promise<SandboxPool> {
  const p = await fixturePool("hostile-conn", { grant: grant as never, limits: { timeoutMs: 10_000, memoryBytes: 64 * 1024 * 1024 } });
  pools.push(p);
  return p;
}

const frame = (text: string) => pack({ account: "default", kind: "text", data: text });

describe("connection host functions", () => {
  it("ws_open in connect is an effect of the call (the host opens once it returns)", async () => {
    const p = await pool({ http: { hosts: ["127.0.0.1"] }, config: { url: URL_OK } });
    const out = await p.call("connect", pack({ account: "default", attempt: 0 }));
    expect(out.ok).toBe(true);
    expect(out.ok && out.effects).toEqual([{ op: "open", url: URL_OK, headers: {} }]);
  });

  it("ws_open is refused without the http grant, for a host not granted, and for plain ws: off loopback", async () => {
    for (const [grant, url] of [
      [{ config: { url: URL_OK } }, URL_OK],
      [{ http: { hosts: ["127.0.0.1"] }, config: { url: "ws://127.0.0.2:9/" } }, "ws://127.0.0.2:9/"],
      [{ http: { hosts: ["example.com"] }, config: { url: "ws://example.com/" } }, "ws://example.com/"],
      [{ http: { hosts: ["127.0.0.1"] }, config: { url: "http://127.0.0.1:9/" } }, "http://127.0.0.1:9/"],
    ] as const) {
      const p = await pool(grant);
      const out = await p.call("connect", pack({ account: "default", attempt: 0 }));
      expect(out.ok, url).toBe(true);
      expect(out.ok && out.effects, url).toBeUndefined();
    }
  });

  it("a flood is cut at 256 effects per call; 10,000 timers at 16", async () => {
    const p = await pool({ http: { hosts: ["127.0.0.1"] }, config: { url: URL_OK } });
    const flood = await p.call("on_frame", frame("flood"));
    expect(flood.ok).toBe(true);
    expect(flood.ok && flood.effects?.length).toBe(256);
    expect(flood.ok && flood.effects?.every((e) => e.op === "send" && e.data === "flood")).toBe(true);
    const timers = await p.call("on_frame", frame("timers10k"));
    if (!timers.ok) console.log(timers.kind, timers.message);
    expect(timers.ok).toBe(true);
    expect(timers.ok && timers.effects?.length).toBe(16);
  });

  it("a call that traps or never returns leaves no effects", async () => {
    const p = await fixturePool("hostile-conn", { grant: { http: { hosts: ["127.0.0.1"] }, config: { url: URL_OK } } as never, limits: { timeoutMs: 500 } });
    pools.push(p);
    const trap = await p.call("on_frame", frame("trap"));
    expect(trap.ok).toBe(false);
    const loop = await p.call("on_frame", frame("loop"));
    expect(loop.ok ? "ok" : loop.kind).toBe("timeout");
    // The next call runs on a fresh instance and works.
    const again = await p.call("on_frame", frame("timers"));
    expect(again.ok && again.effects?.length).toBe(16);
  });

  it("outside connect / on_frame the connection functions are refused (no effects)", async () => {
    const p = await pool({ http: { hosts: ["127.0.0.1"] }, config: { url: URL_OK } });
    // `send` of the fixture does not call them; a timer call from `poll`-like exports would be refused:
    // the fixture's connect is the only export calling ws_open, and it is refused from on_frame.
    const out = await p.call("on_frame", pack({ account: "default", kind: "open" }));
    expect(out.ok && out.effects).toBeUndefined();
    const sent = await p.call("send", pack({ account: "default", peer: "p", content: "x" }));
    expect(sent.ok && sent.effects).toBeUndefined();
  });
});
