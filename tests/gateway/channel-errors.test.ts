/**
 * Channel health from the log (host/src/gateway/channel-errors.ts): a real logger writing through
 * the secret scrubber into a real LogTail; warn-and-above lines with a `channel` field counted
 * per channel and account, the last one kept with its time, level and message (scrubbed, cut).
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ChannelErrors } from "../../host/src/gateway/channel-errors.js";
import { createLogger, LogTail, processLogTail } from "../../host/src/log/index.js";
import { SecretRegistry } from "../../host/src/log/secrets.js";

describe("ChannelErrors", () => {
  it("counts warnings and errors per channel and account from the log as written, secrets scrubbed", () => {
    const secrets = new SecretRegistry();
    secrets.add("telegram token", "tg-secret-0123456789");
    const errors = new ChannelErrors();
    const stop = errors.attach(processLogTail);
    try {
      const logger = createLogger({ level: "debug", secrets, destination: new Writable({ write: (_c, _e, cb) => cb() }) });
      logger.info({ channel: "telegram", account: "main" }, "message answered"); // below warn: not counted
      logger.warn({ channel: "telegram", account: "main", error: "HTTP 429 for https://api/bottg-secret-0123456789/send" }, "channel send failed; retrying");
      logger.error(
        { channel: "telegram", account: "main", error: "HTTP 400 chat not found" },
        "channel send failed permanently; reply dead-lettered (not retried)",
      );
      logger.warn({ channel: "telegram", reason: "x".repeat(1000) }, "channel configuration");
      logger.warn({ other: "telegram" }, "no channel field");
      const h = errors.of("telegram");
      expect(h.map((x) => x.account)).toEqual(["", "main"]);
      expect(h[1]).toMatchObject({
        warnings: 1,
        errors: 1,
        last: { level: "error", message: "channel send failed permanently; reply dead-lettered (not retried): HTTP 400 chat not found" },
      });
      expect(h[1]!.last!.at).toBeGreaterThan(Date.now() - 60_000);
      expect(JSON.stringify(h)).not.toContain("tg-secret-0123456789");
      expect(h[0]!.last!.message.length).toBe(300);
      expect(errors.of("slack")).toEqual([]);
    } finally {
      stop();
    }
  });

  it("ignores lines below warn and lines that are not JSON", () => {
    const tail = new LogTail(10);
    const errors = new ChannelErrors();
    errors.attach(tail);
    tail.push('{"level":30,"channel":"a","msg":"fine"}\nnot json "channel":"a"\n{"level":40,"channel":"a","account":"x","msg":"warned","time":5}\n');
    expect(errors.of("a")).toEqual([{ account: "x", warnings: 1, errors: 0, last: { at: 5, level: "warn", message: "warned" } }]);
  });
});
