/**
 * Names of MCP tools as agents see them: `<server>__<tool>`. Server names cannot contain `__`
 * (config/mcp.ts), so the first `__` always splits a name back into server and tool. Characters
 * the model providers refuse in tool names (anything outside `[A-Za-z0-9_-]`) become `_`, and the
 * name is cut to 64 characters (the providers' limit); a tool whose exposed name collides with
 * another's after that is not offered (see the manager). Pure.
 */

/** Separator between server and tool. */
export const MCP_TOOL_SEPARATOR = "__";

/** Longest tool name the model providers accept. */
export const MAX_TOOL_NAME = 64;

/** The name agents see for `tool` of `server`. */
export function exposedToolName(server: string, tool: string): string {
  return `${server}${MCP_TOOL_SEPARATOR}${tool.replace(/[^A-Za-z0-9_-]/g, "_")}`.slice(0, MAX_TOOL_NAME);
}

/** The server part of an exposed name, or undefined when `name` has no separator. */
export function serverOf(name: string): string | undefined {
  const i = name.indexOf(MCP_TOOL_SEPARATOR);
  return i <= 0 ? undefined : name.slice(0, i);
}
