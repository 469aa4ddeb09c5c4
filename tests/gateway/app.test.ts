/**
 * createGatewayApp (host/src/gateway/app.ts) in process, with the real parts (built plugins from
 * build/plugins, the memory store, a real listener): a component plugs in after the gateway
 * listens and its close runs before the listener and the store close; stop is idempotent; a
 * start-up that fails after the gateway listened releases the listener, the plugins and the store.
 * The CLI's behaviour around it (signals, exit codes, the deadline) is in tests/e2e.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { createGatewayApp, type GatewayContext } from "../../host/src/gateway/index.js";
import { createLogger } from "../../host/src/log/index.js";
import { BUILTIN_PLUGINS_DIR } from "../../host/src/paths.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Config as `exoclaw gateway --port 0` reads it, with a private state directory and the memory store. */
function setup() {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-app-"));
  dirs.push(state);
  const env = { EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "memory", EXOCLAW_TRANSPORT: "ws" };
  const config = loadConfig({ port: 0 }, env, [BUILTIN_PLUGINS_DIR]);
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  return { config, env, lines, logger: createLogger({ level: "debug", destination }) };
}

const health = (port: number) => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status);

describe("createGatewayApp", () => {
  it("starts a component after the gateway listens and closes it first; stop is idempotent", async () => {
    const { config, env, lines, logger } = setup();
    const seen: { atStart?: number; atClose?: number; storeOpenAtClose?: boolean } = {};
    let ctx: GatewayContext | undefined;
    const app = createGatewayApp({
      config,
      logger,
      env,
      components: [
        {
          name: "scheduler",
          async start(context) {
            ctx = context;
            seen.atStart = await health(context.listening.port);
            context.defer("scheduler", async () => {
              seen.atClose = await health(context.listening.port);
              seen.storeOpenAtClose = await context.log.info("agent:main:ws:default:x").then(
                () => true,
                () => false,
              );
            });
          },
        },
      ],
    });
    const info = await app.start();
    expect(info.port).toBe(ctx!.listening.port);
    expect(info.transport).toBe("ws");
    expect(info.plugins.length).toBeGreaterThan(0);
    expect(await health(info.port)).toBe(200);
    expect(app.health()).toEqual({ status: 200, body: '{"status":"ok"}' });

    const stopping = app.stop({ graceMs: 100 });
    expect(app.stop()).toBe(stopping);
    expect(await stopping).toEqual({ failed: [], unfinished: [], deadlineMs: 5100 });
    expect(seen).toEqual({ atStart: 200, atClose: 200, storeOpenAtClose: true });
    await expect(health(info.port)).rejects.toThrow();
    await expect(ctx!.log.info("agent:main:ws:default:x")).rejects.toThrow(/closed/);
    const msgs = lines.map((l) => l.msg);
    expect(msgs.filter((m) => m === "shutting down" || m === "stopped")).toEqual(["shutting down", "stopped"]);
    // The order of the closes, component first, listener after the turns, store last.
    const closed = lines.filter((l) => l.msg === "closed").map((l) => l.step);
    expect(closed).toEqual([
      "scheduler",
      "automation",
      "channel pollers",
      "turns",
      "channel replies",
      "channel outbound consumer",
      "bus",
      "listener",
      // The provider SDKs' background load (agent/providers/warm.ts), ended at its next step.
      "provider warm-up",
      "plugin watcher",
      "plugins",
      "session store",
    ]);
    await expect(app.start()).rejects.toThrow(/stopped/);
  });

  it("a start-up that fails after listening closes the listener, the plugins and the store, then rejects", async () => {
    const { config, env, lines, logger } = setup();
    let ctx: GatewayContext | undefined;
    let componentClosed = false;
    const app = createGatewayApp({
      config,
      logger,
      env,
      components: [
        {
          name: "mcp",
          async start(context) {
            ctx = context;
            context.defer("mcp", () => void (componentClosed = true));
            throw new Error("mcp: cannot bind its socket");
          },
        },
      ],
    });
    await expect(app.start()).rejects.toThrow("mcp: cannot bind its socket");
    expect(componentClosed).toBe(true);
    await expect(health(ctx!.listening.port)).rejects.toThrow();
    await expect(ctx!.log.info("agent:main:ws:default:x")).rejects.toThrow(/closed/);
    const tool = ctx!.plugins.tools()[0]!.name;
    expect(await ctx!.plugins.callTool(tool, {})).toMatchObject({ isError: true });
    await expect(ctx!.runtime.run({ agentId: "main", sessionKey: "agent:main:ws:default:x", content: "hi" }, () => {})).rejects.toThrow(/shutting down/);
    // stop() after a failed start answers with that close's report, and logs no second shutdown.
    expect(await app.stop()).toMatchObject({ failed: [], unfinished: [] });
    expect(lines.some((l) => l.msg === "shutting down")).toBe(false);
  });
});
