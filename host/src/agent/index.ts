export { AgentRuntime } from "./runtime.js";
export type { AgentRuntimeOptions, TurnRequest } from "./runtime.js";
export { runTurn } from "./loop.js";
export type { TurnInput, TurnRecord, TurnTools } from "./loop.js";
export { SessionLanes } from "./lanes.js";
export { compileToolAllowlist } from "./tool-policy.js";
export { ProviderError, CONFIGURE_HINT } from "./errors.js";
export { createProviderSet } from "./providers/index.js";
export type * from "./types.js";
