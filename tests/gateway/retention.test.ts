/** The gateway's retention loop (`[store] retention`): when it prunes, what it logs, how it stops. */
import { describe, expect, it } from "vitest";
import { startRetention } from "../../host/src/gateway/retention.js";
import { createMemorySessionLog, type PruneOptions, type PruneResult } from "../../host/src/store/index.js";

/** A logger that keeps its lines. */
function recorder() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { lines, logger: { info: at("info"), warn: at("warn"), debug: at("debug") } as never };
}

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
};

describe("retention loop", () => {
  it("prunes with the cutoff now - maxIdleMs right after start, then every interval; logs counts; a failure does not stop it", async () => {
    const calls: PruneOptions[] = [];
    const { lines, logger } = recorder();
    let n = 0;
    const prune = async (o: PruneOptions): Promise<PruneResult> => {
      calls.push(o);
      n++;
      if (n === 2) throw new Error("store unreachable");
      return n === 1 ? { sessions: 2, events: 10, kept: 1 } : { sessions: 0, events: 0, kept: 0 };
    };
    const r = startRetention({ prune, maxIdleMs: 86_400_000, intervalMs: 10, logger, now: () => 1_800_000_000_000 });
    await until(() => calls.length >= 3);
    await r.stop();
    const count = calls.length;
    expect(calls[0]!.idleBeforeMs).toBe(1_800_000_000_000 - 86_400_000);
    expect(lines[0]).toMatchObject({
      level: "info",
      msg: "retention: pruned idle sessions",
      fields: { sessions: 2, events: 10, kept: 1, idleBefore: "2027-01-14T08:00:00.000Z" },
    });
    expect(lines[1]).toMatchObject({ level: "warn", fields: { error: "store unreachable" } });
    expect(lines[2]).toMatchObject({ level: "debug", msg: "retention: no idle sessions" });
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(count); // stopped: no run after stop()
  });

  it("stop() aborts a run in progress before its next session and waits for it", async () => {
    const log = createMemorySessionLog({ now: () => 1000 });
    for (const peer of ["a", "b", "c"]) await log.append(`agent:main:ws:default:${peer}`, [{ kind: "assistant_text", data: { text: "hi" } }]);
    let stopping: Promise<void> | undefined;
    let removed = 0;
    const { logger } = recorder();
    const r = startRetention({
      // Stops the loop from inside the first removal: the run must end there.
      prune: (o) =>
        log.prune({
          ...o,
          onRemoved: () => {
            removed++;
            stopping ??= r.stop();
          },
        }),
      maxIdleMs: 1,
      intervalMs: 60_000,
      logger,
      now: () => 5000,
    });
    await until(() => stopping !== undefined);
    await stopping;
    expect(removed).toBe(1);
    expect(await log.countSessions()).toBe(2);
  });
});
