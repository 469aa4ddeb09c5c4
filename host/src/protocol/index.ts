export { ErrorCode, FailureCode, RpcError, isFailureReason, reasonOfCode } from "./errors.js";
export type { ErrorCodeValue, FailureReason } from "./errors.js";
export { decodeFrame, encodeFrame, packMsgpack, unpackMsgpack } from "./codec.js";
export type { DecodeResult } from "./codec.js";
export { parseEnvelope, resultResponse, errorResponse, notification, toErrorObject } from "./jsonrpc.js";
export type { EnvelopeResult } from "./jsonrpc.js";
export {
  ChatSendParamsSchema,
  NoParamsSchema,
  parseParams,
  parseChatSendParams,
  ChatSendSchema,
  ChatAbortSchema,
  ChatHistorySchema,
  PluginLoadParamsSchema,
  PluginUnloadParamsSchema,
  SessionKeySchema,
  SessionsListSchema,
  SessionsResetSchema,
  SessionsSearchSchema,
  SessionsPruneSchema,
  UsageSummarySchema,
} from "./params.js";
export { CronAddSchema, CronIdSchema, FlowIdSchema } from "./cron-params.js";
export type * from "./types.js";
export { SCOPES, GATEWAY_ACCOUNT, GATEWAY_SCOPES } from "./scopes.js";
export type { Scope } from "./scopes.js";
export { WS_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX, bearerSubprotocol, tokenFromSubprotocols, offersSubprotocol } from "./subprotocol.js";
