import { describe, expect, it } from "vitest";
import { redactEvent, redactText, REDACTION_PATTERNS } from "../../host/src/store/index.js";

const r = (s: string) => redactText(s).text;

describe("redactor", () => {
  it("replaces each known secret format with its kind", () => {
    expect(r("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv_wxyz-0123 end")).toBe("key [redacted:anthropic_key] end");
    expect(r("gemini AIzaSyA1b2C3d4E5f6G7h8I9j0K_lMnOpQrStUv end")).toBe("gemini [redacted:google_api_key] end");
    expect(r("short AIzaSyA1b2C3 stays")).toBe("short AIzaSyA1b2C3 stays");
    expect(r("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx1234")).toBe("OPENAI_API_KEY=[redacted:openai_key]");
    expect(r("sk-abcdefghijklmnopqrstuvwxyz012345")).toBe("[redacted:openai_key]");
    expect(r("aws AKIAIOSFODNN7EXAMPLE here")).toBe("aws [redacted:aws_access_key] here");
    expect(r("token ghp_" + "a".repeat(36))).toBe("token [redacted:github_token]");
    expect(r("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz")).toBe("[redacted:github_token]");
    expect(r("slack xoxb-1234567890-abcdefghij")).toBe("slack [redacted:slack_token]");
    expect(r("xoxp-1234567890-0987654321-abc")).toBe("[redacted:slack_token]");
    expect(r("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")).toBe("Authorization: Bearer [redacted:bearer]");
    expect(r("curl -H 'authorization: bearer abcdefgh12345678'")).toBe("curl -H 'authorization: bearer [redacted:bearer]'");
  });

  it("keeps the name of password-style pairs", () => {
    expect(r("password=hunter2")).toBe("password=[redacted:password]");
    expect(r("DB_PASSWORD=hunter2 next")).toBe("DB_PASSWORD=[redacted:password] next");
    expect(r("Password: correct horse")).toBe("Password: [redacted:password] horse");
    expect(r('{"password": "a b\\" c", "user": "x"}')).toBe('{"password": [redacted:password], "user": "x"}');
    expect(r("postgres://u:x@h/db?sslmode=require&password=pw1;x")).toBe("postgres://u:x@h/db?sslmode=require&password=[redacted:password];x");
    expect(r("api_key: 'abc def'")).toBe("api_key: [redacted:password]");
    expect(r("client_secret=zzz access_token=yyy")).toBe("client_secret=[redacted:password] access_token=[redacted:password]");
  });

  it("removes private key blocks, terminated or not", () => {
    const block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----";
    expect(r(`here:\n${block}\nthanks`)).toBe("here:\n[redacted:private_key]\nthanks");
    expect(r("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n(truncated")).toBe("[redacted:private_key]");
    expect(r("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----")).toContain("MFkw");
  });

  it("leaves ordinary text alone and counts replacements", () => {
    const plain = "The task: skim the AKIA docs, ask for a password reset, use bearer auth. sk-short";
    expect(redactText(plain)).toEqual({ text: plain, count: 0 });
    expect(redactText("a sk-ant-api03-0123456789abcdefgh and password=x").count).toBe(2);
    expect(r(r("password=hunter2"))).toBe("password=[redacted:password]");
  });

  it("exports its patterns with kinds and descriptions", () => {
    const kinds = REDACTION_PATTERNS.map((p) => p.kind);
    expect(kinds).toEqual([
      "private_key",
      "anthropic_key",
      "openai_key",
      "google_api_key",
      "aws_access_key",
      "github_token",
      "slack_token",
      "bearer",
      "password",
    ]);
    for (const p of REDACTION_PATTERNS) {
      expect(p.description.length).toBeGreaterThan(10);
      expect(p.regex.global).toBe(true);
    }
  });

  it("redacts the free-text fields of events only", () => {
    const key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz";
    expect(redactEvent({ kind: "message_received", data: { content: key, channel: "c", account: "a", peer: "password=p" } })).toEqual({
      kind: "message_received",
      data: { content: "[redacted:anthropic_key]", channel: "c", account: "a", peer: "password=p" },
    });
    expect(redactEvent({ kind: "tool_use", data: { id: "password=1", name: "n", input: ["Bearer abcdefghijkl", { k: key, n: 5 }] } })).toEqual({
      kind: "tool_use",
      data: { id: "password=1", name: "n", input: ["Bearer [redacted:bearer]", { k: "[redacted:anthropic_key]", n: 5 }] },
    });
    expect(redactEvent({ kind: "tool_result", data: { toolUseId: "t", content: key, isError: false } }).data).toMatchObject({
      content: "[redacted:anthropic_key]",
    });
    expect(redactEvent({ kind: "error", data: { code: 1, message: `bad ${key}` } }).data).toMatchObject({ message: "bad [redacted:anthropic_key]" });
    expect(redactEvent({ kind: "compaction", data: { summary: key, upToSeq: 1 } }).data).toMatchObject({ summary: "[redacted:anthropic_key]" });
    const ended = { kind: "turn_ended", data: { runId: "password=x", stopReason: "end_turn" } } as const;
    expect(redactEvent(ended)).toBe(ended);
  });
});
