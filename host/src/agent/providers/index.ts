import type { Config, ProviderName } from "../../config/index.js";
import type { ModelProvider } from "../types.js";
import type { ProviderOptions } from "./options.js";
import { createAnthropicProvider } from "./anthropic.js";
import { createOllamaProvider } from "./ollama.js";
import { createOpenAIProvider } from "./openai.js";

export { createAnthropicProvider, toAnthropicMessages } from "./anthropic.js";
export { createOpenAIProvider, toOpenAIMessages } from "./openai.js";
export { createOllamaProvider, toOllamaMessages } from "./ollama.js";
export type { ProviderOptions } from "./options.js";
export { IdleWatch, DEFAULT_IDLE_TIMEOUT_MS } from "./idle.js";
export type { IdleWatchOptions } from "./idle.js";

/**
 * One provider instance per provider name, created on first use and shared by every agent that
 * uses it, so the SDK's HTTP keep-alive pool is shared too. SDKs are imported lazily, which
 * keeps them off the start-up path.
 */
export function createProviderSet(config: Config["providers"], options: ProviderOptions = {}): (name: ProviderName) => ModelProvider {
  const made = new Map<ProviderName, ModelProvider>();
  return (name) => {
    let p = made.get(name);
    if (!p) {
      p =
        name === "anthropic"
          ? createAnthropicProvider(config.anthropic, options)
          : name === "openai"
            ? createOpenAIProvider(config.openai, options)
            : createOllamaProvider(config.ollama, options);
      made.set(name, p);
    }
    return p;
  };
}
