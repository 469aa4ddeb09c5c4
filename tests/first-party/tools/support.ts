// Shared helpers of the first-party tool tests: each plugin runs in the real sandbox
// (createSandboxPool), with the grant a test chooses.
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Packr, Unpackr } from "msgpackr";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { DEFAULT_LIMITS, type EffectiveGrant, type PluginLimits } from "../../../host/src/plugins/capabilities.js";
import type { PluginLogger } from "../../../host/src/plugins/types.js";
import { createHostServices, createSandboxPool, type HostServices, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";

export const ROOT = path.resolve(import.meta.dirname, "../../..");
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** A tool result as the plugin returned it. */
export interface ToolOut {
  content: string;
  isError: boolean;
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, (await stat(path.join(e.parentPath, e.name))).mtimeMs);
  }
  return newest;
}

const built = new Map<string, Promise<Uint8Array>>();

/**
 * The module of first-party tool `plugins/tools/<dir>`: build/plugins/<name>.wasm when it is
 * newer than the plugin's and the SDK's sources (`npm test` builds it first), else compiled now.
 */
export function toolWasm(dir: string): Promise<Uint8Array> {
  let p = built.get(dir);
  if (p === undefined) {
    p = (async () => {
      const src = path.join(ROOT, "plugins", "tools", dir);
      const out = path.join(ROOT, "build", "plugins", `${dir}.wasm`);
      try {
        const outTime = (await stat(out)).mtimeMs;
        const srcTime = Math.max(await newestMtime(src), await newestMtime(path.join(ROOT, "plugin-sdk", "assembly")));
        if (srcTime < outTime) return new Uint8Array(await readFile(out));
      } catch {
        // not built yet
      }
      return (await buildPlugin(path.join("plugins", "tools", dir))).wasm;
    })();
    built.set(dir, p);
  }
  return p;
}

/** A fresh directory under the OS temp dir. */
export function tempDir(prefix = "exoclaw-tools-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A PluginLogger that keeps the plugin's log lines. */
export function lineLogger(): PluginLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info() {},
    warn() {},
    debug(obj: unknown, msg?: string) {
      if (typeof obj === "object" && obj !== null && "level" in obj && msg !== undefined) lines.push(msg);
    },
    isLevelEnabled: () => true,
  };
}

/** Options of {@link toolClient}. */
export interface ToolSetup {
  grant?: EffectiveGrant;
  limits?: Partial<PluginLimits>;
  stateDir?: string;
  services?: HostServices;
  logger?: PluginLogger;
}

/** Calls the tools of one plugin through the sandbox. */
export interface ToolClient {
  /** Calls `tool` with `input`; `context` is the host-filled call context (peer, ...). */
  call(tool: string, input: unknown, context?: Record<string, string>): Promise<ToolOut>;
  pool: SandboxPool;
  close(): Promise<void>;
}

/** Starts a sandbox pool for first-party tool `dir`. Failed calls (trap, timeout, ...) throw. */
export async function toolClient(dir: string, setup: ToolSetup = {}): Promise<ToolClient> {
  const pool = createSandboxPool({
    name: dir,
    wasm: await toolWasm(dir),
    grant: setup.grant ?? {},
    limits: { ...DEFAULT_LIMITS, ...setup.limits },
    stateDir: setup.stateDir ?? (await tempDir("exoclaw-tool-state-")),
    services: setup.services ?? createHostServices(),
    logger: setup.logger ?? lineLogger(),
  });
  return {
    pool,
    async call(tool, input, context) {
      const r = await pool.call("call", packr.pack(context === undefined ? { name: tool, input } : { name: tool, input, context }));
      if (!r.ok) throw new Error(`${tool}: ${r.kind}: ${r.message}`);
      return unpackr.unpack(r.output) as ToolOut;
    },
    close: () => pool.close(),
  };
}

/** `{content, isError: false}`. */
export const ok = (content: string): ToolOut => ({ content, isError: false });
