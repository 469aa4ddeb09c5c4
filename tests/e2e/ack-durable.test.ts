/**
 * Crash test of the acknowledgement rule on the durable default store: the gateway is killed
 * with SIGKILL the moment the client receives a turn's first streamed event or its `chat.send`
 * result, then restarted on the same state directory. What the client saw must be on disk: after a
 * streamed event, the message (a turn calls its model while the message's write is in flight,
 * but streams nothing before it is durable: agent/turn.ts); after the result, the message and its
 * outcome (`turn_ended` of that run, the answer's text).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let state: string;
let gateway: GatewayHandle | undefined;

const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });
const PEER = "ack-durable";
const SESSION = `agent:main:ws:default:${PEER}`;

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-ack-durable-"));
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

/**
 * Sends one message and kills the gateway (SIGKILL, synchronously in the socket's message
 * handler) on the first frame `kill` picks. @returns the run id named by that frame
 */
async function sendAndKill(gw: GatewayHandle, content: string, idempotencyKey: string, kill: (msg: any, id: number) => string | undefined): Promise<string> {
  const client = await RpcClient.connect(gw.url);
  const exited = new Promise((r) => gw.proc.once("exit", r));
  const id = 1;
  const killed = new Promise<string>((resolve) => {
    client.ws.on("message", (data: Buffer) => {
      const runId = kill(JSON.parse(data.toString("utf8")), id);
      if (runId === undefined) return;
      gw.proc.kill("SIGKILL");
      resolve(runId);
    });
  });
  client.sendRaw(JSON.stringify({ jsonrpc: "2.0", id, method: "chat.send", params: { content, peer: PEER, idempotencyKey } }));
  const runId = await killed;
  await exited;
  client.close();
  return runId;
}

describe("kill -9 right after an acknowledgement", () => {
  it("finds on disk after the restart every message whose events were streamed and every outcome whose result was sent", async () => {
    const seen: { key: string; runId: string; answered: boolean; content: string }[] = [];
    for (let round = 0; round < 6; round++) {
      gateway = await startGateway(env());
      const answered = round % 2 === 0;
      const key = `ack-${round}`;
      const content = answered ? `round ${round}: answer me` : `round ${round}: SLOW_150MS stream to me`;
      const runId = await sendAndKill(gateway, content, key, (msg, id) =>
        answered
          ? msg.id === id && msg.result
            ? (msg.result.runId as string)
            : undefined
          : msg.method === "chat.event" && msg.params.type === "text"
            ? (msg.params.runId as string)
            : undefined,
      );
      seen.push({ key, runId, answered, content });
    }
    gateway = await startGateway(env());
    const client = await RpcClient.connect(gateway.url);
    const events = (await client.call("chat.history", { sessionKey: SESSION, limit: 1000 })).response.msg.result.events as any[];
    client.close();
    for (const s of seen) {
      const message = events.find((e) => e.kind === "message_received" && e.data.idempotencyKey === s.key);
      expect(message, `message ${s.key}`).toMatchObject({ runId: s.runId, data: { content: s.content } });
      if (!s.answered) continue;
      expect(events.filter((e) => e.runId === s.runId && e.kind === "turn_ended")).toHaveLength(1);
      expect(events.find((e) => e.runId === s.runId && e.kind === "assistant_text")?.data.text).toBe(`You said: ${s.content}`);
    }
    // Ordered and whole: seqs 1..n.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, j) => j + 1));
  });
});
