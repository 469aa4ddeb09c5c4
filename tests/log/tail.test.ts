// logs.tail's ring (log/tail.ts): fed by the logger after redaction, bounded, filtered by level.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, LogTail, processLogTail, SecretRegistry } from "../../host/src/log/index.js";

describe("LogTail", () => {
  it("keeps the last lines with their level, reads after a cursor and at or above a level", () => {
    const t = new LogTail(3);
    for (const [level, msg] of [
      [30, "a"],
      [40, "b"],
      [20, "c"],
      [50, "d"],
    ] as const)
      t.push(`${JSON.stringify({ level, msg })}\n`);
    expect(t.lastSeq()).toBe(4);
    expect(t.read().map((l) => l.seq)).toEqual([2, 3, 4]);
    expect(t.read({ minLevel: 40 }).map((l) => JSON.parse(l.line).msg)).toEqual(["b", "d"]);
    expect(t.read({ afterSeq: 3 }).map((l) => l.seq)).toEqual([4]);
    expect(t.read({ limit: 1 }).map((l) => l.seq)).toEqual([4]);
  });

  it("gets every line of the process logger, with secrets already scrubbed", () => {
    const secrets = new SecretRegistry();
    secrets.add("test", "sk-very-secret-value-123");
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const logger = createLogger({ level: "info", secrets, destination: sink });
    const before = processLogTail.lastSeq();
    logger.warn({ token: "abc", detail: "key sk-very-secret-value-123 leaked" }, "tail test line");
    const [line] = processLogTail.read({ afterSeq: before });
    expect(line?.level).toBe(40);
    expect(line?.line).toContain("tail test line");
    expect(line?.line).not.toContain("sk-very-secret-value-123");
    expect(JSON.parse(line!.line)).toMatchObject({ token: "[redacted]" });
  });
});
