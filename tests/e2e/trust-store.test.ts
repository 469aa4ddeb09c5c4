// The plugin trust store (approvals) is a start-up precondition of the real gateway process: a
// corrupt approvals file, old approvals left in a plugin directory, or a trust directory inside a
// plugin directory stop `exoclaw gateway` with an error naming the file and the fix, instead of
// a gateway that reports ready while every channel answers webhooks 401.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway } from "../support/gateway.js";

let root = "";
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "exoclaw-trust-"));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** Starts a gateway on `state`; resolves with its failure message (stderr included), or fails the test if it became ready. */
async function refusal(state: string, env: Record<string, string> = {}): Promise<string> {
  const outcome = await startGateway({ EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "memory", ...env }).then(
    async (gw) => {
      await gw.stop();
      return null;
    },
    (err: unknown) => (err as Error).message,
  );
  expect(outcome, "the gateway started").not.toBeNull();
  return outcome!;
}

describe("gateway start-up refuses an untrustworthy or unreadable trust store", () => {
  it("a corrupt approvals.json: refused, naming the file and how to fix it", async () => {
    const state = path.join(root, "corrupt");
    await mkdir(path.join(state, "trust"), { recursive: true });
    const file = path.join(state, "trust", "approvals.json");
    await writeFile(file, '{"version": 1, "approvals": [{"name": "webhook", "sha2');
    const message = await refusal(state);
    expect(message).toMatch(/gateway exited with 1 before ready/);
    expect(message).toContain(`exoclaw: ${file}: not a valid approvals file`);
    expect(message).toContain("restore it from a backup, or delete it and approve each plugin again with: exoclaw plugin approve <file>");
  });

  it("approvals left in the plugin drop folder (<state>/plugins/approvals.json): refused, with the command that moves them", async () => {
    const state = path.join(root, "legacy");
    await mkdir(path.join(state, "plugins"), { recursive: true });
    const old = path.join(state, "plugins", "approvals.json");
    await writeFile(old, JSON.stringify({ version: 1, approvals: [] }));
    const message = await refusal(state);
    expect(message).toContain(`exoclaw: ${old}: plugin approvals found in a plugin directory`);
    expect(message).toContain(`mv ${old} ${path.join(state, "trust", "approvals.json")}`);
  });

  it("a plugin directory that contains the trust directory: refused", async () => {
    const state = path.join(root, "inside");
    await mkdir(state, { recursive: true });
    const message = await refusal(state, { EXOCLAW_PLUGINS_DIR: state });
    expect(message).toContain(`the trust directory ${path.join(state, "trust")} (plugin approvals) is inside the plugin directory ${state}`);
  });
});
