/**
 * SIGTERM always ends the process within `[gateway] shutdown_grace_ms` + 5 s (the CLI's hard
 * deadline, host/src/cli/main.ts), even when a shutdown step hangs. The hanging step here is
 * real: an HTTP client that sent half a request header keeps the `ws` transport's
 * `server.close()` waiting (Node's headers timeout is 60 s). See docs/reliability.md
 * ("Full disk", last guarantee).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type GatewayHandle } from "../support/gateway.js";

const GRACE_MS = 1000;
let configDir: string;
let gateway: GatewayHandle | undefined;
let socket: Socket | undefined;

beforeAll(() => {
  configDir = mkdtempSync(join(tmpdir(), "exoclaw-deadline-"));
  writeFileSync(join(configDir, "exoclaw.toml"), `[gateway]\nshutdown_grace_ms = ${GRACE_MS}\n`);
});

afterAll(() => {
  socket?.destroy();
  if (gateway && gateway.proc.exitCode === null && gateway.proc.signalCode === null) gateway.proc.kill("SIGKILL");
  rmSync(configDir, { recursive: true, force: true });
});

describe("shutdown deadline", () => {
  it("exits 1 at the hard deadline when a shutdown step hangs, and logs which deadline passed", async () => {
    gateway = await startGateway({ EXOCLAW_TRANSPORT: "ws", EXOCLAW_STORE: "memory" }, ["--config", join(configDir, "exoclaw.toml")]);
    const gw = gateway;
    // Half a request: the server waits for the rest of the header.
    socket = connect(gw.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket!.once("connect", () => resolve()));
    socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    socket.on("error", () => {});
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the gateway did not exit within 20 s of SIGTERM")), 20_000);
      gw.proc.once("exit", (c) => (clearTimeout(timer), resolve(c)));
      gw.proc.kill("SIGTERM");
    });
    expect(code).toBe(1);
    expect(gw.logs.some((l) => l.msg === "shutdown did not finish within the grace period plus 5 s: exiting now" && l.deadlineMs === GRACE_MS + 5000)).toBe(
      true,
    );
  }, 40_000);
});
