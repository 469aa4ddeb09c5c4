import type { Logger } from "pino";
import type { GatewayConfig } from "../config/index.js";
import { assertBindAllowed, createUpgradeGuard, isWildcard } from "./auth.js";
import { createMethods, type MethodDeps } from "./methods.js";
import { createRpcHandler } from "./rpc.js";
import { chooseTransport } from "./transport.js";
import type { HealthAnswer, TransportName } from "./types.js";
import { createWebhookHandler, type WebhookTarget } from "./webhook.js";

/** A gateway that is listening. */
export interface RunningGateway {
  port: number;
  host: string;
  transport: TransportName;
  /** Stops listening and closes every connection (1001). Idempotent. */
  close(): Promise<void>;
}

/** Hard cap on a frame at the transport; above the protocol limit so oversize frames get an error, bytes. */
const hardFrameCap = (maxFrameBytes: number) => Math.max(16 * 1024 * 1024, maxFrameBytes * 4);

/** `?token=` is logged once per process: the URL (and so the token) lands in proxy and access logs. */
let queryTokenWarned = false;

/**
 * Starts the HTTP + WebSocket gateway: `GET /health`, JSON-RPC over WebSocket at `/ws`, and
 * the channel webhooks at `/webhook/<channel>[/<account>]` when `deps.webhooks` is given.
 * Upgrades to `/ws` pass the guard of {@link createUpgradeGuard} (Host, Origin, token).
 * @throws Error when binding off loopback without a token, when `uws` is forced but does not
 *   load, or when the address cannot be bound (`cannot listen on <host>:<port>: address in use ...`)
 */
export async function startGateway(
  config: GatewayConfig,
  deps: Omit<MethodDeps, "transport" | "logger"> & {
    logger: Logger;
    /** Serves `/webhook/<channel>[/<account>]` (not behind the token); absent = those paths answer 404. */
    webhooks?: WebhookTarget;
    /** Readiness for `/health` (e.g. 503 when the session store broke); absent = always 200 `{"status":"ok"}`. */
    health?: () => HealthAnswer;
  },
): Promise<RunningGateway> {
  assertBindAllowed(config.bind, config.token);
  const { transport, fallbackReason } = await chooseTransport(config.transport, config.maxBufferedBytes);
  if (fallbackReason) deps.logger.warn({ reason: fallbackReason }, "uWebSockets.js unavailable; using the ws transport");
  const log = deps.logger;
  const rpc = createRpcHandler({
    methods: createMethods({ ...deps, transport: () => transport.name }),
    logger: log,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
    maxInflightPerConnection: 128,
  });
  let boundPort = config.port;
  const guard = createUpgradeGuard({
    bind: config.bind,
    port: () => boundPort,
    token: config.token,
    clients: config.clients,
    allowedOrigins: config.allowedOrigins,
    allowedHosts: config.allowedHosts,
    onQueryToken() {
      if (queryTokenWarned) return;
      queryTokenWarned = true;
      log.warn(
        "a client presented the gateway token as ?token= in the URL: URLs end up in proxy and access logs; send it as Authorization: Bearer <token> instead (?token= is deprecated)",
      );
    },
  });
  if (isWildcard(config.bind) && config.allowedHosts.length === 0) {
    log.info({ bind: config.bind }, "wildcard bind without [gateway] allowed_hosts: the Host header is not checked (the token protects /ws)");
  }
  const port = await transport.listen(
    { host: config.bind, port: config.port, maxPayloadBytes: hardFrameCap(config.maxFrameBytes) },
    {
      authorize(req) {
        const verdict = guard(req);
        if (!verdict.ok) log.warn({ remote: req.remoteAddress, status: verdict.status, reason: verdict.error }, "refused WebSocket upgrade");
        return verdict;
      },
      open(conn) {
        log.debug({ conn: conn.id, remote: conn.remoteAddress, account: conn.identity.account, scopes: [...conn.identity.scopes] }, "connection opened");
      },
      message(conn, data, isBinary) {
        rpc.message(conn, data, isBinary);
      },
      close(conn, code) {
        rpc.close(conn);
        log.debug({ conn: conn.id, code }, "connection closed");
      },
      http: deps.webhooks ? createWebhookHandler(deps.webhooks, config.webhooks) : undefined,
      health: deps.health,
    },
  );
  boundPort = port;
  let closing: Promise<void> | undefined;
  return {
    port,
    host: config.bind,
    transport: transport.name,
    close: () => (closing ??= transport.close()),
  };
}
