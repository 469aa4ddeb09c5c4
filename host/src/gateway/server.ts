import type { FlowService } from "../automation/index.js";
import { createFlowEventRoutes } from "./flow-events.js";
import type { Logger } from "pino";
import type { GatewayConfig } from "../config/index.js";
import { assertBindAllowed, createUpgradeGuard, isWildcard } from "./auth.js";
import { createMethods, type MethodDeps } from "./methods.js";
import { createRpcHandler } from "./rpc.js";
import { readTlsFiles, watchTlsFiles } from "./tls.js";
import { chooseTransport } from "./transport.js";
import type { HealthAnswer, TransportName } from "./types.js";
import { createWebhookHandler, type WebhookTarget } from "./webhook.js";
import { NOOP_TELEMETRY, type Telemetry } from "../telemetry/index.js";
import { chainHttp, countWebhooks, createOpsRoutes, type OpsRoutesOptions } from "./observability.js";
import type { HttpHandler } from "./types.js";
import { createMcpRoute, type McpRouteTarget } from "./mcp-route.js";
import { createUiRoutes } from "./ui-static.js";
import { UI_DIST_DIR } from "../paths.js";

/** A gateway that is listening. */
export interface RunningGateway {
  port: number;
  host: string;
  transport: TransportName;
  /** True when serving wss:// and https:// (`[gateway.tls]`). */
  tls: boolean;
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
 * With `[gateway.tls]` it serves https:// and wss:// on the same port (the `ws` transport over
 * `node:https`), re-reading the certificate and key when they change (see tls.ts).
 * @throws Error when binding off loopback without a token, when `uws` is forced but does not
 *   load (or is forced with TLS), or when the address cannot be bound (`cannot listen on
 *   <host>:<port>: address in use ...`); TlsConfigError naming the file when the TLS
 *   certificate or key is missing, unreadable, not PEM, or the two do not match
 */
export async function startGateway(
  config: GatewayConfig,
  deps: Omit<MethodDeps, "transport" | "logger"> & {
    logger: Logger;
    /** Serves `/webhook/<channel>[/<account>]` (not behind the token); absent = those paths answer 404. */
    webhooks?: WebhookTarget;
    /** Readiness for `/health` (e.g. 503 when the session store broke); absent = always 200 `{"status":"ok"}`. */
    health?: () => HealthAnswer;
    /** `POST /flows/<id>/events` (flow-events.ts); absent = that path answers 404. */
    flows?: () => FlowService | undefined;
    /** `/ready` and `/metrics` (observability.ts); absent = those paths answer 404. */
    ops?: Omit<OpsRoutesOptions, "token" | "clients">;
    /** Where WebSocket connections and webhook answers are counted; default none. */
    telemetry?: Telemetry;
    /** Serves `/mcp` (exoclaw as an MCP server, behind the same guard as `/ws`); absent = 404. */
    mcpRoute?: McpRouteTarget;
  },
): Promise<RunningGateway> {
  assertBindAllowed(config.bind, config.token);
  // TLS files are checked before anything listens: a bad pair refuses start-up, naming the file.
  const tlsFiles = config.tls;
  const tls = tlsFiles === undefined ? undefined : readTlsFiles(tlsFiles);
  const { transport, fallbackReason, setTls } = await chooseTransport(config.transport, config.maxBufferedBytes, tls);
  if (fallbackReason) deps.logger.warn({ reason: fallbackReason }, "uWebSockets.js unavailable; using the ws transport");
  if (tls !== undefined) {
    deps.logger.info(
      { cert: tlsFiles!.certFile, fingerprint256: tls.fingerprint256, validTo: tls.validTo, transport: transport.name },
      "TLS on: serving wss:// and https:// with the ws transport (the bundled uWebSockets.js has no TLS)",
    );
    if (Date.parse(tls.validTo) < Date.now())
      deps.logger.warn({ cert: tlsFiles!.certFile, validTo: tls.validTo }, "the TLS certificate has expired: clients will refuse it");
  }
  const log = deps.logger;
  const telemetry = deps.telemetry ?? NOOP_TELEMETRY;
  const rpc = createRpcHandler({
    methods: createMethods({
      ...deps,
      transport: () => transport.name,
      readiness: () => ({ health: deps.health?.() ?? { status: 200, body: '{"status":"ok"}' }, ...(deps.ops ? { ready: deps.ops.ready() } : {}) }),
    }),
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
    tls: tls !== undefined,
    allowedOrigins: config.allowedOrigins,
    allowedHosts: config.allowedHosts,
    ui: config.ui === true,
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
        telemetry.connections(1);
        log.debug({ conn: conn.id, remote: conn.remoteAddress, account: conn.identity.account, scopes: [...conn.identity.scopes] }, "connection opened");
      },
      message(conn, data, isBinary) {
        rpc.message(conn, data, isBinary);
      },
      close(conn, code) {
        rpc.close(conn);
        telemetry.connections(-1);
        log.debug({ conn: conn.id, code }, "connection closed");
      },
      http: httpRoutes(
        config,
        deps.webhooks,
        deps.ops,
        telemetry,
        deps.flows === undefined
          ? undefined
          : createFlowEventRoutes({ flows: deps.flows, ...(config.token !== undefined ? { token: config.token } : {}), logger: log }),
        deps.mcpRoute === undefined ? undefined : createMcpRoute(deps.mcpRoute, guard),
      ),
      health: deps.health,
    },
  );
  boundPort = port;
  const tlsWatch = tls === undefined || setTls === undefined ? undefined : watchTlsFiles(tlsFiles!, tls, setTls, log);
  let closing: Promise<void> | undefined;
  return {
    port,
    host: config.bind,
    transport: transport.name,
    tls: tls !== undefined,
    close: () => (closing ??= (tlsWatch?.close(), transport.close())),
  };
}

/** The plain-HTTP routes: `/ready` and `/metrics` (when `ops`), then the webhooks (counted). */
function httpRoutes(
  config: GatewayConfig,
  webhooks: WebhookTarget | undefined,
  ops: OpsRoutesOptions | undefined,
  telemetry: Telemetry,
  flowEvents?: HttpHandler,
  mcp?: HttpHandler,
): HttpHandler | undefined {
  const handlers: HttpHandler[] = [];
  if (flowEvents) handlers.push(flowEvents);
  if (mcp) handlers.push(mcp);
  if (ops) handlers.push(createOpsRoutes({ ...ops, ...(config.token !== undefined ? { token: config.token } : {}), clients: config.clients }));
  if (webhooks) {
    const handler = createWebhookHandler(webhooks, config.webhooks);
    handlers.push(telemetry.enabled ? countWebhooks(handler, telemetry, (channel) => webhooks.webhookPolicy(channel) !== undefined) : handler);
  }
  // The Control UI last: `/`, `/index.html`, `/favicon.svg`, `/assets/...` (off the webhook path).
  const ui = config.ui === true ? createUiRoutes({ dir: UI_DIST_DIR }) : undefined;
  if (ui) handlers.push(ui);
  return handlers.length === 0 ? undefined : handlers.length === 1 ? handlers[0] : chainHttp(handlers);
}
