/**
 * A real plugin host for the hooks and approvals tests: the fixture plugins (plugins/fixtures,
 * built on demand into build/fixtures) written to a plugin
 * directory, granted and approved exactly as `exoclaw plugin approve` would.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ApprovalStore, approvalFor, inspectPluginFile, loadPlugins, sha256Hex, type OperatorGrant, type PluginHost } from "../../../host/src/plugins/index.js";
import { fixture } from "../../plugins/sandbox/support.js";

/** Fixture plugins to load, each with its operator grant; returns the host and its cleanup. */
export async function fixtureHost(plugins: Record<string, OperatorGrant>): Promise<{ host: PluginHost; close: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "exoclaw-hooks-"));
  const state = path.join(dir, "state");
  const pluginDir = path.join(dir, "plugins");
  await mkdir(pluginDir);
  const approvals = await ApprovalStore.open(ApprovalStore.pathFor(state));
  for (const [name, grant] of Object.entries(plugins)) {
    const file = path.join(pluginDir, `${name}.wasm`);
    const wasm = await fixture(name);
    await writeFile(file, wasm);
    const { manifest } = await inspectPluginFile(file);
    const { record } = approvalFor(name, sha256Hex(wasm), manifest.capabilities, grant);
    await approvals.add(record);
  }
  const host = await loadPlugins({ dirs: [pluginDir], grants: plugins, stateDir: state });
  return {
    host,
    close: async () => {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Hooks grant of the fixture hook plugins (everything they declare). */
export const HOOK_GRANTS: Record<string, OperatorGrant> = {
  "hooks-a": { hooks: ["before_message", "before_tool_call", "after_tool_call", "before_model_call", "agent_response"] },
  "hooks-b": { hooks: ["before_model_call", "after_tool_call"] },
  "hooks-loop": { hooks: ["before_tool_call"] },
  echo: { clock: true },
  hostcalls: { config: { greeting: "the token is s3cr3t-7f3a" } },
};
