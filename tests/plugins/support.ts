import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildPlugin } from "../../scripts/build-plugins.mjs";
import type { PluginLogger } from "../../host/src/plugins/index.js";

/** Compiles plugin source dirs (relative to the repo root) into `outDir`; returns name → path. */
export async function buildInto(outDir: string, pluginDirs: string[]): Promise<Record<string, string>> {
  await mkdir(outDir, { recursive: true });
  const out: Record<string, string> = {};
  for (const dir of pluginDirs) {
    const { name, wasm } = await buildPlugin(dir);
    const file = path.join(outDir, `${name}.wasm`);
    await writeFile(file, wasm);
    out[name] = file;
  }
  return out;
}

/** A fresh directory under the OS temp dir. */
export function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "exoclaw-plugins-"));
}

export interface LogRecord {
  level: "info" | "warn" | "debug";
  fields: Record<string, unknown>;
  msg: string;
}

/** A PluginLogger that records pino-style calls (fields object, then message). */
export function captureLogger(): PluginLogger & { records: LogRecord[]; warnings(): LogRecord[] } {
  const records: LogRecord[] = [];
  const at =
    (level: LogRecord["level"]) =>
    (objOrMsg: unknown, msg?: string): void => {
      if (typeof objOrMsg === "string") records.push({ level, fields: {}, msg: objOrMsg });
      else records.push({ level, fields: (objOrMsg ?? {}) as Record<string, unknown>, msg: msg ?? "" });
    };
  return {
    records,
    warnings: () => records.filter((r) => r.level === "warn"),
    info: at("info"),
    warn: at("warn"),
    debug: at("debug"),
    isLevelEnabled: () => true,
  };
}

/**
 * Compiles a hand-written WAT file (relative to the repository root) to Wasm bytes with wabt.
 * @throws Error with wabt's diagnostics if the text does not parse or validate
 */
export async function compileWat(file: string): Promise<Uint8Array> {
  const { default: wabtInit } = await import("wabt");
  const wabt = await wabtInit();
  const text = await readFile(path.join(REPO_ROOT, file), "utf8");
  const mod = wabt.parseWat(file, text);
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** The repository root. */
export const REPO_ROOT = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
