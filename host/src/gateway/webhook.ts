/**
 * The webhook routes: `/webhook/<channel>` and `/webhook/<channel>/<account>` (any method; the
 * channel plugin decides what each means, e.g. a GET verification handshake). Not behind the
 * gateway token: platforms cannot present it; the plugin's signature check authenticates them.
 * What can be decided from the head (account served, signature header present, rate, in-flight
 * budget) is decided here, before the body is read or a plugin runs.
 */
import type { IntakeRefusal, WebhookHttpRequest, WebhookPolicy } from "../channels/index.js";
import type { WebhookLimits } from "../config/index.js";
import type { HttpAnswer, HttpHandler, HttpRequestHead } from "./types.js";
import { AddressBuckets, InFlightBudget } from "./webhook-intake.js";

/** Channel and account names in a webhook URL (after percent-decoding). */
export const WEBHOOK_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

// WebhookPolicy and IntakeRefusal are the channels' own types (channels/types.ts): the service
// implements them and sits below the gateway.
export type { IntakeRefusal, WebhookPolicy };

/** What the webhook routes call (the channels service implements it). */
export interface WebhookTarget {
  /** The policy of `channel`; undefined when the channel is not configured (404). */
  webhookPolicy(channel: string): WebhookPolicy | undefined;
  /** Notes (counts, logs) a request refused before its body was read. Must not throw. */
  intakeRefused(refusal: { channel: string; account: string; reason: IntakeRefusal; remoteAddress: string }): void;
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

/** An error answer with `Retry-After: <seconds>` (RFC 9110 section 10.2.3). */
function retryLater(status: number, error: string, seconds: number): HttpAnswer {
  const a = json(status, error);
  a.headers["retry-after"] = String(seconds);
  return a;
}

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

/** Methods that carry no signed body (verification handshakes): exempt from the signature header check. */
const BODYLESS_METHODS = new Set(["GET", "HEAD"]);

/**
 * The HTTP handler serving the webhook routes for `target`. From the head alone, in this order:
 * path (400), channel (404), per-address token bucket (429 + Retry-After), account (404),
 * plugin loaded (503), declared signature header present (401), requests in flight from the
 * address (429 + Retry-After), in-flight budget (503 + Retry-After); only then is the body read,
 * within `bodyTimeoutMs` (408 past it). The reservation is released by the transport when
 * the request is done with (see {@link HttpHandler.route}).
 * @param limits `[gateway.webhooks]`
 */
export function createWebhookHandler(target: WebhookTarget, limits: WebhookLimits): HttpHandler {
  const parsed = new WeakMap<HttpRequestHead, WebhookPath>();
  const buckets = new AddressBuckets(limits.perAddressRate, limits.perAddressBurst);
  const budget = new InFlightBudget(limits);
  return {
    route(head) {
      const p = parseWebhookPath(head.path);
      if (p === null) return null;
      if ("status" in p) return p;
      const policy = target.webhookPolicy(p.channel);
      if (policy === undefined) return json(404, `unknown channel "${p.channel}"`);
      const refuse = (reason: IntakeRefusal, answer: HttpAnswer): HttpAnswer => {
        target.intakeRefused({ channel: p.channel, account: p.account, reason, remoteAddress: head.remoteAddress });
        return answer;
      };
      const wait = buckets.take(head.remoteAddress);
      if (wait > 0) return refuse("throttled", retryLater(429, `too many webhook requests from ${head.remoteAddress}; retry in ${wait} s`, wait));
      if (!policy.accounts.includes(p.account)) return refuse("unknownAccount", json(404, `unknown account "${p.account}" of channel "${p.channel}"`));
      if (policy.signatureHeaders === undefined) return refuse("pluginNotLoaded", retryLater(503, `channel "${p.channel}": its plugin is not loaded`, 1));
      const declared = policy.signatureHeaders.length > 0 && !BODYLESS_METHODS.has(head.method);
      const signed = declared && policy.signatureHeaders.some((h) => head.headers[h] !== undefined);
      if (declared && !signed) return refuse("missingSignature", json(401, `missing signature header (${policy.signatureHeaders.join(" or ")})`));
      const length = Number(head.headers["content-length"]);
      // A chunked body (no Content-Length) may grow to the channel's limit: reserve that much.
      const expected = Number.isSafeInteger(length) && length >= 0 && length <= policy.maxBodyBytes ? length : policy.maxBodyBytes;
      const release = budget.reserve(expected, signed, head.remoteAddress);
      if (release === "address") return refuse("throttled", retryLater(429, `too many webhook requests in flight from ${head.remoteAddress}; retry later`, 1));
      if (release === "budget") return refuse("overloaded", retryLater(503, "too many webhook requests in flight; retry later", 1));
      parsed.set(head, p);
      return { maxBodyBytes: policy.maxBodyBytes, release, bodyTimeoutMs: limits.bodyTimeoutMs };
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
