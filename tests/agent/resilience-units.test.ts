// Pure parts of the provider resilience layer: backoff math, Retry-After parsing, failure
// classification, the circuit breaker and key rotation (injected clocks, no waiting).
import { describe, expect, it } from "vitest";
import { ProviderError, ProviderStallError, retryAfterFromHeaders } from "../../host/src/agent/errors.js";
import { backoffMs, CircuitBreaker, classify, KeyRing } from "../../host/src/agent/resilience/index.js";

describe("backoffMs (full jitter)", () => {
  const policy = { baseMs: 100, maxMs: 1000 };
  it("the ceiling doubles per retry up to maxMs", () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5, 10].map((r) => backoffMs(r, policy, 0, top))).toEqual([99, 199, 399, 799, 999, 999]);
  });
  it("is uniformly spread from 0", () => {
    expect(backoffMs(3, policy, 0, () => 0)).toBe(0);
    expect(backoffMs(3, policy, 0, () => 0.5)).toBe(200);
  });
  it("never waits less than Retry-After", () => {
    expect(backoffMs(1, policy, 5000, () => 0.5)).toBe(5000);
    expect(backoffMs(4, policy, 10, () => 0.5)).toBe(400);
  });
});

describe("retryAfterFromHeaders", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("reads seconds, ms and HTTP dates from Headers or records", () => {
    expect(retryAfterFromHeaders(new Headers({ "retry-after": "3" }), now)).toBe(3000);
    expect(retryAfterFromHeaders({ "retry-after": "1.5" }, now)).toBe(1500);
    expect(retryAfterFromHeaders(new Headers({ "retry-after-ms": "250", "retry-after": "9" }), now)).toBe(250);
    expect(retryAfterFromHeaders({ "retry-after": "Thu, 01 Jan 2026 00:00:07 GMT" }, now)).toBe(7000);
  });
  it("ignores absent, negative, huge and garbage values", () => {
    expect(retryAfterFromHeaders(undefined, now)).toBeUndefined();
    expect(retryAfterFromHeaders({ "retry-after": "-1" }, now)).toBeUndefined();
    expect(retryAfterFromHeaders({ "retry-after": "soon" }, now)).toBeUndefined();
    expect(retryAfterFromHeaders({ "retry-after": "99999999" }, now)).toBeUndefined();
    expect(retryAfterFromHeaders({ "retry-after": "Wed, 31 Dec 2025 23:59:00 GMT" }, now)).toBe(0);
  });
});

describe("classify", () => {
  const http = (status: number, retryAfterMs?: number) => new ProviderError(-32000, "x", { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  it("retries what another attempt may survive", () => {
    expect(classify(http(429, 2000))).toEqual({ action: "retry", reason: "rate_limited", retryAfterMs: 2000 });
    expect(classify(http(500))).toEqual({ action: "retry", reason: "server_error" });
    expect(classify(http(503))).toEqual({ action: "retry", reason: "server_error" });
    expect(classify(http(529))).toEqual({ action: "retry", reason: "overloaded" });
    expect(classify(new ProviderError(-32001, "x", { unreachable: true }))).toEqual({ action: "retry", reason: "unreachable" });
    expect(classify(new ProviderError(-32000, "stream ended"))).toEqual({ action: "retry", reason: "stream_broken" });
  });
  it("rotates keys on 401/403, moves on without credentials or after a stall", () => {
    expect(classify(http(401))).toEqual({ action: "rotate", reason: "credentials" });
    expect(classify(http(403))).toEqual({ action: "rotate", reason: "credentials" });
    expect(classify(new ProviderError(-32001, "no API key"))).toEqual({ action: "next", reason: "no_credentials" });
    expect(classify(new ProviderStallError("openai", 1000))).toEqual({ action: "next", reason: "idle_timeout" });
  });
  it("never falls back for the request's own fault or a non-provider error", () => {
    for (const s of [400, 404, 413, 422]) expect(classify(http(s))).toEqual({ action: "fatal" });
    expect(classify(new Error("bug"))).toEqual({ action: "fatal" });
  });
});

describe("CircuitBreaker", () => {
  it("opens after N consecutive failures, probes once after the cooldown, closes on success", () => {
    let t = 0;
    const b = new CircuitBreaker({ failures: 3, cooldownMs: 1000 }, () => t);
    expect([b.failure(), b.failure()]).toEqual([false, false]);
    b.success();
    expect([b.failure(), b.failure(), b.failure()]).toEqual([false, false, true]);
    expect(b.state).toBe("open");
    t = 999;
    expect(b.allow()).toBe(false);
    t = 1000;
    expect(b.allow()).toBe(true);
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(false); // one probe at a time
    b.success();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
  });
  it("a failed probe re-opens for a full cooldown; a neutral one frees the slot", () => {
    let t = 0;
    const b = new CircuitBreaker({ failures: 1, cooldownMs: 100 }, () => t);
    expect(b.failure()).toBe(true);
    t = 100;
    expect(b.allow()).toBe(true);
    expect(b.failure()).toBe(true);
    t = 199;
    expect(b.allow()).toBe(false);
    t = 200;
    expect(b.allow()).toBe(true);
    b.neutral();
    expect(b.allow()).toBe(true);
  });
  it("failures 0 never opens", () => {
    const b = new CircuitBreaker({ failures: 0, cooldownMs: 100 });
    for (let i = 0; i < 50; i++) b.failure();
    expect(b.allow()).toBe(true);
  });
});

describe("KeyRing", () => {
  it("sticks to a key, moves past a resting one, and names the soonest when all rest", () => {
    let t = 0;
    const k = new KeyRing(3, () => t);
    expect(k.pick()).toEqual({ index: 0, readyInMs: 0 });
    k.cool(0, 500);
    expect(k.pick()).toEqual({ index: 1, readyInMs: 0 });
    expect(k.pick()).toEqual({ index: 1, readyInMs: 0 });
    k.cool(1, 300);
    k.cool(2, 800);
    expect(k.pick()).toEqual({ index: 1, readyInMs: 300 });
    t = 300;
    expect(k.pick()).toEqual({ index: 1, readyInMs: 0 }); // rested: the current key again
    k.cool(1, 1000);
    t = 500;
    expect(k.pick()).toEqual({ index: 0, readyInMs: 0 });
  });
});

describe("TurnRecorder and failover", () => {
  it("a discarding failover drops the call's text and tool calls, keeps earlier calls, and lands on the usage event", async () => {
    const { TurnRecorder } = await import("../../host/src/agent/journal.js");
    const r = new TurnRecorder("run");
    r.record({ type: "tool_use", data: { id: "t0", name: "calculator", input: {} } });
    r.record({ type: "usage", data: { inputTokens: 1, outputTokens: 1 } });
    r.record({ type: "tool_result", data: { toolUseId: "t0", content: "2", isError: false } });
    r.record({ type: "text", data: { delta: "half" } });
    r.record({ type: "tool_use", data: { id: "t1", name: "calculator", input: {} } });
    r.record({ type: "failover", data: { from: "anthropic/a", to: "openai/b", reason: "stream_broken", discard: true } });
    r.record({ type: "text", data: { delta: "whole" } });
    r.record({ type: "usage", data: { inputTokens: 2, outputTokens: 3 } });
    const events = r.finish({ kind: "turn_ended", stopReason: "end_turn" });
    expect(events.map((e) => e.kind)).toEqual(["tool_use", "usage", "tool_result", "assistant_text", "usage", "turn_ended"]);
    expect(events[3]!.data).toEqual({ text: "whole" });
    expect(events[4]!.data).toEqual({
      inputTokens: 2,
      outputTokens: 3,
      failover: [{ from: "anthropic/a", to: "openai/b", reason: "stream_broken", discard: true }],
    });
  });
});
