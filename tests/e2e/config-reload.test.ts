// Live config reload against a real gateway process and the provider emulator: the config file
// rewritten under traffic (valid and invalid versions), SIGHUP, the config.reload RPC, and a
// change that needs a restart. The 50-rewrite variant is config-reload.fault.test.ts.
import { writeFileSync } from "node:fs";
import { stringify } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { generationOf, reloadConfig, reloadUnderTraffic, saveConfig } from "../support/reload-traffic.js";

let gw: ChannelGateway;

beforeAll(async () => {
  gw = await startChannelGateway({ config: reloadConfig(0, true) });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

/** Sends one turn and returns the generation of the system prompt its model call carried. */
async function generationOfTurn(client: RpcClient, content: string): Promise<number> {
  const { response } = await client.call("chat.send", { content });
  expect(response.msg.error, JSON.stringify(response.msg.error)).toBeUndefined();
  const call = gw.emulator.requests.findLast((q) => JSON.stringify(q.body.messages).includes(content));
  return generationOf(call!.body.system);
}

describe("config reload", () => {
  it("20 sessions keep running turns while the file is rewritten (valid and invalid alternately): none fails, the new prompt is used from the next turn, invalid versions are logged and ignored", async () => {
    const { turns } = await reloadUnderTraffic(gw, { sessions: 20, rewrites: 8 });
    expect(turns).toBeGreaterThan(20);
  }, 60_000);

  it("SIGHUP re-reads the file; the process keeps running", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    // Written in place, then the signal at once (the file watch may see it too; either applies it once).
    writeFileSync(gw.configFile, stringify(reloadConfig(101, true) as Record<string, unknown>));
    gw.gateway.proc.kill("SIGHUP");
    await gw.waitForLog((l) => l.msg?.startsWith("config reloaded") && l.trigger === "signal");
    expect(await generationOfTurn(client, "after sighup")).toBe(101);
    expect(gw.gateway.proc.exitCode).toBeNull();
    client.close();
  });

  it("config.reload (scope admin) applies the file and reports a change that needs a restart; an invalid file is a result naming the field", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    // (`--port 0` on the command line wins over the file's port: the bind address is what changes.)
    const restart = { ...reloadConfig(103, true), gateway: { bind: "127.0.0.2" }, store: { url: "memory" } };
    saveConfig(gw.configFile, restart);
    const { response } = await client.call("config.reload");
    expect(response.msg.error).toBeUndefined();
    const result = response.msg.result;
    expect(result).toMatchObject({ status: "applied", trigger: "rpc", source: gw.configFile });
    expect(result.restartRequired).toEqual(expect.arrayContaining(["gateway.bind", "store"]));
    await gw.waitForLog((l) => l.msg === "config changes need a restart to take effect; the running values stay until then" && l.keys.includes("gateway.bind"));
    // The live part applied; the listener is still where it was.
    expect(await generationOfTurn(client, "after rpc reload")).toBe(103);

    saveConfig(gw.configFile, reloadConfig(104, false));
    const invalid = (await client.call("config.reload")).response.msg.result;
    expect(invalid.status).toBe("invalid");
    expect(invalid.error).toContain("agents.0.max_iterations");
    expect(await generationOfTurn(client, "after invalid rpc reload")).toBe(103);

    // Valid TOML and schema, but a binding to an agent that does not exist: refused as a whole.
    saveConfig(gw.configFile, { ...reloadConfig(105, true), bindings: [{ agent: "nobody", peer: "x" }] });
    const unbound = (await client.call("config.reload")).response.msg.result;
    expect(unbound.status).toBe("invalid");
    expect(unbound.error).toContain("nobody");
    expect(await generationOfTurn(client, "after unbound rpc reload")).toBe(103);
    client.close();
  });
});
