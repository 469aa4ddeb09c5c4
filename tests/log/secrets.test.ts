import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, registerConfigSecrets, SecretRegistry, SECRET_MARKER } from "../../host/src/log/index.js";
import { redactEvent, redactText } from "../../host/src/store/redact.js";
import { failureReply } from "../../host/src/channels/service.js";
import { processSecrets } from "../../host/src/log/index.js";

const KEY = "sk-ant-api03-Secret_Value-0123456789";

describe("SecretRegistry", () => {
  it("replaces a value anywhere in a text, every time", () => {
    const r = new SecretRegistry();
    r.add("anthropic API key", KEY);
    expect(r.scrubCount(`invalid x-api-key ${KEY}; got ${KEY}!`)).toEqual({ text: `invalid x-api-key ${SECRET_MARKER}; got ${SECRET_MARKER}!`, count: 2 });
    expect(r.scrub("nothing to see")).toBe("nothing to see");
  });

  it("scrubs the raw value, its JSON-escaped forms (once and twice) and its URL-encoded form", () => {
    const r = new SecretRegistry();
    const odd = 'pa"ss\\wo/rd+&1';
    r.add("odd", odd);
    const once = JSON.stringify(odd).slice(1, -1);
    const twice = JSON.stringify(once).slice(1, -1);
    for (const form of [odd, once, twice, encodeURIComponent(odd)]) {
      expect(r.scrub(`x ${form} y`)).toBe(`x ${SECRET_MARKER} y`);
    }
    // A pino line: the body quoting the secret is JSON inside a JSON string.
    const line = JSON.stringify({ detail: JSON.stringify({ error: { message: `bad key ${odd}` } }) });
    expect(line).not.toContain(odd);
    expect(r.scrub(line)).not.toContain(twice);
    expect(JSON.parse(JSON.parse(r.scrub(line)).detail)).toEqual({ error: { message: `bad key ${SECRET_MARKER}` } });
  });

  it("does not register values shorter than 8 characters, and says so", () => {
    const r = new SecretRegistry();
    expect(r.add("short", "abc")).toBe(false);
    expect(r.add("empty", "")).toBe(true);
    expect(r.size).toBe(0);
    expect(r.scrub("abc abc")).toBe("abc abc");
  });

  it("replaces the longer of two overlapping secrets whole", () => {
    const r = new SecretRegistry();
    r.add("a", "token-12345678");
    r.add("b", "token-12345678-extended");
    expect(r.scrub("use token-12345678-extended or token-12345678")).toBe(`use ${SECRET_MARKER} or ${SECRET_MARKER}`);
  });

  it("is fed from the configuration: token, provider keys, plugin secrets from env, store password, URL passwords", () => {
    const r = new SecretRegistry();
    const short = registerConfigSecrets(
      r,
      {
        gatewayToken: "gateway-token-0123",
        providerKeys: { anthropic: KEY, openai: undefined, ollama: "tiny" },
        pluginSecrets: { webhook: { WEBHOOK_SECRET: { env: "HOOK" } }, weather: { KEY: { env: "UNSET_VAR" } } },
        storePassword: "store-password-1",
        urls: ["nats://user:nats%2Fpassword@127.0.0.1:4222", "surrealkv:///tmp/x", "not a url"],
      },
      { HOOK: "webhook-secret-0123" },
    );
    expect(short).toEqual(["ollama API key"]);
    const text = `gateway-token-0123 ${KEY} webhook-secret-0123 store-password-1 nats/password`;
    expect(r.scrub(text)).toBe(Array(5).fill(SECRET_MARKER).join(" "));
    expect(r.names()).not.toContain(KEY);
  });
});

describe("the logger scrubs secret values from every line", () => {
  function capture(r: SecretRegistry, level: "info" | "debug" = "info") {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    return { lines, logger: createLogger({ level, secrets: r, destination }) };
  }

  it("in messages, nested fields, errors and child loggers", () => {
    const r = new SecretRegistry();
    r.add("key", KEY);
    const { lines, logger } = capture(r, "debug");
    logger.info(`the key is ${KEY}`);
    logger.warn({ error: `POST /send answered 401: {"error":"bad token Bearer ${KEY}"}` }, "channel send failed");
    logger.child({ plugin: "webhook" }).debug({ deep: { deeper: [KEY] } }, "x");
    logger.error({ err: new Error(`boom ${KEY}`) }, "failed");
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toContain(KEY);
      expect(line).toContain(SECRET_MARKER);
      expect(() => JSON.parse(line)).not.toThrow();
    }
  });

  it("keeps redacting by key (token, apiKey, authorization)", () => {
    const { lines, logger } = capture(new SecretRegistry());
    logger.info({ token: "short", headers: { authorization: "Bearer x" } }, "m");
    expect(JSON.parse(lines[0]!)).toMatchObject({ token: "[redacted]", headers: { authorization: "[redacted]" } });
  });
});

describe("store redaction reuses the registry", () => {
  it("redactText replaces registered values, then patterns", () => {
    const r = new SecretRegistry();
    r.add("plugin secret", "opaque-secret-without-format");
    const out = redactText("a opaque-secret-without-format b sk-ant-abcdefghijklmnopqrstuv", undefined, r);
    expect(out.text).toBe(`a ${SECRET_MARKER} b [redacted:anthropic_key]`);
    expect(out.count).toBe(2);
  });

  it("redactEvent uses the given registry for error messages", () => {
    const r = new SecretRegistry();
    r.add("k", "opaque-secret-without-format");
    const e = redactEvent({ kind: "error", runId: "r", data: { code: -32000, message: "x opaque-secret-without-format" } }, undefined, r);
    expect(e).toMatchObject({ data: { message: `x ${SECRET_MARKER}` } });
  });
});

describe("channel failure notices", () => {
  it("never carry a registered secret value, whatever the message", () => {
    processSecrets.add("test", KEY);
    try {
      expect(failureReply(`plugin failed: ${KEY}\nstack`)).toBe(`Sorry, your message could not be answered: plugin failed: ${SECRET_MARKER}`);
    } finally {
      processSecrets.clear();
    }
  });
});
