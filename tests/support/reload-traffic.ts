// Reload under traffic: chat sessions run turns against a real gateway process while its
// exoclaw.toml is rewritten (valid and invalid versions alternately, each saved the way editors
// do: a new file renamed over the old one). Used by tests/e2e/config-reload.test.ts (short) and
// tests/e2e/config-reload.fault.test.ts (50 rewrites).
import { renameSync, writeFileSync } from "node:fs";
import { stringify } from "smol-toml";
import { expect } from "vitest";
import type { FileConfig } from "../../host/src/config/schema.js";
import type { ChannelGateway } from "./channel-gateway.js";
import { RpcClient } from "./gateway.js";

/** The tool allowlist of generation `gen`: it changes with the prompt (the calculator always stays). */
export function toolsOf(gen: number): string[] {
  return gen % 4 === 3 ? ["calculator"] : ["calculator", "time"];
}

/** The config of generation `gen`: agent `main` whose system prompt names the generation. */
export function reloadConfig(gen: number, valid: boolean): FileConfig {
  return {
    agents: [
      {
        id: "main",
        provider: "anthropic",
        model: "emu-reload",
        system_prompt: `prompt generation ${gen}.`,
        tools: toolsOf(gen),
        // Invalid versions: a string where a number belongs (the error must name this field).
        max_iterations: (valid ? 5 : `five-${gen}`) as unknown as number,
      },
    ],
  };
}

/** Writes `config` to `file` as an editor saves: a temporary file renamed over it. */
export function saveConfig(file: string, config: FileConfig): void {
  writeFileSync(`${file}.tmp`, stringify(config as Record<string, unknown>));
  renameSync(`${file}.tmp`, file);
}

/** The generation in a system prompt written by {@link reloadConfig}. */
export function generationOf(system: unknown): number {
  const m = /prompt generation (\d+)\./.exec(String(system));
  if (m === null) throw new Error(`not a generation prompt: ${String(system)}`);
  return Number(m[1]);
}

/** The text of a model request's newest user message that is not a tool result: the turn's own message. */
function turnText(body: any): string | undefined {
  for (const m of [...(body.messages ?? [])].reverse()) {
    if (m.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    const text = (m.content as { type: string; text?: string }[]).find((b) => b.type === "text");
    if (text !== undefined) return text.text;
  }
  return undefined;
}

/** Waits until `count()` exceeds `before` (polling the gateway's parsed log lines). */
async function waitForCount(count: () => number, before: number, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() <= before) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs `sessions` chat loops while rewriting the config `rewrites` times (odd rewrites valid,
 * even ones invalid), waiting after each for its log line, then checks: no turn failed; every
 * turn sent after a generation's "config reloaded" line ran with that generation or a later
 * one; every model call of one turn (tool loops) carried the same prompt and tools; each invalid version
 * was logged naming `agents.0.max_iterations` and ignored.
 * @param gw a gateway started with `reloadConfig(0, true)`
 */
export async function reloadUnderTraffic(gw: ChannelGateway, options: { sessions: number; rewrites: number }): Promise<{ turns: number }> {
  const logs = gw.gateway.logs as Record<string, any>[];
  const applied = () => logs.filter((l) => l.msg === "config reloaded" && l.trigger === "file").length;
  const refused = () => logs.filter((l) => l.msg === "config reload refused: the file is invalid; the running configuration stays").length;
  let generation = 0;
  let stop = false;
  const failures: unknown[] = [];
  const turns: { content: string; minGen: number }[] = [];
  const clients = await Promise.all(Array.from({ length: options.sessions }, () => RpcClient.connect(gw.gateway.url)));
  const loops = clients.map(async (client, i) => {
    for (let n = 0; !stop; n++) {
      // Every third turn calls the calculator: two model calls, which must see one prompt.
      const content = n % 3 === 0 ? `what is ${i}*${n}? [s${i} t${n}]` : `hello [s${i} t${n}]`;
      const minGen = generation;
      const { response } = await client.call("chat.send", { content, peer: `peer-${i}` });
      if (response.msg.error !== undefined) failures.push({ content, error: response.msg.error });
      else turns.push({ content, minGen });
    }
  });
  try {
    for (let k = 1; k <= options.rewrites; k++) {
      const valid = k % 2 === 1;
      const [a, r] = [applied(), refused()];
      saveConfig(gw.configFile, reloadConfig(k, valid));
      if (valid) {
        await waitForCount(applied, a, `the reload of generation ${k}`);
        generation = k;
      } else {
        await waitForCount(refused, r, `the refusal of invalid generation ${k}`);
      }
      // Let some turns run on this generation.
      await new Promise((res) => setTimeout(res, 20));
    }
    // Every session sends at least one turn after the last reload was seen.
    const lastSeen = generation;
    await waitForCount(() => turns.filter((t) => t.minGen === lastSeen).length, options.sessions - 1, "turns on the last generation");
  } finally {
    stop = true;
    await Promise.all(loops);
    for (const c of clients) c.close();
  }

  expect(failures).toEqual([]);
  const lastValid = options.rewrites % 2 === 1 ? options.rewrites : options.rewrites - 1;
  for (const turn of turns) {
    const calls = gw.emulator.requests.filter((q) => turnText(q.body) === turn.content);
    expect(calls.length, turn.content).toBeGreaterThan(0);
    const gens = new Set(calls.map((q) => generationOf(q.body.system)));
    // One snapshot per turn, taken at its start, never older than the last reload seen before it was sent.
    expect(gens.size, `${turn.content}: ${[...gens].join(",")}`).toBe(1);
    expect([...gens][0]!, turn.content).toBeGreaterThanOrEqual(turn.minGen);
    // Invalid versions never took effect.
    expect([...gens][0]! % 2 === 1 || [...gens][0] === 0, turn.content).toBe(true);
    expect([...gens][0]!).toBeLessThanOrEqual(lastValid);
    // The tools offered are the same snapshot's.
    for (const q of calls) expect(((q.body.tools ?? []) as { name: string }[]).map((t) => t.name).sort(), turn.content).toEqual(toolsOf([...gens][0]!));
  }
  // The new prompt was seen: turns ran on the last valid generation.
  expect(turns.some((t) => t.minGen === lastValid)).toBe(true);
  const refusals = logs.filter((l) => l.msg === "config reload refused: the file is invalid; the running configuration stays");
  expect(refusals).toHaveLength(Math.floor(options.rewrites / 2));
  for (const l of refusals) expect(l.error).toContain("agents.0.max_iterations");
  return { turns: turns.length };
}
