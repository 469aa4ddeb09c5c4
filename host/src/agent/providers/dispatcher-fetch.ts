import type { Agent, Dispatcher } from "undici";

/**
 * A `fetch` for the official SDKs' `fetch` client option, built on undici's Dispatcher API
 * (`undici.request` on a keep-alive `Agent`) instead of Node's WHATWG `fetch`.
 *
 * Why: per model call the WHATWG fetch builds a `Request`, guarded `Headers`, a body
 * `ReadableStream` for a string body, a transferable `AbortSignal` and a web `ReadableStream`
 * for the response, and the SDK then reads that stream through a reader; measured at 50
 * sessions against the emulator this was about half of the SDK call's CPU (0.65 ms of
 * 1.3 ms per streamed call, GC included). `undici.request` writes the string body as is and
 * hands back a Node `Readable`, which the SDKs' SSE readers iterate directly (they accept any
 * async iterable body).
 *
 * What it keeps of `fetch`'s contract, as far as the Stainless SDKs (`@anthropic-ai/sdk`,
 * `openai`) use it:
 * - the call's `signal` aborts the request, before or after the headers; the error is the
 *   signal's reason (an `AbortError`), mid-body it errors the body stream the same way;
 * - a failure to connect or send rejects with `TypeError("fetch failed")` whose `cause` is the
 *   network error (`code` `ECONNREFUSED`, `ENOTFOUND`, undici's `ConnectTimeoutError`...), as
 *   undici's fetch does, so the SDK wraps it in `APIConnectionError` and the host's error
 *   mapping reads the same `cause` chain;
 * - any status is a resolved response (`ok` false outside 200-299) whose body the SDK reads
 *   with `text()` / `json()` to build its `APIError`.
 *
 * What it does not do: redirects are not followed (model APIs answer in place; a 3xx reaches
 * the SDK as a non-ok status). Bodies other than a string / bytes / nothing (a `FormData`
 * upload, a stream), `Request` inputs and URLs with user info (which fetch refuses) go to the
 * global `fetch` unchanged. Like the global
 * `fetch` on Node 20, no proxy environment variables are read.
 *
 * undici is imported lazily (it is not on the gateway's start-up path), like the SDKs.
 */
export async function loadDispatcherFetch(): Promise<typeof fetch> {
  const undici = await import("undici");
  // One pool for every provider, like the global dispatcher the WHATWG fetch uses; undici's
  // defaults (keep-alive 4 s, headers and body timeouts 300 s) are those of Node's fetch.
  agent ??= new undici.Agent();
  return makeDispatcherFetch(undici.request, agent);
}

let agent: Agent | undefined;

type RequestFn = (
  url: string | URL,
  options: { dispatcher?: Dispatcher } & Omit<Dispatcher.RequestOptions, "origin" | "path" | "method"> & Partial<Pick<Dispatcher.RequestOptions, "method">>,
) => Promise<Dispatcher.ResponseData>;

/** The fetch over a given `request` and dispatcher (exported for tests that pass their own pool). */
export function makeDispatcherFetch(request: RequestFn, dispatcher: Dispatcher): typeof fetch {
  const dispatcherFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const body = init.body;
    const url = input instanceof Request ? "" : typeof input === "string" ? input : input.href;
    if (url === "" || hasUserInfo(url) || (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array))) {
      return fetch(input, init);
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        dispatcher,
        method: (init.method ?? "GET") as Dispatcher.HttpMethod,
        headers: requestHeaders(init.headers),
        body: body ?? null,
        signal: init.signal ?? undefined,
      });
    } catch (err) {
      if (init.signal?.aborted || (err as Error)?.name === "AbortError") throw err;
      throw new TypeError("fetch failed", { cause: err });
    }
    return new DispatcherResponse(url, res) as unknown as Response;
  };
  return dispatcherFetch as typeof fetch;
}

/**
 * Whether a URL carries `user:password@`: WHATWG fetch refuses such a URL before connecting
 * (the credentials would otherwise go unnoticed), so it is left to fetch to refuse it the same way.
 */
function hasUserInfo(url: string): boolean {
  const start = url.indexOf("//") + 2;
  const end = url.indexOf("/", start);
  const at = url.indexOf("@", start);
  return at !== -1 && (end === -1 || at < end);
}

/** `fetch`'s header shapes (a `Headers`, `[name, value]` pairs, a record) onto the record undici takes. */
function requestHeaders(h: RequestInit["headers"]): Record<string, string> | undefined {
  if (h === undefined) return undefined;
  const out: Record<string, string> = {};
  if (h instanceof Headers || Array.isArray(h)) {
    for (const [k, v] of h as Iterable<[string, string]>) out[k] = v;
    return out;
  }
  return h as Record<string, string>;
}

/**
 * The subset of a WHATWG `Response` the SDKs read: `status`, `statusText`, `ok`, `url`,
 * `headers` (a real `Headers`), `body` (a Node `Readable`, async iterable), `bodyUsed`, and
 * `text()` / `json()` / `arrayBuffer()` / `blob()`.
 */
class DispatcherResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly url: string;
  readonly redirected = false;
  readonly type = "basic";
  readonly headers: Headers;
  readonly body: Dispatcher.ResponseData["body"];

  constructor(url: string, res: Dispatcher.ResponseData) {
    this.url = url;
    this.status = res.statusCode;
    this.statusText = res.statusText ?? "";
    this.ok = res.statusCode >= 200 && res.statusCode < 300;
    this.body = res.body;
    const headers = new Headers();
    for (const name in res.headers) {
      const v = res.headers[name];
      if (typeof v === "string") headers.append(name, v);
      else if (Array.isArray(v)) for (const one of v) headers.append(name, one);
    }
    this.headers = headers;
  }

  get bodyUsed(): boolean {
    return this.body.bodyUsed;
  }

  text(): Promise<string> {
    return this.body.text();
  }

  json(): Promise<unknown> {
    return this.body.json();
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.body.arrayBuffer();
  }

  blob(): Promise<Blob> {
    // node:buffer's Blob; the DOM lib (the UI's type-check reaches this file) types the global one apart.
    return this.body.blob() as unknown as Promise<Blob>;
  }
}
