// The `/ready` answer (`readiness`, host/src/gateway/app.ts) for each part that can be down; the
// e2e tests (tests/e2e/metrics.test.ts) drive the bus case through a real gateway and NATS.
import { describe, expect, it } from "vitest";
import { readiness } from "../../host/src/gateway/app.js";

const up = { stopping: false, storeDown: undefined, started: true, missingChannelPlugins: [] };
const body = (a: { body: string }) => JSON.parse(a.body) as { status: string; reasons?: string[]; checks: Record<string, string> };

describe("readiness", () => {
  it("is 200 with every check ok once started", () => {
    const a = readiness({ ...up, bus: true });
    expect(a.status).toBe(200);
    expect(body(a)).toEqual({ status: "ready", checks: { store: "ok", plugins: "ok", bus: "ok" } });
  });

  it("is 503 naming each part that is down, all at once", () => {
    const a = readiness({ ...up, storeDown: "disk_full", missingChannelPlugins: ["telegram"], bus: false });
    expect(a.status).toBe(503);
    expect(body(a)).toEqual({
      status: "not_ready",
      reasons: [
        "store: disk_full (the session store takes no writes)",
        "channel telegram: its plugin is not loaded",
        "bus: NATS is not connected (channel messages wait in the disk spool)",
      ],
      checks: { store: "disk_full", plugins: "channel plugins missing", bus: "disconnected" },
    });
  });

  it("is 503 while starting and while shutting down", () => {
    expect(body(readiness({ ...up, started: false })).reasons).toEqual(["starting"]);
    const stopping = readiness({ ...up, stopping: true });
    expect(stopping.status).toBe(503);
    expect(body(stopping).reasons).toEqual(["shutting down"]);
  });
});
