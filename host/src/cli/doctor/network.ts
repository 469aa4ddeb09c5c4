import { createServer } from "node:net";
import type { Config } from "../../config/index.js";
import { isLoopback } from "../../gateway/index.js";
import { gatewayHost } from "../gateway-client.js";
import { error, ok, type Finding } from "./types.js";

/** How long the NATS and gateway probes wait, ms. */
export const PROBE_TIMEOUT_MS = 3_000;

const bracket = (host: string) => (host.includes(":") ? `[${host}]` : host);

/** `http://<host>:<port>` of the configured gateway. */
export function gatewayHttpUrl(config: Config): string {
  return `http://${bracket(gatewayHost(config))}:${config.gateway.port}`;
}

/**
 * Whether an exoclaw gateway answers `GET /health` on the configured address (any answer with a
 * JSON `status` counts: a gateway whose store is broken answers 503).
 */
export async function gatewayAnswers(config: Config): Promise<boolean> {
  if (config.gateway.port === 0) return false;
  try {
    const res = await fetch(`${gatewayHttpUrl(config)}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = (await res.json()) as { status?: unknown };
    return typeof body.status === "string";
  } catch {
    return false;
  }
}

/**
 * Checks that the gateway can listen on `[gateway] bind`:`port` by binding it for a moment.
 * Taken by a running exoclaw gateway (`gatewayRunning`) is fine; by anything else an error.
 */
export async function checkPort(config: Config, gatewayRunning: boolean): Promise<Finding> {
  const { bind, port } = config.gateway;
  const addr = `${bracket(bind)}:${port}`;
  if (port === 0) return ok("port", "port 0: the gateway picks a free port");
  if (gatewayRunning) return ok("port", `${addr} is served by the running gateway`);
  const outcome = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const server = createServer();
    server.once("error", (err) => resolve(err));
    server.listen({ host: bind, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
  if (outcome === null) return ok("port", `${addr} is free`);
  if (outcome.code === "EADDRINUSE")
    return error(
      "port",
      `${addr} is in use by another process (not an exoclaw gateway)`,
      `stop that process (ss -ltnp 'sport = :${port}' names it), or pick another port: [gateway] port, EXOCLAW_PORT or --port`,
    );
  return error("port", `cannot listen on ${addr}: ${outcome.code ?? outcome.message}`, `set [gateway] bind / EXOCLAW_BIND to an address of this machine`);
}

/**
 * Off loopback the gateway refuses to start without a token (docs/security.md); this says so
 * before start-up, and notes who can connect when it is set (pure).
 */
export function checkToken(config: Config): Finding {
  const { bind, token } = config.gateway;
  if (isLoopback(bind)) return ok("token", `bound to loopback (${bind}): only this machine connects${token ? "; the gateway token is set" : ""}`);
  if (!token)
    return error(
      "token",
      `bound to ${bind} (off loopback) without a gateway token: the gateway refuses to start`,
      "set EXOCLAW_TOKEN (at least 16 characters, e.g. openssl rand -hex 24) or [gateway] token",
    );
  return ok("token", `bound to ${bind} with a gateway token: clients must send Authorization: Bearer <token>`);
}

/**
 * Connects to `[bus] url` / `EXOCLAW_NATS_URL` once (no reconnect), measures a round trip and
 * checks JetStream is enabled (the bus needs it).
 */
export async function checkBus(config: Config): Promise<Finding> {
  if (config.bus === undefined) return ok("bus", "no [bus]: channel messages go straight to the agent runtime (in-process)");
  const servers = config.bus.servers.map((u) => u.replace(/\/\/[^/@]*@/, "//"));
  const started = performance.now();
  const { connect } = await import("@nats-io/transport-node");
  let nc: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    nc = await connect({ servers: config.bus.servers, timeout: PROBE_TIMEOUT_MS, reconnect: false, name: `exoclaw-doctor-${process.pid}` });
    const rtt = await nc.rtt();
    const latencyMs = Math.round(performance.now() - started);
    if (!nc.info?.jetstream)
      return error("bus", `NATS at ${servers.join(",")} answers but has no JetStream`, "start nats-server with JetStream enabled (nats-server -js)", {
        latencyMs,
      });
    return ok("bus", `NATS at ${servers.join(",")} answers (round trip ${rtt} ms), JetStream on`, { latencyMs });
  } catch (err) {
    return error(
      "bus",
      `NATS at ${servers.join(",")} is not reachable: ${(err as Error).message}`,
      "start nats-server -js there, or fix [bus] url / EXOCLAW_NATS_URL",
      {
        latencyMs: Math.round(performance.now() - started),
      },
    );
  } finally {
    await nc?.close().catch(() => {});
  }
}
