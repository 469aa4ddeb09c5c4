export { compileRouter, RouterConfigError } from "./router.js";
export { sessionKey, escapeKeyPart } from "./session-key.js";
export type { Binding, InboundAddress, MatchedBy, Route, Router, Tier } from "./types.js";
export { TIERS } from "./types.js";
