/**
 * Embeddings for vector recall (`[agents.memory] embeddings = "<provider>/<model>"`), through the
 * providers' official SDKs and the endpoints configured for them (`[providers.<name>]`):
 * OpenAI `embeddings.create({model, input})` (openai 6.x), Gemini
 * `models.embedContent({model, contents})` (@google/genai; Developer API, key sent explicitly as
 * for chat), Ollama `embed({model, input})` (ollama 0.6). Vectors are returned L2-normalized as
 * Float32Array, so similarity is a dot product.
 */
import type { ProviderEndpoint } from "../../config/index.js";

/** Embeds texts with one model: one vector per text, in order, unit length. @throws Error from the SDK */
export type Embedder = (model: string, texts: readonly string[], signal?: AbortSignal) => Promise<Float32Array[]>;

/** Providers with an embeddings API here. */
export const EMBEDDING_PROVIDERS = ["openai", "gemini", "ollama"] as const;
/** One of {@link EMBEDDING_PROVIDERS}. */
export type EmbeddingProvider = (typeof EMBEDDING_PROVIDERS)[number];

function unit(v: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(v);
  let n = 0;
  for (const x of out) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < out.length; i++) out[i]! /= n;
  return out;
}

/** Dot product of two unit vectors (cosine similarity); 0 when their dimensions differ. */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * The embedder of `provider` at `endpoint` (the SDK is loaded at the first call).
 * @throws Error at call time when the provider answers with an error or a vector count that does not match
 */
export function createEmbedder(provider: EmbeddingProvider, endpoint: ProviderEndpoint): Embedder {
  const check = (vectors: ArrayLike<number>[] | undefined, n: number, where: string): Float32Array[] => {
    if (!vectors || vectors.length !== n) throw new Error(`${where}: expected ${n} embeddings, got ${vectors?.length ?? 0}`);
    return vectors.map(unit);
  };
  if (provider === "openai") {
    let client: Promise<import("openai").default> | undefined;
    return async (model, texts, signal) => {
      const sdk = await (client ??= import("openai").then(
        ({ default: Sdk }) => new Sdk({ apiKey: endpoint.apiKey ?? "", baseURL: endpoint.baseUrl ?? null, timeout: endpoint.timeoutMs, maxRetries: 0 }),
      ));
      const out = await sdk.embeddings.create({ model, input: [...texts] }, signal ? { signal } : {});
      const ordered = [...out.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
      return check(ordered, texts.length, "openai embeddings");
    };
  }
  if (provider === "gemini") {
    let client: Promise<import("@google/genai").GoogleGenAI> | undefined;
    return async (model, texts, signal) => {
      const sdk = await (client ??= import("@google/genai").then(
        ({ GoogleGenAI: Sdk }) =>
          new Sdk({
            apiKey: endpoint.apiKey ?? "",
            vertexai: false,
            httpOptions: { ...(endpoint.baseUrl ? { baseUrl: endpoint.baseUrl } : {}), timeout: endpoint.timeoutMs },
          }),
      ));
      const out = await sdk.models.embedContent({ model, contents: [...texts], ...(signal ? { config: { abortSignal: signal } } : {}) });
      return check(
        out.embeddings?.map((e) => e.values ?? []),
        texts.length,
        "gemini embeddings",
      );
    };
  }
  let mod: Promise<typeof import("ollama")> | undefined;
  return async (model, texts, signal) => {
    const { Ollama: Sdk } = await (mod ??= import("ollama"));
    const linked: typeof fetch = (input, init) =>
      fetch(input, { ...init, ...(signal ? { signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal } : {}) });
    const sdk = new Sdk({ host: endpoint.baseUrl ?? "http://127.0.0.1:11434", fetch: linked });
    const out = await sdk.embed({ model, input: [...texts] });
    return check(out.embeddings, texts.length, "ollama embeddings");
  };
}
