// HTTP routing for the LLM provider emulator: one node:http server speaking the Anthropic,
// OpenAI, Ollama and Gemini chat wire formats, plus a few control endpoints.
import { handleEmbeddings, isEmbeddingsPath } from "./embeddings.mjs";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import * as anthropic from "./anthropic.mjs";
import * as gemini from "./gemini.mjs";
import * as ollama from "./ollama.mjs";
import * as openai from "./openai.mjs";
import { planError, planReply } from "./respond.mjs";
import { cachedTokens, decide, inputTokens, outputTokens, slowTokenDelay } from "./script.mjs";

/** @typedef {import("./respond.mjs").ProviderFormat} ProviderFormat */
/** @typedef {import("./wire.mjs").Plan} Plan */

/**
 * @typedef {object} RecordedRequest
 * @property {"anthropic" | "openai" | "ollama" | "gemini"} provider
 * @property {string} path    URL path without the query string
 * @property {http.IncomingHttpHeaders} headers
 * @property {any} body       the parsed JSON body (the raw text when it is not JSON)
 */

/**
 * @typedef {object} EmulatorOptions
 * @property {number} [port]      0 (default) picks a free port
 * @property {string} [host]      default "127.0.0.1"
 * @property {number} [latencyMs] delay before the first byte of every model response
 * @property {boolean} [record]   keep model requests in `requests` (default true; turn off
 *                                for long benchmarks so memory stays flat)
 */

/**
 * @typedef {object} Emulator
 * @property {string} url         e.g. "http://127.0.0.1:43123" (no trailing slash)
 * @property {number} port
 * @property {RecordedRequest[]} requests live list of model requests received
 * @property {RecordedRequest[]} abandoned live list of model requests whose client closed the
 *                                connection before the response was complete (an aborted or
 *                                timed-out call); a cut the emulator makes itself is not listed
 * @property {(pred: (r: RecordedRequest) => boolean, timeoutMs?: number) => Promise<RecordedRequest>} waitForAbandoned
 *                                resolves with the first abandoned request matching `pred`
 *                                (already listed or future); rejects after `timeoutMs` (default 15000)
 * @property {(rule: FaultRule) => FaultRule} fault  scripts failures by provider, model or key
 *                                (checked before the content-driven script; first match wins);
 *                                returns the live rule, whose `hits` counts the requests it failed
 * @property {() => void} clearFaults removes every fault rule
 * @property {() => void} reset   clears `requests` and `abandoned`
 * @property {() => Promise<void>} close
 */

/**
 * A failure the emulator answers instead of the scripted reply, for requests matching every
 * given field (resilience tests: one provider, model or key fails while others answer).
 * @typedef {object} FaultRule
 * @property {"anthropic" | "openai" | "ollama"} [provider]
 * @property {string} [model]   exact `model` of the request body
 * @property {string} [key]     a substring of the credential (`x-api-key` or `Authorization`)
 * @property {"http_500" | "http_429" | "overloaded" | "http_401" | "http_400" | "cut"} mode
 *   `overloaded`: Anthropic 529, OpenAI and Ollama 503; `cut`: a streamed answer starts
 *   ("Partial ") and the connection is destroyed
 * @property {string} [retryAfter] `retry-after` header value sent with the error (seconds or an HTTP date)
 * @property {number} [times]   requests it fails before it lapses; default unlimited
 * @property {number} [hits]    requests it failed so far (kept by the emulator)
 */

/** @type {ReadonlyMap<string, ProviderFormat>} */
const MODEL_ROUTES = new Map(
  /** @type {[string, ProviderFormat][]} */ ([
    ["/v1/messages", anthropic],
    ["/v1/chat/completions", openai],
    ["/api/chat", ollama],
  ]),
);

const DEFAULT_MODEL = "emulator";
const DELAY_HEADER = "x-emulator-delay-ms";

const OLLAMA_TAGS = {
  models: [
    {
      name: `${DEFAULT_MODEL}:latest`,
      model: `${DEFAULT_MODEL}:latest`,
      modified_at: "2025-01-01T00:00:00Z",
      size: 0,
      digest: "0".repeat(64),
      details: {
        parent_model: "",
        format: "gguf",
        family: DEFAULT_MODEL,
        families: [DEFAULT_MODEL],
        parameter_size: "0B",
        quantization_level: "none",
      },
    },
  ],
};

/**
 * A credential the emulator refuses with the provider's authentication error (on the model
 * routes, `GET /v1/models` and `GET /v1beta/models`): any key containing `invalid`, e.g.
 * `sk-invalid`. Every other key is accepted. Gemini refuses it as the real API does, with 400
 * `INVALID_ARGUMENT` and reason `API_KEY_INVALID`; the others with 401.
 */
const REJECTED_KEY = /invalid/;

/** The model ids `GET /v1/models` lists (any model name is answered; these are what a picker offers). */
export const LISTED_MODELS = [DEFAULT_MODEL, `${DEFAULT_MODEL}-large`];

/** `GET /v1/models` in Anthropic's shape (source: Anthropic API reference, "List Models"). */
const ANTHROPIC_MODELS = {
  data: LISTED_MODELS.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" })),
  has_more: false,
  first_id: LISTED_MODELS[0],
  last_id: LISTED_MODELS.at(-1),
};

/** `GET /v1/models` in OpenAI's shape (source: OpenAI API reference, "List models"). */
const OPENAI_MODELS = { object: "list", data: LISTED_MODELS.map((id) => ({ id, object: "model", created: 1735689600, owned_by: "emulator" })) };

/**
 * Start the emulator.
 * @param {EmulatorOptions} [options]
 * @returns {Promise<Emulator>}
 */
export async function startEmulator({ port = 0, host = "127.0.0.1", latencyMs = 0, record = true } = {}) {
  /** @type {RecordedRequest[]} */
  const requests = [];
  /** @type {RecordedRequest[]} */
  const abandoned = [];
  /** @type {Set<() => void>} */
  const watchers = new Set();
  const onAbandoned = (/** @type {RecordedRequest} */ entry) => {
    abandoned.push(entry);
    for (const w of watchers) w();
  };
  /** @type {FaultRule[]} */
  const faults = [];
  const state = { requests, latencyMs, record, onAbandoned, faults };
  const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    route(req, res, state).catch((error) => abort(res, error));
  });
  server.keepAliveTimeout = 65_000;
  await listen(server, port, host);
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`,
    port: address.port,
    requests,
    abandoned,
    waitForAbandoned: (pred, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = abandoned.find(pred);
          if (!hit) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error("no matching abandoned request"));
        }, timeoutMs);
        watchers.add(check);
        check();
      }),
    fault: (rule) => {
      const live = { ...rule, hits: 0 };
      faults.push(live);
      return live;
    },
    clearFaults: () => {
      faults.length = 0;
    },
    reset: () => {
      requests.length = 0;
      abandoned.length = 0;
    },
    close: () => close(server),
  };
}

/**
 * @param {http.Server} server
 * @param {number} port
 * @param {string} host
 * @returns {Promise<void>}
 */
function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * @param {http.Server} server
 * @returns {Promise<void>}
 */
function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * @typedef {object} ServerState
 * @property {RecordedRequest[]} requests
 * @property {number} latencyMs
 * @property {boolean} record
 * @property {(entry: RecordedRequest) => void} onAbandoned
 * @property {FaultRule[]} faults
 */

/**
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {ServerState} state
 */
async function route(req, res, state) {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const embeddings = req.method === "POST" && isEmbeddingsPath(path);
  const provider = req.method === "POST" && !embeddings ? (MODEL_ROUTES.get(path) ?? (gemini.matchRoute(path) ? gemini : undefined)) : undefined;
  const listing = req.method === "GET" && (path === "/v1/models" || path === "/v1beta/models");
  if ((provider || listing) && REJECTED_KEY.test(credential(req))) {
    req.resume();
    const format = provider ?? (path === "/v1beta/models" ? gemini : req.headers["anthropic-version"] ? anthropic : openai);
    const plan =
      format === gemini
        ? planError(gemini, "invalid_key", "API key not valid. Please pass a valid API key.")
        : planError(format, "authentication", "invalid x-api-key");
    await writePlan(res, plan, 0, 0);
  } else if (req.method === "GET" && path === "/v1beta/models") {
    req.resume();
    sendJson(res, 200, gemini.modelList(DEFAULT_MODEL));
  } else if (req.method === "GET" && path === "/v1/models") {
    req.resume();
    sendJson(res, 200, req.headers["anthropic-version"] ? ANTHROPIC_MODELS : OPENAI_MODELS);
  } else if (provider) {
    await handleModel(provider, req, res, path, state);
  } else if (embeddings) {
    const body = parseJsonObject(await readBody(req));
    handleEmbeddings(path, body, (status, out) => sendJson(res, status, out));
  } else {
    handleControl(req, res, path, state.requests);
  }
}

/**
 * @param {ProviderFormat} provider
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {string} path
 * @param {ServerState} state
 */
async function handleModel(provider, req, res, path, { requests, latencyMs, record, onAbandoned, faults }) {
  const raw = await readBody(req);
  const body = parseJsonObject(raw);
  if (record) {
    const entry = { provider: provider.name, path, headers: req.headers, body: body ?? raw.toString("utf8"), bytes: raw.length };
    requests.push(entry);
    // Closed before the response was complete, and not by the emulator's own cut: the client
    // gave up (abort signal, timeout) — what stall tests check.
    res.once("close", () => {
      if (!res.writableFinished && !cutByEmulator.has(res)) onAbandoned(entry);
    });
  }
  if (!body) {
    await writePlan(res, planError(provider, "invalid_request", "Request body is not a JSON object"), latencyMs, 0);
    return;
  }
  // Gemini names the model in the path, the others in the body.
  const model = typeof body.model === "string" ? body.model : (gemini.matchRoute(path)?.model ?? DEFAULT_MODEL);
  const fault = faults.find(
    (f) =>
      (f.times === undefined || (f.hits ?? 0) < f.times) &&
      (f.provider === undefined || f.provider === provider.name) &&
      (f.model === undefined || f.model === model) &&
      (f.key === undefined || credential(req).includes(f.key)),
  );
  if (fault) {
    fault.hits = (fault.hits ?? 0) + 1;
    await writePlan(res, faultPlan(provider, fault, body, path), latencyMs, 0);
    return;
  }
  const conversation = provider.parse(body);
  const decided = decide(conversation);
  const reply =
    decided.kind === "failure" && decided.quoteCredential ? { ...decided, message: `${decided.message}; credential received: ${credential(req)}` } : decided;
  const ctx = {
    model: typeof body.model === "string" ? body.model : (gemini.matchRoute(path)?.model ?? DEFAULT_MODEL),
    stream: provider.isStream(body, path),
    inputTokens: inputTokens(raw.length),
    outputTokens: outputTokens(reply),
    cachedTokens: cachedTokens(conversation.lastUserText, inputTokens(raw.length)),
    body,
  };
  const chunkDelayMs = headerDelay(req) || slowTokenDelay(conversation.lastUserText);
  await writePlan(res, planReply(provider, reply, ctx), latencyMs, chunkDelayMs);
}

/**
 * The response of a fault rule.
 * @param {ProviderFormat} provider
 * @param {FaultRule} fault
 * @param {Record<string, any>} body
 * @param {string} path URL path without the query string
 * @returns {Plan}
 */
function faultPlan(provider, fault, body, path) {
  const kind = /** @type {const} */ ({
    http_500: "server",
    http_429: "rate_limit",
    overloaded: "overloaded",
    http_401: "authentication",
    http_400: "invalid_request",
  });
  if (fault.mode === "cut") {
    const ctx = {
      model: typeof body.model === "string" ? body.model : (gemini.matchRoute(path)?.model ?? DEFAULT_MODEL),
      stream: provider.isStream(body, path),
      inputTokens: 1,
      outputTokens: 1,
      body,
    };
    return planReply(provider, { kind: "failure", mode: "cut", message: "Emulated connection cut", partial: "Partial ", quoteCredential: false }, ctx);
  }
  const plan = planError(provider, kind[fault.mode], `Emulated ${fault.mode}`);
  return fault.retryAfter === undefined ? plan : { ...plan, headers: { ...plan.headers, "retry-after": fault.retryAfter } };
}

/**
 * The credential a model request carried, verbatim (`x-api-key`, else `x-goog-api-key`, else
 * `Authorization`), for failures scripted to quote it.
 * @param {http.IncomingMessage} req
 * @returns {string}
 */
function credential(req) {
  const value = req.headers["x-api-key"] ?? req.headers["x-goog-api-key"] ?? req.headers.authorization ?? "(none)";
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * Control and metadata endpoints.
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 * @param {string} path
 * @param {RecordedRequest[]} requests
 */
function handleControl(req, res, path, requests) {
  req.resume();
  switch (`${req.method} ${path}`) {
    case "GET /_requests":
      return sendJson(res, 200, requests);
    case "POST /_reset":
      requests.length = 0;
      return sendJson(res, 200, { ok: true });
    case "GET /api/tags":
      return sendJson(res, 200, OLLAMA_TAGS);
    case "GET /api/version":
      return sendJson(res, 200, { version: "0.0.0" });
    case "GET /":
    case "HEAD /":
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      return void res.end("Ollama is running");
    default:
      return sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  }
}

/**
 * Write a plan: optional latency before the first byte, frames separated by
 * `chunkDelayMs`, then end (or destroy the socket for a cut connection).
 * @param {http.ServerResponse} res
 * @param {Plan} plan
 * @param {number} latencyMs
 * @param {number} chunkDelayMs
 */
async function writePlan(res, plan, latencyMs, chunkDelayMs) {
  if (latencyMs > 0) await sleep(latencyMs);
  if (res.destroyed) return;
  if (plan.ending === "stall_before_headers") return untilClosed(res);
  res.writeHead(plan.status, plan.headers);
  if (plan.ending === "end" && chunkDelayMs === 0) {
    res.end(plan.frames.join(""));
    return;
  }
  res.flushHeaders();
  for (const [i, frame] of plan.frames.entries()) {
    if (i > 0 && chunkDelayMs > 0) await sleep(chunkDelayMs);
    if (res.destroyed) return;
    await writeFrame(res, frame);
  }
  if (plan.ending === "destroy") {
    cutByEmulator.add(res);
    res.destroy();
  } else if (plan.ending === "stall") await untilClosed(res);
  else res.end();
}

/** Responses the emulator destroyed itself (scripted cuts), not abandoned by the client. */
const cutByEmulator = new WeakSet();

/**
 * Resolves when the response's connection closes (the client gave up, or the server closed).
 * @param {http.ServerResponse} res
 * @returns {Promise<void>}
 */
function untilClosed(res) {
  return new Promise((resolve) => {
    if (res.destroyed || res.closed) return resolve();
    res.once("close", () => resolve());
  });
}

/**
 * Write one frame and wait until it is flushed (or the response closed).
 * @param {http.ServerResponse} res
 * @param {string} frame
 * @returns {Promise<void>}
 */
function writeFrame(res, frame) {
  return new Promise((resolve) => {
    const done = () => {
      res.off("close", done);
      resolve();
    };
    res.once("close", done);
    res.write(frame, done);
  });
}

/**
 * @param {http.IncomingMessage} req
 * @returns {number}
 */
function headerDelay(req) {
  const value = Number(req.headers[DELAY_HEADER]);
  return Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * @param {http.IncomingMessage} req
 * @returns {Promise<Buffer>}
 */
async function readBody(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * @param {Buffer} raw
 * @returns {Record<string, any> | null}
 */
function parseJsonObject(raw) {
  try {
    const value = JSON.parse(raw.toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 */
function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/**
 * Last-resort handler for a bug in the emulator itself.
 * @param {http.ServerResponse} res
 * @param {unknown} error
 */
function abort(res, error) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, 500, { error: `emulator failure: ${error instanceof Error ? error.message : String(error)}` });
}
