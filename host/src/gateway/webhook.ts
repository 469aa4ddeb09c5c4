/**
 * The webhook routes: `/webhook/<channel>` and `/webhook/<channel>/<account>` (any method; the
 * channel plugin decides what each means, e.g. a GET verification handshake). Not behind the
 * gateway token: platforms cannot present it; the plugin's signature check authenticates them.
 */
import type { WebhookHttpRequest } from "../channels/service.js";
import type { HttpAnswer, HttpHandler, HttpRequestHead } from "./types.js";

/** Channel and account names in a webhook URL (after percent-decoding). */
export const WEBHOOK_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** What the webhook routes call (the channels service implements it). */
export interface WebhookTarget {
  /** Largest body of `channel`, bytes; undefined when the channel is not configured (404). */
  maxBodyBytes(channel: string): number | undefined;
  handleWebhook(req: WebhookHttpRequest): Promise<HttpAnswer>;
}

/** A webhook URL split into its parts. */
export interface WebhookPath {
  channel: string;
  /** `default` when the URL has none. */
  account: string;
  /** Anything after the account (`/extra`), decoded; usually empty. */
  rest: string;
}

const json = (status: number, error: string): HttpAnswer => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify({ error }) });

/**
 * Splits `/webhook/<channel>[/<account>][/rest]` (percent-decoded per segment).
 * @returns the parts; null when the path is not under `/webhook/`; an HTTP 400 answer naming the
 *   bad segment when a name is not `[A-Za-z0-9_.-]{1,64}` or not valid percent-encoding
 */
export function parseWebhookPath(path: string): WebhookPath | HttpAnswer | null {
  if (!path.startsWith("/webhook/")) return null;
  const segments = path.slice("/webhook/".length).split("/");
  const decoded: string[] = [];
  for (const s of segments) {
    try {
      decoded.push(decodeURIComponent(s));
    } catch {
      return json(400, `malformed percent-encoding in webhook path segment ${JSON.stringify(s)}`);
    }
  }
  const [channel = "", account, ...rest] = decoded;
  if (!WEBHOOK_NAME_RE.test(channel)) return json(400, `invalid channel name ${JSON.stringify(channel)} in webhook path (expected [A-Za-z0-9_.-]{1,64})`);
  if (account !== undefined && !(account === "" && rest.length === 0) && !WEBHOOK_NAME_RE.test(account)) {
    return json(400, `invalid account name ${JSON.stringify(account)} in webhook path (expected [A-Za-z0-9_.-]{1,64})`);
  }
  return { channel, account: account || "default", rest: rest.length > 0 ? `/${rest.join("/")}` : "" };
}

/** The HTTP handler serving the webhook routes for `target`. */
export function createWebhookHandler(target: WebhookTarget): HttpHandler {
  const parsed = new WeakMap<HttpRequestHead, WebhookPath>();
  return {
    route(head) {
      const p = parseWebhookPath(head.path);
      if (p === null) return null;
      if ("status" in p) return p;
      const limit = target.maxBodyBytes(p.channel);
      if (limit === undefined) return json(404, `unknown channel "${p.channel}"`);
      parsed.set(head, p);
      return { maxBodyBytes: limit };
    },
    async handle(head, body) {
      const p = parsed.get(head) ?? (parseWebhookPath(head.path) as WebhookPath);
      return target.handleWebhook({
        channel: p.channel,
        account: p.account,
        method: head.method,
        path: p.rest,
        query: head.query,
        headers: head.headers,
        body,
        remoteAddress: head.remoteAddress,
      });
    },
  };
}
