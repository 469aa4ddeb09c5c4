/**
 * MCP `tools/call` results -> the loop's `tool_result` ({@link ToolResult}): text blocks as
 * they are, `structuredContent` as JSON (when the server sent no text with it), images, audio
 * and resources as text placeholders until media lands, `isError` carried over. Pure.
 * Source: MCP spec 2025-06-18, "Tools" > "Tool Result".
 */
import type { ToolResult } from "../plugins/index.js";

/** The parts of a `CallToolResult` read here. */
export interface McpCallResult {
  content?: unknown[];
  structuredContent?: unknown;
  isError?: boolean;
}

/** Approximate decoded size of base64 `data`, bytes. */
const b64Bytes = (data: unknown): number => (typeof data === "string" ? Math.floor((data.length * 3) / 4) : 0);

function blockText(b: unknown): string {
  if (b === null || typeof b !== "object") return "[unsupported content]";
  const o = b as Record<string, unknown>;
  switch (o.type) {
    case "text":
      return typeof o.text === "string" ? o.text : "";
    case "image":
      return `[image: ${String(o.mimeType ?? "unknown type")}, ${b64Bytes(o.data)} bytes, not shown]`;
    case "audio":
      return `[audio: ${String(o.mimeType ?? "unknown type")}, ${b64Bytes(o.data)} bytes, not played]`;
    case "resource_link":
      return `[resource link: ${String(o.uri ?? "")}${o.name !== undefined ? ` (${String(o.name)})` : ""}]`;
    case "resource": {
      const r = (o.resource ?? {}) as Record<string, unknown>;
      if (typeof r.text === "string") return r.text;
      return `[resource: ${String(r.uri ?? "")}, ${String(r.mimeType ?? "unknown type")}, ${b64Bytes(r.blob)} bytes, not shown]`;
    }
    default:
      return `[unsupported content: ${String(o.type)}]`;
  }
}

/**
 * Maps one result.
 * @param maxOutputBytes largest text accepted (UTF-8), bytes: a larger result becomes a tool error naming both sizes
 */
export function mapCallResult(result: McpCallResult, maxOutputBytes: number): ToolResult {
  const blocks = Array.isArray(result.content) ? result.content : [];
  const parts = blocks.map(blockText);
  const hasText = blocks.some((b) => (b as { type?: unknown } | null)?.type === "text");
  if (result.structuredContent !== undefined && !hasText) parts.push(JSON.stringify(result.structuredContent));
  const content = parts.join("\n");
  const bytes = Buffer.byteLength(content, "utf8");
  if (bytes > maxOutputBytes) {
    return { content: `the tool's result is ${bytes} bytes, more than this server's max_output_bytes (${maxOutputBytes})`, isError: true };
  }
  return { content, isError: result.isError === true };
}
