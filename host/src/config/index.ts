export { loadConfig, readConfigFile, detectProvider, stateDir, ConfigError, DEFAULT_MODELS } from "./load.js";
export type { ConfigFlags } from "./load.js";
export type { AgentConfig, Config, GatewayConfig, ProviderEndpoint, ProviderName } from "./types.js";
