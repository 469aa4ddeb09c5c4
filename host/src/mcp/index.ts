// Public API of the MCP concern (docs/mcp.md): the client side (servers in [mcp.servers.*], their
// approved tools as `<server>__<tool>`, approvals bound to the tools/list hash) and the server
// side (an agent's WASM tools served over stdio or the gateway's /mcp).
export { startMcpClients } from "./manager.js";
export type { McpClients, McpClientsOptions } from "./manager.js";
export { McpServerConnection, childEnvironment, BASE_BACKOFF_MS, MAX_BACKOFF_MS } from "./connection.js";
export { McpApprovalStore, approvalOf, judgeToolList, listHash, toolHash } from "./approvals.js";
export type { McpApproval, ToolListVerdict } from "./approvals.js";
export { approveMcpServer } from "./approve.js";
export type { McpApproveResult } from "./approve.js";
export { mapCallResult } from "./results.js";
export { exposedToolName, serverOf, MCP_TOOL_SEPARATOR } from "./naming.js";
export type { McpServerInfo, McpServerState, McpApprovalState, McpToolDefinition } from "./types.js";
export { createExoclawMcpServer, servedTools, CHAT_TOOL, CHAT_TOOL_SPEC } from "./serve.js";
export type { McpServeOptions } from "./serve.js";
