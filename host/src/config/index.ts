export { loadConfig, readConfigFile, detectProvider, stateDir, ConfigError, DEFAULT_MODELS, DEFAULT_CONTEXT_WINDOW } from "./load.js";
export type { ConfigFlags } from "./load.js";
export type { AgentConfig, Config, GatewayConfig, ProviderEndpoint, ProviderName, StoreConfig } from "./types.js";
