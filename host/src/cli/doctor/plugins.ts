import type { Config } from "../../config/index.js";
import { listLocalPlugins } from "../plugin.js";
import { error, ok, warn, type Finding } from "./types.js";

/**
 * Validates every plugin file the gateway would load (`exoclaw plugin list`'s resolution:
 * manifest, imports, exports, name claims, grants and approvals), reporting rejected files and
 * pending approvals with the command that approves them.
 * @returns the findings and the names of the plugins found (loaded or pending)
 */
export async function checkPlugins(config: Config, env: NodeJS.ProcessEnv): Promise<{ findings: Finding[]; names: Set<string> }> {
  let rows;
  try {
    rows = await listLocalPlugins(config, env);
  } catch (err) {
    return { findings: [error("plugins", (err as Error).message, "move the trust store out of the plugin directories as the message says")], names: new Set() };
  }
  const findings: Finding[] = [];
  const names = new Set<string>();
  for (const r of rows) {
    const check = `plugin:${r.name}`;
    if (r.status === "error")
      findings.push(
        error(check, `${r.path} is not loaded: ${r.error ?? "rejected"}`, `rebuild or remove ${r.path} (exoclaw plugin inspect ${r.path} says why)`),
      );
    else {
      names.add(r.name);
      if (r.status === "pending_approval")
        findings.push(
          warn(
            check,
            `${r.name} ${r.version} waits for approval of: ${r.pending}${r.error ? ` (${r.error})` : ""}; it runs with nothing until approved`,
            `exoclaw plugin approve ${r.path}`,
          ),
        );
    }
  }
  const loaded = rows.filter((r) => r.status === "loaded").length;
  findings.unshift(ok("plugins", `${loaded} plugin(s) valid and approved in ${config.plugins.dirs.join(", ")}`));
  return { findings, names };
}
