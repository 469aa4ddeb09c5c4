// Embeddings endpoints of the emulator: OpenAI `POST /v1/embeddings` ({model, input: string |
// string[], encoding_format?: "float" | "base64"} -> {object: "list", data: [{object:
// "embedding", index, embedding: number[] | base64 of float32 LE}], model, usage})
// and Ollama `POST /api/embed` ({model, input} -> {model, embeddings}), the shapes the official
// SDKs parse (openai 6.x `embeddings.create`, ollama 0.6 `embed`). Not recorded in `requests`
// (those are model calls).
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

/**
 * Answers an embeddings request when `path` is one; returns false otherwise.
 * @param {string} path
 * @param {any} body the parsed JSON body
 * @param {(status: number, body: unknown) => void} send
 */
export function handleEmbeddings(path, body, send) {
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
