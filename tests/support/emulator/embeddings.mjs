// Embeddings endpoints of the emulator: OpenAI `POST /v1/embeddings` ({model, input: string |
// string[], encoding_format?: "float" | "base64"} -> {object: "list", data: [{object:
// "embedding", index, embedding: number[] | base64 of float32 LE}], model, usage})
// Ollama `POST /api/embed` ({model, input} -> {model, embeddings}), and Gemini's Developer API
// `POST /v1beta/models/{model}:batchEmbedContents` ({requests: [{model: "models/{model}",
// content: {parts: [{text}]}, taskType?, title?, outputDimensionality?}]} -> {embeddings:
// [{values: number[]}]}) and `:embedContent` ({content, ...} -> {embedding: {values}}) — the
// shapes the official SDKs send and parse (openai 6.x `embeddings.create`, ollama 0.6 `embed`,
// @google/genai 2.x `models.embedContent`, which calls `batchEmbedContents` on the Developer API;
// see ai.google.dev/api/embeddings). Not recorded in `requests` (those are model calls).
//
// The vectors are deterministic "concepts": each word (lower-cased letters and digits) maps to a
// concept — itself, or the head of its group in SYNONYMS — hashed into one of 64 dimensions, and
// the vector is the L2-normalized count of concepts. So "puppy" and "dog" are similar while
// sharing no word, which lets tests tell vector recall from full-text recall.

const DIMENSIONS = 64;
/** Words that mean the same concept (the first of each group names it). */
const SYNONYMS = [
  ["dog", "puppy", "canine", "hound"],
  ["car", "automobile", "vehicle"],
  ["doctor", "physician", "gp"],
];
const CONCEPT = new Map(SYNONYMS.flatMap((group) => group.map((w) => [w, group[0]])));

/** FNV-1a of a string, 32 bits. */
function fnv(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The emulator's embedding of `text` (see the module comment). */
export function embed(text) {
  const v = new Array(DIMENSIONS).fill(0);
  for (const m of String(text)
    .toLowerCase()
    .matchAll(/[\p{L}\p{N}]+/gu)) {
    if (m[0].length < 3) continue;
    v[fnv(CONCEPT.get(m[0]) ?? m[0]) % DIMENSIONS] += 1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** Gemini's embeddings routes: `/v1beta/models/{model}:batchEmbedContents` | `:embedContent`. */
const GEMINI_EMBED = /^\/v1beta\/models\/([^/:]+):(batchEmbedContents|embedContent)$/;

/** Whether `path` is an embeddings route of the emulator. @param {string} path */
export function isEmbeddingsPath(path) {
  return path === "/v1/embeddings" || path === "/api/embed" || GEMINI_EMBED.test(path);
}

/** Text of a Gemini `Content` (its text parts joined). @param {any} content */
function geminiText(content) {
  const parts = Array.isArray(content?.parts) ? content.parts : [];
  return parts.map((/** @type {any} */ p) => (typeof p?.text === "string" ? p.text : "")).join("");
}

/**
 * Answers an embeddings request when `path` is one; returns false otherwise.
 * @param {string} path
 * @param {any} body the parsed JSON body
 * @param {(status: number, body: unknown) => void} send
 */
export function handleEmbeddings(path, body, send) {
  const g = GEMINI_EMBED.exec(path);
  if (g) {
    const model = `models/${decodeURIComponent(g[1] ?? "")}`;
    if (g[2] === "embedContent") {
      send(200, { embedding: { values: embed(geminiText(body?.content)) } });
      return true;
    }
    const requests = Array.isArray(body?.requests) ? body.requests : undefined;
    // The API's checks: a list of requests, each naming the model of the path and carrying content.
    const bad = !requests
      ? "requests must be a list"
      : requests.findIndex((/** @type {any} */ r) => r?.model !== model || !Array.isArray(r?.content?.parts)) >= 0
        ? `each request needs model "${model}" and content.parts`
        : undefined;
    if (bad) {
      send(400, { error: { code: 400, message: `Invalid JSON payload: ${bad}`, status: "INVALID_ARGUMENT" } });
      return true;
    }
    send(200, { embeddings: requests.map((/** @type {any} */ r) => ({ values: embed(geminiText(r.content)) })) });
    return true;
  }
  const inputs = Array.isArray(body?.input) ? body.input : [body?.input ?? ""];
  if (path === "/v1/embeddings") {
    send(200, {
      object: "list",
      // `encoding_format: "base64"` (the openai SDK's default): the float32 little-endian bytes in base64.
      data: inputs.map((t, index) => ({
        object: "embedding",
        index,
        embedding: body?.encoding_format === "base64" ? Buffer.from(new Float32Array(embed(t)).buffer).toString("base64") : embed(t),
      })),
      model: body?.model ?? "emulator-embed",
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    });
    return true;
  }
  if (path === "/api/embed") {
    send(200, { model: body?.model ?? "emulator-embed", embeddings: inputs.map(embed) });
    return true;
  }
  return false;
}
