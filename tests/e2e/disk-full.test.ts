/**
 * A full disk under the embedded SurrealDB store (issue 21, finding 2), on a real tmpfs mount
 * (needs root for `mount`): the client is told the disk is full (-32603, `data.reason:
 * "disk_full"`, not a bare "Internal error"); the store's engine takes no writes again in that
 * process, so `/health` turns 503 `store_unavailable` and the gateway shuts down within its grace
 * period and exits 1 for its supervisor to restart it; after space is freed, the restarted
 * gateway answers and the history written before is intact. SIGTERM ends the process within the
 * grace period even with a turn stuck on its provider. See docs/reliability.md ("Full disk").
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, webhookGrant } from "../support/channel-gateway.js";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const isRoot = process.getuid?.() === 0;
const GRACE_MS = 3000;
/** The CLI's hard shutdown deadline: the grace period plus 5 s for closing (host/src/cli/main.ts). */
const DEADLINE_MS = GRACE_MS + 5000;

let emulator: Emulator;
let mountDir: string;
let configDir: string;
let mounted = false;
const gateways: GatewayHandle[] = [];

/** Each transport's gateway keeps its state in its own directory on the one tmpfs mount. */
const env = (transport: string) => ({
  ANTHROPIC_API_KEY: "sk-test",
  ANTHROPIC_BASE_URL: emulator.url,
  EXOCLAW_STATE_DIR: join(mountDir, transport),
  EXOCLAW_TRANSPORT: transport,
});
const args = () => ["--config", join(configDir, "exoclaw.toml")];

/** Resolves with the exit code, or rejects after `ms`. */
function exited(gw: GatewayHandle, ms: number): Promise<number | null> {
  if (gw.proc.exitCode !== null || gw.proc.signalCode !== null) return Promise.resolve(gw.proc.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not exit within ${ms} ms`)), ms);
    gw.proc.once("exit", (code) => (clearTimeout(timer), resolve(code)));
  });
}

/** Waits until the provider emulator received a request containing `text`. */
async function providerGot(text: string): Promise<void> {
  for (let i = 0; i < 500 && !emulator.requests.some((r) => JSON.stringify(r.body).includes(text)); i++) await new Promise((r) => setTimeout(r, 20));
  expect(emulator.requests.some((r) => JSON.stringify(r.body).includes(text))).toBe(true);
}

/**
 * Padding for messages sent while the disk is full: larger than a page (4 KiB), so no write fits
 * in the slack of a page the store's files already hold (tmpfs counts whole pages: a small record
 * can still land in the write-ahead log's last page after the filler took every free page).
 */
const PAST_PAGE_SLACK = " " + "x".repeat(8192);

/** Fills the mount until the kernel says ENOSPC (dd exits non-zero then). */
function fillDisk(): void {
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${join(mountDir, "filler")}`, "bs=64k"], { stdio: "ignore" });
  } catch {
    // dd fails with "No space left on device": the disk is full, as wanted.
  }
}

beforeAll(async () => {
  if (!isRoot) return;
  mountDir = mkdtempSync(join(tmpdir(), "exoclaw-diskfull-"));
  configDir = mkdtempSync(join(tmpdir(), "exoclaw-diskfull-cfg-"));
  writeFileSync(join(configDir, "exoclaw.toml"), `[gateway]\nshutdown_grace_ms = ${GRACE_MS}\n`);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", mountDir]);
  mounted = true;
  emulator = await startEmulator();
});

afterAll(async () => {
  for (const gw of gateways) if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill("SIGKILL");
  await emulator?.close();
  if (mounted) execFileSync("umount", ["-l", mountDir]);
  if (mountDir) rmSync(mountDir, { recursive: true, force: true });
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

describe.skipIf(!isRoot).each(["uws", "ws"])(
  "full disk under the embedded store, transport %s (needs root to mount a tmpfs; skipped when not root)",
  (transport) => {
    it("names the full disk, turns not-ready, exits 1 within the grace period; a restart after space is freed answers with the history intact", async () => {
      const gw = await startGateway(env(transport), args());
      gateways.push(gw);
      try {
        await fullDiskThenRestart(gw);
      } finally {
        // A failure above must not leave the next test a full disk to start on.
        rmSync(join(mountDir, "filler"), { force: true });
      }
    }, 90_000);

    async function fullDiskThenRestart(gw: GatewayHandle): Promise<void> {
      expect(gw.ready.transport).toBe(transport);
      const client = await RpcClient.connect(gw.url);
      const first = await client.call("chat.send", { content: "written before the disk filled up", peer: "disk" });
      expect(first.response.msg.result?.text).toBe("You said: written before the disk filled up");

      // A turn stuck on its provider keeps the drain (and so the listener) going for the grace period.
      void client.call("chat.send", { content: "STALL_AFTER_HEADERS hold the drain", peer: "stall" }).catch(() => undefined);
      await providerGot("hold the drain");
      // Reads wait until the journal's projector has put every acknowledged event into SurrealDB:
      // after these two, nothing is left to write in the background when the disk fills up (the
      // first write to fail is then this test's chat.send, not a late projection).
      await client.call("chat.history", { sessionKey: "agent:main:ws:default:disk" });
      await client.call("chat.history", { sessionKey: "agent:main:ws:default:stall" });

      fillDisk();
      const full = await client.call("chat.send", { content: `sent while the disk is full${PAST_PAGE_SLACK}`, peer: "disk" });
      expect(full.response.msg.error).toEqual({ code: -32603, message: "session store: the disk is full; nothing was written", data: { reason: "disk_full" } });

      const health = await fetch(`http://127.0.0.1:${gw.port}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: "store_unavailable", reason: "disk_full" });
      // The gateway is shutting down: it takes no new turns (the store's own fast failure of later
      // writes is covered by tests/store/disk-full.test.ts).
      const later = await client.call("chat.send", { content: "sent after the store broke", peer: "other" });
      expect(later.response.msg.error?.code).toBe(-32005);

      expect(await exited(gw, DEADLINE_MS + 2000)).toBe(1);
      expect(gw.logs.some((l) => l.level === 60 && /session store takes no writes/.test(String(l.msg)) && l.reason === "disk_full")).toBe(true);
      client.close();

      // Space is freed; the supervisor's restart finds the store intact and writable.
      rmSync(join(mountDir, "filler"));
      const gw2 = await startGateway(env(transport), args());
      gateways.push(gw2);
      const c2 = await RpcClient.connect(gw2.url);
      const after = await c2.call("chat.send", { content: "sent after space was freed", peer: "disk" });
      expect(after.response.msg.result?.text).toBe("You said: sent after space was freed");
      const history = await c2.call("chat.history", { sessionKey: "agent:main:ws:default:disk" });
      const texts = (history.response.msg.result.events as { kind: string; data: { content?: string } }[])
        .filter((e) => e.kind === "message_received")
        .map((e) => e.data.content);
      expect(texts).toEqual(["written before the disk filled up", "sent after space was freed"]);
      expect((await fetch(`http://127.0.0.1:${gw2.port}/health`)).status).toBe(200);

      // SIGTERM with a turn stuck on its provider: the process is gone within the grace period (+ closing).
      void c2.call("chat.send", { content: "STALL_AFTER_HEADERS at shutdown", peer: "stall2" }).catch(() => undefined);
      await providerGot("at shutdown");
      gw2.proc.kill("SIGTERM");
      expect(await exited(gw2, DEADLINE_MS + 2000)).toBe(0);
      c2.close();
    }

    it("answers a webhook at once while the disk is full (no hang), and exits 1 for its supervisor", async () => {
      const secret = "test-webhook-secret-0123456789";
      const platform = await startFakePlatform();
      const gw = await startChannelGateway({
        config: {
          gateway: { transport: transport as "uws" | "ws", shutdown_grace_ms: GRACE_MS },
          channels: { webhook: { allow: ["alice"] } },
          plugins: {
            grants: {
              webhook: webhookGrant(`${platform.url}/inbox`),
            },
          },
        },
        // Only the store is on the small mount: plugin state and config stay on the big disk.
        env: { TEST_WEBHOOK_SECRET: secret, EXOCLAW_STORE: `surrealkv://${join(mountDir, `webhook-${transport}`)}` },
        emulator,
      });
      gateways.push(gw.gateway);
      try {
        const post = (body: object) => {
          const text = JSON.stringify(body);
          return gw.postWebhook("webhook", undefined, text, {
            "content-type": "application/json",
            "x-exoclaw-signature": `sha256=${hmacSha256Hex(secret, text)}`,
          });
        };
        expect((await post({ peer: "alice", content: "before", messageId: "w1" })).status).toBe(200);
        await platform.waitFor((r) => r.json?.replyTo === "w1", 20_000);
        // The reply outbox writes its "sent" marker lazily (batches of 20 ms) and the journal projects
        // it into SurrealDB after that: let both finish so the first write to meet the full disk is
        // the next message's, as the assertion below expects.
        await new Promise((r) => setTimeout(r, 500));
        fillDisk();
        const answer = await post({ peer: "alice", content: `while full${PAST_PAGE_SLACK}`, messageId: "w2" });
        // At once, with the cause, and nothing of the store's path or engine internals for the platform.
        expect(answer.status).toBe(503);
        expect(answer.json).toEqual({ error: "could not accept every message now (session store: the disk is full; nothing was written); redeliver later" });
        expect(await exited(gw.gateway, DEADLINE_MS + 2000)).toBe(1);
        expect(gw.gateway.logs.some((l) => l.level === 60 && l.reason === "disk_full")).toBe(true);
      } finally {
        rmSync(join(mountDir, "filler"), { force: true });
        await gw.stop();
        await platform.close();
      }
    }, 90_000);
  },
);
