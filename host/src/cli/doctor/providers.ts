import type { Config, ProviderName } from "../../config/index.js";
import { causeCode, error, ok, warn, type Finding } from "./types.js";

/** How long one provider check may take, ms (connect + response). */
export const PROVIDER_TIMEOUT_MS = 10_000;

const KEY_VAR: Record<ProviderName, string | undefined> = {
  anthropic: "ANTHROPIC_API_KEY",
  openai: "OPENAI_API_KEY",
  ollama: undefined,
  gemini: "GEMINI_API_KEY",
};
const BASE_VAR: Record<ProviderName, string> = {
  anthropic: "ANTHROPIC_BASE_URL",
  openai: "OPENAI_BASE_URL",
  ollama: "OLLAMA_HOST",
  gemini: "GOOGLE_GEMINI_BASE_URL",
};

/**
 * Lists the provider's models through its official SDK: the cheapest authenticated call each
 * offers (no tokens spent). Anthropic `GET /v1/models`, OpenAI `GET /v1/models`, Ollama
 * `GET /api/tags`, Gemini `GET /v1beta/models` (ids without the `models/` prefix) (sources: each
 * provider's API reference, "List models").
 * @returns the model ids
 * @throws the SDK's error (an `APIError` with `status` for HTTP errors)
 */
async function listModels(name: ProviderName, endpoint: Config["providers"][ProviderName]): Promise<string[]> {
  const common = { apiKey: endpoint.apiKey ?? "", baseURL: endpoint.baseUrl ?? null, timeout: PROVIDER_TIMEOUT_MS, maxRetries: 0 };
  if (name === "anthropic") {
    const { default: Sdk } = await import("@anthropic-ai/sdk");
    const page = await new Sdk(common).models.list({ limit: 1000 });
    return page.data.map((m) => m.id);
  }
  if (name === "openai") {
    const { default: Sdk } = await import("openai");
    const page = await new Sdk(common).models.list();
    return page.data.map((m) => m.id);
  }
  if (name === "gemini") {
    const { GoogleGenAI } = await import("@google/genai");
    const sdk = new GoogleGenAI({
      apiKey: endpoint.apiKey ?? "",
      vertexai: false,
      httpOptions: { ...(endpoint.baseUrl ? { baseUrl: endpoint.baseUrl } : {}), timeout: PROVIDER_TIMEOUT_MS },
    });
    const ids: string[] = [];
    for await (const m of await sdk.models.list({ config: { pageSize: 1000 } })) if (m.name) ids.push(m.name.replace(/^models\//, ""));
    return ids;
  }
  const { Ollama } = await import("ollama");
  const signal = AbortSignal.timeout(PROVIDER_TIMEOUT_MS);
  const client = new Ollama({ host: endpoint.baseUrl ?? "http://127.0.0.1:11434", fetch: (input, init) => fetch(input, { ...init, signal }) });
  const tags = await client.list();
  return tags.models.flatMap((m) => [m.name, m.name.replace(/:latest$/, "")]);
}

/**
 * Checks each provider the agents use: its key is set (Anthropic, OpenAI) and accepted, with
 * the latency of one model-list call; then that each agent's model is in the list (a warning
 * otherwise: OpenAI-compatible servers may serve models they do not list). Never prints a key.
 */
export async function checkProviders(config: Config): Promise<Finding[]> {
  const findings: Finding[] = [];
  const used = [...new Set(config.agents.map((a) => a.provider))];
  await Promise.all(
    used.map(async (name) => {
      const check = `provider:${name}`;
      const endpoint = config.providers[name];
      const where = endpoint.baseUrl ?? (name === "ollama" ? "http://127.0.0.1:11434" : "the SDK's default URL");
      const keyVar = KEY_VAR[name];
      const keyFix = `set a valid key in ${keyVar} (or in the variable [providers.${name}] api_key_env names)`;
      if (keyVar !== undefined && !endpoint.apiKey && endpoint.baseUrl === undefined) {
        findings.push(error(check, `no API key for ${name} (${keyVar} is not set)`, keyFix));
        return;
      }
      const started = performance.now();
      let models: string[];
      try {
        models = await listModels(name, endpoint);
      } catch (err) {
        const status = (err as { status?: number }).status;
        const latencyMs = Math.round(performance.now() - started);
        // Gemini refuses an unknown key with 400 and ErrorInfo reason API_KEY_INVALID, not 401.
        const keyRefused = status === 401 || status === 403 || (status === 400 && /API_KEY_INVALID/.test(String((err as Error).message)));
        if (keyRefused) findings.push(error(check, `${name} at ${where} refused the API key (HTTP ${status})`, keyFix, { latencyMs }));
        else if (status !== undefined)
          findings.push(
            error(
              check,
              `${name} at ${where} answered HTTP ${status}: ${firstLine(err)}`,
              `check ${BASE_VAR[name]} / [providers.${name}] base_url and the provider's status page`,
              { latencyMs },
            ),
          );
        else
          findings.push(
            error(
              check,
              `${name} is not reachable at ${where}: ${firstLine(err)}${causeCode(err)}`,
              name === "ollama" ? `start Ollama (ollama serve), or set OLLAMA_HOST` : `check the network, or ${BASE_VAR[name]} / [providers.${name}] base_url`,
              {
                latencyMs,
              },
            ),
          );
        return;
      }
      const latencyMs = Math.round(performance.now() - started);
      findings.push(ok(check, `${name} at ${where} accepted the key: ${models.length} model(s) listed in ${latencyMs} ms`, { latencyMs }));
      for (const agent of config.agents.filter((a) => a.provider === name)) {
        if (models.length > 0 && !models.includes(agent.model))
          findings.push(
            warn(
              `agent:${agent.id}`,
              `model "${agent.model}" of agent ${agent.id} is not in ${name}'s model list`,
              `set model to one of: ${models.slice(0, 8).join(", ")}${models.length > 8 ? ", ..." : ""} ([[agents]] model, or EXOCLAW_MODEL)`,
            ),
          );
      }
    }),
  );
  return findings;
}

/** The first line of an error's message, for one-line findings. */
function firstLine(err: unknown): string {
  return String((err as Error).message ?? err).split("\n")[0]!;
}
