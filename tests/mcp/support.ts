/** Helpers for the MCP tests: real MCP servers from npm as stdio children, and configs for them. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import type { Config, McpServerConfig } from "../../host/src/config/index.js";
import { DEFAULT_MCP_LIMITS } from "../../host/src/config/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** server-everything's launcher (`node <it> stdio`). */
export const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
/** server-filesystem's launcher (`node <it> <allowed dir>`). */
export const FILESYSTEM = join(ROOT, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");

export const silent = pino({ level: "silent" });

/** A stdio server config running `node <script> ...args`. */
export function stdioServer(name: string, script: string, args: string[], over: Partial<McpServerConfig> = {}): McpServerConfig {
  return {
    name,
    start: "lazy",
    limits: { ...DEFAULT_MCP_LIMITS },
    transport: "stdio",
    command: process.execPath,
    args: [script, ...args],
    env: {},
    ...over,
  } as McpServerConfig;
}

/** A fresh state directory. */
export const tempState = () => mkdtempSync(join(tmpdir(), "exoclaw-mcp-"));

/** The parts of a Config that `approveMcpServer` reads. */
export function approveConfig(servers: McpServerConfig[], stateDir: string, secretEnv: Record<string, string | undefined> = {}): Config {
  return { mcp: { servers }, stateDir, secretEnv, source: "test" } as unknown as Config;
}

/** Waits until `cond()` holds (polling every 20 ms), or fails after `ms`. */
export async function until(cond: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether a process id is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
