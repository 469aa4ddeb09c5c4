// The provider adapters (real SDKs) against the provider emulator scripted to fail with a body
// that quotes the API key: the error a client sees is fixed text with a request id, and the
// log has the same id at warn and the scrubbed body only at debug.
import { createServer, type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAnthropicProvider, createGeminiProvider, createOllamaProvider, createOpenAIProvider } from "../../host/src/agent/providers/index.js";
import { failureReason, ProviderError } from "../../host/src/agent/errors.js";
import { classify } from "../../host/src/agent/resilience/classify.js";
import type { ModelProvider } from "../../host/src/agent/types.js";
import { createLogger, processSecrets, SECRET_MARKER } from "../../host/src/log/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

const KEY = "sk-test-QUOTED-0123456789abcdefghij";

function capturingLogger(level: "info" | "debug") {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: createLogger({ level, destination }) };
}

async function fail(provider: ModelProvider, content: string): Promise<ProviderError> {
  const request = { model: "emulator", maxTokens: 100, messages: [{ role: "user" as const, content: [{ type: "text" as const, text: content }] }], tools: [] };
  try {
    for await (const _ of provider.stream(request, new AbortController().signal)) {
      // drain
    }
  } catch (err) {
    return err as ProviderError;
  }
  throw new Error("the provider did not fail");
}

describe.each(["anthropic", "openai", "ollama", "gemini"] as const)("%s failures never carry the provider's body", (name) => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
    processSecrets.add("test key", KEY);
  });
  afterAll(async () => {
    processSecrets.clear();
    await emulator?.close();
  });
  const make = (logger: ReturnType<typeof capturingLogger>["logger"]) => {
    const endpoint = { apiKey: KEY, timeoutMs: 10_000 };
    if (name === "anthropic") return createAnthropicProvider({ ...endpoint, baseUrl: emulator.url }, { logger });
    if (name === "openai") return createOpenAIProvider({ ...endpoint, baseUrl: `${emulator.url}/v1` }, { logger });
    if (name === "gemini") return createGeminiProvider({ ...endpoint, baseUrl: emulator.url }, { logger });
    return createOllamaProvider({ ...endpoint, baseUrl: emulator.url }, { logger });
  };

  it.each([
    ["FAIL_500 QUOTE_KEY", -32000, /failed \(HTTP 500/],
    ["FAIL_401 QUOTE_KEY", -32001, /rejected the credentials \(HTTP 401\)/],
    ["FAIL_ERROR_EVENT QUOTE_KEY", -32000, /failed \(/],
  ])("%s", async (content, code, shape) => {
    const { lines, logger } = capturingLogger("debug");
    const err = await fail(make(logger), content);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(shape);
    expect(err.message).not.toMatch(/Emulated|Overloaded|credential received/);
    // Ollama never sends a key (nothing to quote but "(none)"); the others quote theirs.
    expect(err.message).not.toContain(KEY);
    const id = /request id (\S+?)\.?(?: |$)/.exec(err.message)?.[1];
    expect(id).toBe(err.requestId);
    // The SDK's request id (response header) when the provider answered with one.
    // Gemini's errors name no request id: the gateway makes one up.
    if (name !== "ollama" && name !== "gemini" && !content.startsWith("FAIL_ERROR_EVENT")) expect(id).toMatch(/^req_/);
    else expect(id).toMatch(/^gw_[0-9a-f]{16}$/);
    const log = lines.join("");
    expect(log).not.toContain(KEY);
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "model provider failed");
    expect(warn).toMatchObject({ level: 40, provider: name, requestId: id });
    const debug = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "model provider error detail (secrets scrubbed)");
    expect(debug).toMatchObject({ level: 20, requestId: id });
    expect(debug.detail).toMatch(/Emulated|Overloaded/);
    if (name !== "ollama") expect(debug.detail).toContain(SECRET_MARKER);
  });

  it("at info the body is not logged at all", async () => {
    const { lines, logger } = capturingLogger("info");
    await fail(make(logger), "FAIL_500 QUOTE_KEY");
    expect(lines.join("")).not.toMatch(/Emulated|credential received/);
    expect(lines.some((l) => l.includes("model provider failed"))).toBe(true);
  });
});

describe("gemini failures map onto the failure taxonomy", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator?.close();
  });
  const gemini = (apiKey: string) => createGeminiProvider({ apiKey, baseUrl: emulator.url, timeoutMs: 10_000 });

  it.each([
    // [content, HTTP status, JSON-RPC code, FailureReason, message shape]
    ["FAIL_401", 401, -32001, "provider_unavailable", /^provider gemini rejected the credentials \(HTTP 401\); request id gw_/],
    ["FAIL_429", 429, -32000, "provider_error", /^provider gemini failed \(HTTP 429 RESOURCE_EXHAUSTED\); request id gw_/],
    ["FAIL_500", 500, -32000, "provider_error", /^provider gemini failed \(HTTP 500 INTERNAL\); request id gw_/],
    ["FAIL_400", 400, -32000, "provider_error", /^provider gemini failed \(HTTP 400 INVALID_ARGUMENT\); request id gw_/],
    ["FAIL_ERROR_EVENT", 503, -32000, "provider_error", /^provider gemini failed \(HTTP 503 UNAVAILABLE\); request id gw_/],
  ] as const)("%s -> HTTP %i, %i %s", async (content, status, code, reason, shape) => {
    const err = await fail(gemini("test-gemini-key"), content);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(failureReason(err)).toBe(reason);
    expect(err.message).toMatch(shape);
  });

  it("a 429's RetryInfo.retryDelay (Gemini's Retry-After) becomes the error's retryAfterMs, and the call is retried", async () => {
    const err = await fail(gemini("test-gemini-key"), "FAIL_429");
    expect(err.retryAfterMs).toBe(1000);
    expect(classify(err)).toEqual({ action: "retry", reason: "rate_limited", retryAfterMs: 1000 });
  });

  it("a key the API does not know (400 API_KEY_INVALID, as Gemini answers) is rejected credentials, not a bad request", async () => {
    const err = await fail(gemini("key-invalid-0123"), "hi");
    // Another key may work: rotate, as for a 401, never "fatal" as for a bad request.
    expect(classify(err)).toEqual({ action: "rotate", reason: "credentials" });
    expect(err.status).toBe(400);
    expect(err.code).toBe(-32001);
    expect(failureReason(err)).toBe("provider_unavailable");
    expect(err.message).toMatch(/^provider gemini rejected the credentials \(HTTP 400\); request id gw_[0-9a-f]{16}\. Set .*GEMINI_API_KEY/);
    expect(err.message).not.toContain("key-invalid-0123");
  });

  it("no key and no base URL: unavailable, naming the variables", async () => {
    const err = await fail(createGeminiProvider({ timeoutMs: 10_000 }), "hi");
    expect(err.code).toBe(-32001);
    expect(err.message).toBe("provider gemini has no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)");
  });
});

describe("an unreachable provider", () => {
  it("is named without the query or user info of its URL", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const { lines, logger } = capturingLogger("debug");
    const withQuery = createOllamaProvider({ baseUrl: `http://127.0.0.1:${port}/?key=query-secret-0123`, timeoutMs: 5000 }, { logger });
    const refused = await fail(withQuery, "hi");
    expect(refused.code).toBe(-32001);
    expect(refused.message).toMatch(
      new RegExp(`^provider ollama at http://127.0.0.1:${port} is unreachable \\(ECONNREFUSED\\); request id gw_[0-9a-f]{16}\\. Set`),
    );
    // fetch refuses a URL with user info before connecting: still no password in the message.
    const withUser = createOpenAIProvider({ apiKey: KEY, baseUrl: `http://user:url-password-0123@127.0.0.1:${port}/v1`, timeoutMs: 5000 }, { logger });
    const refusedUser = await fail(withUser, "hi");
    expect(refusedUser.message).toMatch(/^provider openai failed \(no answer: Error\); request id gw_/);
    expect(refused.message + refusedUser.message).not.toMatch(/url-password|query-secret/);
    expect(lines.filter((l) => l.includes('"level":40')).join("")).not.toMatch(/url-password|query-secret/);
  });
});
