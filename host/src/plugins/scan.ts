// The plugin files on disk: listing a plugin directory, and moving plugin state out of it.
import { chmod, readdir, rename, stat } from "node:fs/promises";
import path from "node:path";
import { errorMessage } from "../util/index.js";
import type { PluginLogger } from "./types.js";

/**
 * The `*.wasm` files (and links to them) directly in `dir`, as absolute paths sorted by name;
 * null when the directory cannot be read (missing: debug; anything else: a warning).
 */
export async function listWasmFiles(dir: string, logger: PluginLogger): Promise<string[] | null> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith(".wasm"))
      .map((e) => path.resolve(dir, e.name))
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      logger.debug({ dir }, "plugin directory does not exist; skipped");
    } else {
      logger.warn({ dir, reason: errorMessage(err) }, "cannot read plugin directory; skipped");
    }
    return null;
  }
}

/**
 * Moves plugin state from `<stateDir>/plugins/state` (inside the default plugin directory,
 * where whoever drops a plugin could read or plant it) to `<stateDir>/plugin-state`, once, when
 * the new place does not exist yet. Logged; a failure only warns (the data stays where it was).
 */
export async function migratePluginState(stateDir: string, logger: PluginLogger): Promise<void> {
  const from = path.join(stateDir, "plugins", "state");
  const to = path.join(stateDir, "plugin-state");
  try {
    await stat(from);
  } catch {
    return;
  }
  try {
    await stat(to);
    logger.warn({ from, to }, "old plugin state directory left in place: the new one exists; remove the old one once checked");
    return;
  } catch {
    // to be created
  }
  try {
    await rename(from, to);
    await chmod(to, 0o700).catch(() => {});
    logger.info({ from, to }, "plugin state moved out of the plugin directory");
  } catch (err) {
    logger.warn({ from, to, reason: errorMessage(err) }, "cannot move plugin state out of the plugin directory; plugins start with empty state");
  }
}
