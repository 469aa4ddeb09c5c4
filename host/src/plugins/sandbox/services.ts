// The main-thread half of the host functions that touch secret values: http_request (secret
// substitution, the grant re-checked on every hop, redirects followed by hand, response size
// capped), hmac_verify and secret_equals. Secret values never leave the main thread.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { EffectiveGrant } from "../capabilities.js";
import { HMAC_ALGORITHMS, MAX_HMAC_DATA_BYTES, MAX_HTTP_BODY_BYTES, httpDenial } from "./protocol.mjs";
import type { HostServices } from "./types.js";

/** Options of {@link createHostServices}. */
export interface HostServicesOptions {
  /** The fetch implementation; default the global `fetch`. */
  fetch?: typeof fetch;
  /** Largest response body handed to a plugin, bytes; default 4 MiB. Larger is an error. */
  maxResponseBytes?: number;
  /** Redirects followed (each target re-checked against the grant); default 5. */
  maxRedirects?: number;
}

/** An HTTP request a plugin may not make or that failed; the message is safe to show the plugin. */
export class HostHttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostHttpError";
  }
}

const PLACEHOLDER = /\{\{secret:([A-Za-z0-9_]+)\}\}/g;

/**
 * Replaces `{{secret:NAME}}` placeholders with granted secret values.
 * @param used collects the names substituted
 * @throws HostHttpError naming the first placeholder whose secret is not granted.
 */
export function substituteSecrets(text: string, secrets: Record<string, string> | undefined, used?: Set<string>): string {
  if (!text.includes("{{secret:")) return text;
  return text.replace(PLACEHOLDER, (_m, name: string) => {
    if (secrets === undefined || !Object.hasOwn(secrets, name)) {
      throw new HostHttpError(`secret '${name}' is not granted to this plugin (capability 'secrets')`);
    }
    used?.add(name);
    return secrets[name] as string;
  });
}

/** Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`): plain http there does not cross a network. */
export function isLoopbackUrl(url: URL): boolean {
  const h = url.hostname.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Refuses to send secrets `used` in clear text: only over https, or http to loopback, unless the
 * operator set `allow_insecure` on every one of them.
 * @throws HostHttpError naming the first secret (never its value) and the origin
 */
export function checkSecretTransport(url: URL, used: Iterable<string>, grant: EffectiveGrant): void {
  if (url.protocol === "https:" || isLoopbackUrl(url)) return;
  for (const name of used) {
    if (grant.insecureSecrets?.includes(name)) continue;
    throw new HostHttpError(
      `secret '${name}' is sent only over https (or http to loopback), not to ${url.origin}; the operator can allow it with allow_insecure = true on the secret in [plugins.grants]`,
    );
  }
}

/** Replaces every occurrence of a secret value (raw and URL-encoded) in `text` by its placeholder. */
export function redactSecrets(text: string, secrets: Record<string, string> | undefined): string {
  if (secrets === undefined) return text;
  let out = text;
  for (const [name, value] of Object.entries(secrets)) {
    if (value.length === 0) continue;
    for (const form of new Set([value, encodeURIComponent(value), encodeURI(value)])) {
      out = out.split(form).join(`{{secret:${name}}}`);
    }
  }
  return out;
}

/** `err.message`, followed by its cause's message when it adds one (fetch's "fetch failed" hides the reason in `cause`). */
function messageWithCause(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message && !err.message.includes(cause.message)) return `${err.message}: ${cause.message}`;
    return err.message;
  }
  return String(err);
}

async function readCapped(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {});
    throw new HostHttpError(`response body is ${declared} bytes, over the ${max}-byte limit`);
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new HostHttpError(`response body is over the ${max}-byte limit`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The default {@link HostServices}: HTTP with the global fetch.
 *
 * - `{{secret:NAME}}` in the URL or a header value is replaced by `grant.secrets[NAME]`; a name
 *   not granted fails the request. Secrets cannot appear in the host name (the worker parses the
 *   URL before substitution), and the substituted URL is checked against the grant again.
 * - Secrets go only over https, or http to loopback, unless every secret used has the
 *   operator's `allow_insecure` (`insecureSecrets`); otherwise the request is refused unsent.
 * - Redirects are followed by hand (`redirect: "manual"`), up to `maxRedirects`, each target
 *   checked against the grant; headers that carried a secret are dropped when a redirect leaves
 *   the origin. 303 (and 301/302 after a POST) continue as GET without a body, like fetch.
 * - The response body is capped at `maxResponseBytes`.
 * - Error messages never contain a secret value (they are redacted back to placeholders).
 *
 * Throws HostHttpError (or the fetch error, redacted) — the sandbox turns it into
 * `{ok: false, error}` for the plugin.
 */
export function createHostServices(options: HostServicesOptions = {}): HostServices {
  const doFetch = options.fetch ?? fetch;
  const maxBytes = options.maxResponseBytes ?? MAX_HTTP_BODY_BYTES;
  const maxRedirects = options.maxRedirects ?? 5;
  return {
    async http(req, grant: EffectiveGrant, signal) {
      const secrets = grant.secrets;
      try {
        const secretHeaders = new Set<string>();
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          const used = new Set<string>();
          headers[name] = substituteSecrets(value, secrets, used);
          if (used.size > 0) secretHeaders.add(name);
        }
        const urlSecrets = new Set<string>();
        let url = new URL(substituteSecrets(req.url, secrets, urlSecrets));
        const allUsed = new Set([...urlSecrets]);
        for (const [name, value] of Object.entries(req.headers)) if (secretHeaders.has(name)) substituteSecrets(value, secrets, allUsed);
        checkSecretTransport(url, allUsed, grant);
        let method = req.method.toUpperCase();
        let body: Uint8Array | undefined = req.body;
        for (let hop = 0; ; hop++) {
          const denial = httpDenial(grant.http, method, url);
          if (denial !== null) throw new HostHttpError(hop === 0 ? denial : `redirect to ${url.origin}: ${denial}`);
          const res = await doFetch(url, {
            method,
            headers,
            redirect: "manual",
            signal,
            ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body: body as Uint8Array<ArrayBuffer> } : {}),
          });
          const location = res.headers.get("location");
          if (res.status >= 300 && res.status < 400 && location !== null && hop < maxRedirects) {
            await res.body?.cancel().catch(() => {});
            const next = new URL(location, url);
            // A header secret never leaves its origin (a scheme change, https -> http, is another origin).
            if (next.origin !== url.origin) for (const h of secretHeaders) delete headers[h];
            if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
              if (method !== "HEAD") method = "GET";
              body = undefined;
            }
            url = next;
            continue;
          }
          const bytes = await readCapped(res, maxBytes);
          const outHeaders: Record<string, string> = {};
          res.headers.forEach((value, name) => {
            outHeaders[name] = value;
          });
          return { status: res.status, headers: outHeaders, body: bytes };
        }
      } catch (err) {
        if (signal.aborted) throw new HostHttpError("the request was cancelled (time limit reached)");
        throw new HostHttpError(redactSecrets(messageWithCause(err), secrets));
      }
    },
  };
}

/** A hmac_verify / secret_equals request the host refuses; the message is safe to show the plugin. */
export class HostSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostSecretError";
  }
}

function grantedSecret(secrets: Record<string, string> | undefined, name: string): string {
  if (secrets === undefined || !Object.hasOwn(secrets, name)) {
    const names = Object.keys(secrets ?? {});
    throw new HostSecretError(
      `secret '${name}' is not granted to this plugin (capability 'secrets' grants ${names.length > 0 ? names.map((n) => `'${n}'`).join(", ") : "no secrets"})`,
    );
  }
  return secrets[name] as string;
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Host side of `hmac_verify`: whether `signature` (hex, either case) is HMAC-`algorithm` of
 * `data` keyed with the granted secret `secret`. The comparison is constant-time
 * (`crypto.timingSafeEqual`); a signature of the wrong length or not hex is simply `false`, so
 * a forged header cannot make the host throw.
 * @throws HostSecretError when the secret is not granted, the algorithm is not sha256/sha1, or
 *   `data` is over 4 MiB. Messages name the secret, never its value.
 */
export function hmacVerify(grant: EffectiveGrant, params: { algorithm: string; secret: string; data: Uint8Array; signature: string }): boolean {
  const algorithm = params.algorithm.toLowerCase();
  if (!HMAC_ALGORITHMS.includes(algorithm)) {
    throw new HostSecretError(`algorithm '${params.algorithm}' is not supported (use ${HMAC_ALGORITHMS.map((a) => `'${a}'`).join(" or ")})`);
  }
  if (params.data.length > MAX_HMAC_DATA_BYTES) {
    throw new HostSecretError(`data is ${params.data.length} bytes, over the ${MAX_HMAC_DATA_BYTES}-byte limit`);
  }
  const key = grantedSecret(grant.secrets, params.secret);
  const mac = createHmac(algorithm, key).update(params.data).digest();
  if (!HEX.test(params.signature) || params.signature.length !== mac.length * 2) return false;
  return timingSafeEqual(mac, Buffer.from(params.signature, "hex"));
}

/**
 * Host side of `secret_equals`: whether `value` equals the granted secret `secret`. Both sides
 * are hashed (SHA-256) before the constant-time comparison, so neither the content nor the
 * length of the secret leaks through timing.
 * @throws HostSecretError when the secret is not granted (the message names it, not its value).
 */
export function secretEquals(grant: EffectiveGrant, params: { secret: string; value: string }): boolean {
  const secret = grantedSecret(grant.secrets, params.secret);
  const a = createHash("sha256").update(params.value, "utf8").digest();
  const b = createHash("sha256").update(secret, "utf8").digest();
  return timingSafeEqual(a, b);
}
