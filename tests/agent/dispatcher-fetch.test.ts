// The undici-Dispatcher fetch the Anthropic and OpenAI SDKs are given (agent/providers/dispatcher-fetch.ts),
// against the provider emulator: it streams what the global fetch streams, an abort mid-stream
// closes the connection, a refused connection and a non-200 status reach the SDK as they do
// through the global fetch (APIConnectionError with the ECONNREFUSED cause; APIError with the status).
import { createServer, type AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDispatcherFetch } from "../../host/src/agent/providers/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

let emulator: Emulator;
let dispatcherFetch: typeof fetch;

beforeAll(async () => {
  emulator = await startEmulator();
  dispatcherFetch = await loadDispatcherFetch();
});
afterAll(async () => {
  await emulator?.close();
});

const anthropic = (f?: typeof fetch, baseURL = emulator.url) =>
  new Anthropic({ apiKey: "sk-test", baseURL, maxRetries: 0, timeout: 10_000, ...(f ? { fetch: f } : {}) });

async function anthropicEvents(sdk: Anthropic, text: string): Promise<string[]> {
  const stream = await sdk.messages.create({ model: "emulator", max_tokens: 100, messages: [{ role: "user", content: text }], stream: true });
  const out: string[] = [];
  for await (const ev of stream) {
    out.push(ev.type === "content_block_delta" && ev.delta.type === "text_delta" ? `text:${ev.delta.text}` : ev.type);
  }
  return out;
}

async function refusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

describe("the dispatcher fetch", () => {
  it("streams the same Anthropic events as the global fetch", async () => {
    const viaDispatcher = await anthropicEvents(anthropic(dispatcherFetch), "hello there");
    const viaFetch = await anthropicEvents(anthropic(), "hello there");
    expect(viaDispatcher).toEqual(viaFetch);
    expect(viaDispatcher).toContain("message_stop");
    expect(viaDispatcher.some((e) => e.startsWith("text:"))).toBe(true);
  });

  it("streams OpenAI chunks the same as the global fetch", async () => {
    const run = async (f?: typeof fetch) => {
      const sdk = new OpenAI({ apiKey: "sk-test", baseURL: `${emulator.url}/v1`, maxRetries: 0, ...(f ? { fetch: f } : {}) });
      const stream = await sdk.chat.completions.create({ model: "emulator", messages: [{ role: "user", content: "hello there" }], stream: true });
      let text = "";
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { text, finish };
    };
    const viaDispatcher = await run(dispatcherFetch);
    expect(viaDispatcher).toEqual(await run());
    expect(viaDispatcher.text.length).toBeGreaterThan(0);
    expect(viaDispatcher.finish).toBe("stop");
  });

  it("sends the request body and every header the SDK built", async () => {
    emulator.reset();
    await anthropicEvents(anthropic(), "check the wire");
    await anthropicEvents(anthropic(dispatcherFetch), "check the wire");
    const [viaFetch, viaDispatcher] = emulator.requests;
    expect(viaDispatcher?.path).toBe("/v1/messages");
    expect(viaDispatcher?.body).toEqual(viaFetch?.body);
    expect(viaDispatcher?.body.messages[0].content).toBe("check the wire");
    // What WHATWG fetch adds of its own (compression, CORS mode, language) is not the SDK's.
    const own = new Set(["accept-encoding", "accept-language", "sec-fetch-mode", "connection", "host"]);
    const sdkHeaders = Object.fromEntries(Object.entries(viaFetch?.headers ?? {}).filter(([k]) => !own.has(k)));
    expect(Object.keys(sdkHeaders)).toContain("content-type");
    for (const [k, v] of Object.entries(sdkHeaders)) expect([k, viaDispatcher?.headers[k]]).toEqual([k, v]);
  });

  it("an abort mid-stream ends the SDK's stream and closes the connection", async () => {
    emulator.reset();
    const abort = new AbortController();
    const stream = await anthropic(dispatcherFetch).messages.create(
      { model: "emulator", max_tokens: 100, messages: [{ role: "user", content: "STALL_AFTER_HEADERS mid-stream" }], stream: true },
      { signal: abort.signal },
    );
    const seen: string[] = [];
    const read = (async () => {
      for await (const ev of stream) {
        seen.push(ev.type);
        if (ev.type === "message_start") setTimeout(() => abort.abort(), 20);
      }
    })();
    // The SDK ends an aborted stream quietly or with its abort error; either way it ends.
    await read.catch((err: Error) => expect(err.name).toMatch(/Abort/));
    expect(seen[0]).toBe("message_start");
    expect(seen).not.toContain("message_stop");
    await emulator.waitForAbandoned((r) => r.body?.messages?.[0]?.content === "STALL_AFTER_HEADERS mid-stream", 5000);
  });

  it("an abort mid-body errors the raw body with an AbortError", async () => {
    const abort = new AbortController();
    const res = await dispatcherFetch(`${emulator.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-test" },
      body: JSON.stringify({ model: "emulator", max_tokens: 10, stream: true, messages: [{ role: "user", content: "STALL_AFTER_HEADERS raw" }] }),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const chunks = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    expect((await chunks.next()).done).toBe(false);
    abort.abort();
    await expect(chunks.next()).rejects.toMatchObject({ name: "AbortError" });
  });

  it("a signal aborted before the call rejects with an AbortError and sends nothing", async () => {
    emulator.reset();
    const abort = new AbortController();
    abort.abort();
    await expect(dispatcherFetch(`${emulator.url}/v1/messages`, { method: "POST", body: "{}", signal: abort.signal })).rejects.toMatchObject({
      name: "AbortError",
    });
    expect(emulator.requests).toHaveLength(0);
  });

  it("a refused connection is TypeError('fetch failed') with the ECONNREFUSED cause, and the SDK's APIConnectionError", async () => {
    const port = await refusedPort();
    const err = await dispatcherFetch(`http://127.0.0.1:${port}/v1/messages`, { method: "POST", body: "{}" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe("fetch failed");
    expect(((err as Error).cause as { code?: string }).code).toBe("ECONNREFUSED");
    const sdkErr = await anthropicEvents(anthropic(dispatcherFetch, `http://127.0.0.1:${port}`), "hi").catch((e: unknown) => e);
    expect(sdkErr).toBeInstanceOf(Anthropic.APIConnectionError);
    expect(((sdkErr as Error).cause as Error).message).toBe("fetch failed");
  });

  it("a non-200 status resolves (ok false, the body readable) and the SDK raises the status's APIError", async () => {
    const res = await dispatcherFetch(`${emulator.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-test" },
      body: JSON.stringify({ model: "emulator", max_tokens: 10, messages: [{ role: "user", content: "FAIL_500" }] }),
    });
    expect(res.status).toBe(500);
    expect(res.ok).toBe(false);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect(await res.text()).toContain("Emulated internal server error");

    const viaDispatcher = await anthropicEvents(anthropic(dispatcherFetch), "FAIL_429").catch((e: unknown) => e);
    const viaFetch = await anthropicEvents(anthropic(), "FAIL_429").catch((e: unknown) => e);
    expect(viaDispatcher).toBeInstanceOf(Anthropic.RateLimitError);
    expect((viaDispatcher as InstanceType<typeof Anthropic.APIError>).status).toBe(429);
    const noId = (e: unknown) => (e as Error).message.replace(/req_\w+/g, "req_");
    expect(noId(viaDispatcher)).toBe(noId(viaFetch));
    expect(noId(viaDispatcher)).toContain("Emulated rate limit");
    expect((viaDispatcher as InstanceType<typeof Anthropic.APIError>).headers?.get("retry-after")).toBe(
      (viaFetch as InstanceType<typeof Anthropic.APIError>).headers?.get("retry-after"),
    );
  });

  it("a connection cut mid-stream rejects with the same error code as through the global fetch", async () => {
    const code = (e: unknown): string | undefined => {
      for (let c = e as { code?: unknown; cause?: unknown } | undefined, depth = 0; c && depth < 5; c = c.cause as typeof c, depth++) {
        if (typeof c.code === "string") return c.code;
      }
      return undefined;
    };
    const viaDispatcher = await anthropicEvents(anthropic(dispatcherFetch), "FAIL_CUT").then(
      () => undefined,
      (e: unknown) => e,
    );
    const viaFetch = await anthropicEvents(anthropic(), "FAIL_CUT").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(viaFetch).toBeDefined();
    expect(viaDispatcher).toBeDefined();
    expect(code(viaDispatcher)).toBe(code(viaFetch));
  });
});
