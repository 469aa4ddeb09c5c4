export {
  loadConfig,
  readConfigFile,
  detectProvider,
  stateDir,
  ConfigError,
  DEFAULT_MODELS,
  DEFAULT_CONTEXT_WINDOW,
  DEFAULT_BUS_MAX_DELIVER,
  parseNatsUrls,
} from "./load.js";
export type { ConfigFlags } from "./load.js";
export type {
  AgentConfig,
  BusSettings,
  ChannelConfig,
  ClientEntry,
  Config,
  GatewayConfig,
  ProviderEndpoint,
  ProviderName,
  QueuePolicy,
  StoreConfig,
  TlsFiles,
  StoreRetention,
  WebhookLimits,
} from "./types.js";
export { CHANNEL_DEFAULTS, DEFAULT_QUEUE, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_TURN_TIMEOUT_MS } from "./types.js";
