/**
 * The operator's HTTP routes beside `/health`: `GET /ready` (readiness, no token) and
 * `GET /metrics` (Prometheus text format, behind the gateway token when one is set), plus the
 * webhook request counter (by configured channel and status) wrapped around the webhook routes.
 * Served through the transports' plain-HTTP handler, so both transports answer them alike.
 */
import type { Telemetry } from "../telemetry/index.js";
import { createIdentifier, type ClientEntry } from "./identity.js";
import { presentedToken } from "./auth.js";
import type { HealthAnswer, HttpAnswer, HttpHandler, HttpRequestHead } from "./types.js";
import { parseWebhookPath } from "./webhook.js";

/** Options of {@link createOpsRoutes}. */
export interface OpsRoutesOptions {
  /** The `/ready` answer: 200 when the store, plugins and bus (when configured) are up, else 503 with the reasons. */
  ready: () => HealthAnswer;
  /** The metrics exposition; absent (`[metrics] enabled = false`) = `/metrics` answers 404. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** The gateway token: when set, `/metrics` needs it (or a client token with scope `admin`) as `Authorization: Bearer`. */
  token?: string;
  clients?: readonly ClientEntry[];
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

const GET_ONLY = json(405, { error: "use GET" }, { allow: "GET, HEAD" });

/**
 * The `/ready` and `/metrics` routes. `/ready` needs no token (like `/health`: probes and load
 * balancers call it) and says only which part is down, never a path or an address.
 * `/metrics`: 401 without a valid token when the gateway has one, 403 for a client token
 * without scope `admin` (metrics name every agent, model, plugin and channel).
 */
export function createOpsRoutes(options: OpsRoutesOptions): HttpHandler {
  const identify = createIdentifier({
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.clients ? { clients: options.clients } : {}),
  });
  return {
    route(head) {
      if (head.path !== "/ready" && head.path !== "/metrics") return null;
      if (head.method !== "GET" && head.method !== "HEAD") return GET_ONLY;
      if (head.path === "/ready") {
        const r = options.ready();
        return json(r.status, r.body);
      }
      if (options.metrics === undefined) return json(404, { error: "metrics are off ([metrics] enabled = false)" });
      const identity = identify(
        presentedToken({
          remoteAddress: head.remoteAddress,
          query: "",
          ...(head.headers.authorization !== undefined ? { authorization: head.headers.authorization } : {}),
        })?.token,
      );
      if (identity === null)
        return json(401, { error: "unauthorized: present the gateway token as Authorization: Bearer <token>" }, { "www-authenticate": "Bearer" });
      if (!identity.scopes.has("admin")) return json(403, { error: "forbidden: /metrics needs the gateway token or a client token with scope admin" });
      // The exposition is built asynchronously: answered from `handle` (no body is read).
      return { maxBodyBytes: 0 };
    },
    async handle() {
      try {
        const m = await options.metrics!();
        return { status: 200, headers: { "content-type": m.contentType, "cache-control": "no-store" }, body: m.body };
      } catch {
        return json(500, { error: "cannot collect the metrics" });
      }
    },
  };
}

/** Tries each handler's routes in order; the first that claims a request also answers it. */
export function chainHttp(handlers: readonly HttpHandler[]): HttpHandler {
  const owner = new WeakMap<HttpRequestHead, HttpHandler>();
  return {
    route(head) {
      for (const h of handlers) {
        const r = h.route(head);
        if (r === null) continue;
        owner.set(head, h);
        return r;
      }
      return null;
    },
    handle(head, body) {
      return owner.get(head)!.handle(head, body);
    },
  };
}

/**
 * `webhooks` with each answer counted by `telemetry.webhookRequest(channel, status)`: refusals
 * from the head and the plugin's answers. `channel` is the URL's channel when `known` says it is
 * configured, else `unknown` (a client cannot grow the label set). Answers the transport gives
 * itself (413 body too large, 408 body timeout) are not counted.
 */
export function countWebhooks(webhooks: HttpHandler, telemetry: Telemetry, known: (channel: string) => boolean): HttpHandler {
  const channelOf = (head: HttpRequestHead): string | null => {
    const p = parseWebhookPath(head.path);
    if (p === null) return null;
    return "status" in p || !known(p.channel) ? "unknown" : p.channel;
  };
  return {
    route(head) {
      const r = webhooks.route(head);
      if (r !== null && "status" in r) {
        const channel = channelOf(head);
        if (channel !== null) telemetry.webhookRequest(channel, r.status);
      }
      return r;
    },
    async handle(head, body) {
      const answer = await webhooks.handle(head, body);
      telemetry.webhookRequest(channelOf(head) ?? "unknown", answer.status);
      return answer;
    },
  };
}
