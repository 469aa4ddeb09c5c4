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
export { credentialsDir, readCredentials, secretEnv, credentialSource, stageCredentials, secretReferences, CREDENTIAL_NAME_RE } from "./credentials.js";
export type { StagedCredentials, SecretReference } from "./credentials.js";
export { setTomlValue, locateKey, lineDiff, parseKeyPath, formatKeyPath, getPath, setPath, renderTomlValue } from "./edit.js";
export type { KeyPath } from "./edit.js";
export { FileConfigSchema } from "./schema.js";
export { DEFAULT_MCP_LIMITS, MCP_SERVER_NAME_RE, hostAllowed } from "./mcp.js";
export type { McpLimits, McpServerConfig } from "./mcp.js";
export type { FileConfig } from "./schema.js";
export { DEFAULT_HEARTBEAT_PROMPT } from "./automation-schema.js";
export type { CronJobConfig, HeartbeatConfig, DeliveryConfig } from "./automation-schema.js";
export type {
  AgentBudget,
  AgentMemory,
  AgentConfig,
  BudgetLimits,
  BudgetsConfig,
  ModelPrice,
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
export { CHANNEL_DEFAULTS, DEFAULT_QUEUE, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_TURN_TIMEOUT_MS, DEFAULT_LOOP_LIMIT } from "./types.js";
export { needsApproval, resolveApprovals, DEFAULT_APPROVAL_TIMEOUT_MS, type AgentApprovals, type ApprovalRule } from "./approvals.js";
export { resolveHooks, DEFAULT_HOOK_TIMEOUT_MS, type HooksConfig, type HookFailMode } from "./hooks.js";
export {
  accountGroups,
  DEFAULT_COMMAND_PREFIXES,
  DEFAULT_MEDIA_MAX_BYTES,
  DEFAULT_MEDIA_TYPES,
  DEFAULT_SEND_MAX_BYTES,
  DEFAULT_SEND_TYPES,
  MAX_SEND_MAX_BYTES,
} from "./channel-groups.js";
export type { AccountGroupSettings, ChannelGroups, SenderRate } from "./channel-groups.js";
export { accountStream, DEFAULT_STREAM_INTERVAL_MS, type ChannelStream } from "./channel-stream.js";
