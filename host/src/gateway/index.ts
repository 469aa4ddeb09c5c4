export { startGateway } from "./server.js";
export type { RunningGateway } from "./server.js";
export { createMethods } from "./methods.js";
export type { MethodDeps } from "./methods.js";
export { createRpcHandler } from "./rpc.js";
export type { MethodContext, MethodHandler, RpcOptions } from "./rpc.js";
export { chooseTransport } from "./transport.js";
export { isLoopback, tokenMatches, assertBindAllowed } from "./auth.js";
export type { Connection, Transport, TransportName } from "./types.js";
