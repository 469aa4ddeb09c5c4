// The exoclaw gateway client (protocol v1): importable by external clients as `@exoclaw/ui/client`.
export { GatewayClient, RpcCallError, ConnectError, type ConnectOptions, type CallOptions } from "./gateway-client.js";
export type * from "./methods.js";
