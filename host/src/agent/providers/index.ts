import type { Config, ProviderEndpoint, ProviderName } from "../../config/index.js";
import { DEFAULT_RESILIENCE, type ResiliencePolicy } from "../resilience/index.js";
import type { ModelProvider } from "../types.js";
import type { ProviderOptions } from "./options.js";
import { createAnthropicProvider } from "./anthropic.js";
import { createGeminiProvider } from "./gemini.js";
import { createOllamaProvider } from "./ollama.js";
import { createOpenAIProvider } from "./openai.js";

export { createAnthropicProvider, toAnthropicMessages } from "./anthropic.js";
export { createOpenAIProvider, toOpenAIMessages } from "./openai.js";
export { createOllamaProvider, toOllamaMessages } from "./ollama.js";
export { createGeminiProvider, toGeminiContents } from "./gemini.js";
export type { ProviderOptions } from "./options.js";
export { IdleWatch, DEFAULT_IDLE_TIMEOUT_MS } from "./idle.js";
export { loadDispatcherFetch } from "./dispatcher-fetch.js";
export { providerWarmUp, providersInUse, warmProviders, type ProviderWarmUp } from "./warm.js";
export type { IdleWatchOptions } from "./idle.js";

/**
 * One provider instance per provider name and key, created on first use and shared by every
 * agent that uses it, so the SDK's HTTP keep-alive pool is shared too. `key` numbers the
 * provider's API keys (`apiKeys`, 0-based; default 0; past the last = the last). SDKs are
 * imported lazily, which keeps them off the start-up path.
 */
export function createProviderSet(config: Config["providers"], options: ProviderOptions = {}): (name: ProviderName, key?: number) => ModelProvider {
  const made = new Map<string, ModelProvider>();
  return (name, key = 0) => {
    const keys = config[name].apiKeys;
    const k = keys === undefined ? 0 : Math.min(Math.max(0, key), keys.length - 1);
    let p = made.get(`${name}#${k}`);
    if (!p) {
      const endpoint = keys === undefined ? config[name] : { ...config[name], apiKey: keys[k] };
      p =
        name === "anthropic"
          ? createAnthropicProvider(endpoint, options)
          : name === "openai"
            ? createOpenAIProvider(endpoint, options)
            : name === "gemini"
              ? createGeminiProvider(endpoint, options)
              : createOllamaProvider(endpoint, options);
      made.set(`${name}#${k}`, p);
    }
    return p;
  };
}

/** The retry, key and breaker settings of every provider, from its endpoint config (defaults filled in). */
export function resiliencePolicies(config: Config["providers"]): Record<ProviderName, ResiliencePolicy> {
  const policy = (e: ProviderEndpoint): ResiliencePolicy => ({
    maxRetries: e.maxRetries ?? DEFAULT_RESILIENCE.maxRetries,
    baseMs: e.retryBaseMs ?? DEFAULT_RESILIENCE.baseMs,
    maxMs: e.retryMaxMs ?? DEFAULT_RESILIENCE.maxMs,
    failures: e.breakerFailures ?? DEFAULT_RESILIENCE.failures,
    cooldownMs: e.breakerCooldownMs ?? DEFAULT_RESILIENCE.cooldownMs,
    keyCooldownMs: e.keyCooldownMs ?? DEFAULT_RESILIENCE.keyCooldownMs,
    keys: e.apiKeys?.length ?? 1,
  });
  return { anthropic: policy(config.anthropic), openai: policy(config.openai), ollama: policy(config.ollama), gemini: policy(config.gemini) };
}
