// The gateway's network edge, on both transports, through a real gateway process and real
// WebSocket clients: which upgrades are admitted (Host, Origin, token), which close codes a
// client sees, that MessagePack extension types are refused, and that a busy port fails loudly.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Packr } from "msgpackr";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

const anthropic = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url });

/** Outcome of one upgrade attempt: opened (and closed again), or refused with a status and body. */
type Upgrade = { opened: true } | { opened: false; status: number; body: string };

/** Tries a WebSocket upgrade with the given headers; never throws. */
function tryUpgrade(url: string, headers: Record<string, string>): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => {
      ws.close();
      resolve({ opened: true });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
    });
    ws.once("error", reject);
  });
}

/** Opens a socket, sends one frame, and resolves with the close code the client saw. */
function closeCodeAfter(url: string, frame: Uint8Array, binary: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 0 });
    ws.once("open", () => ws.send(frame, { binary }));
    ws.on("error", () => {}); // a cut connection also emits close (1006)
    ws.once("close", (code) => resolve(code));
    ws.once("unexpected-response", () => reject(new Error("upgrade refused")));
  });
}

/** Runs the CLI gateway on a given port until it exits; resolves with its exit code and stderr. */
function runGatewayOn(port: number, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-test-"));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)));
  const proc = spawn(process.execPath, [CLI, "gateway", "--port", String(port)], {
    env: { ...clean, EXOCLAW_STATE_DIR: state, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  proc.stdout.resume();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  return new Promise((resolve) =>
    proc.once("exit", (code) => {
      clearTimeout(timer);
      rmSync(state, { recursive: true, force: true });
      resolve({ code, stderr });
    }),
  );
}

const APP_ORIGIN = "https://app.example";

describe.each(["uws", "ws"])("the %s transport", (transport) => {
  let gateway: GatewayHandle;
  const env = () => ({ ...anthropic(), EXOCLAW_TRANSPORT: transport, EXOCLAW_ALLOWED_ORIGINS: `${APP_ORIGIN},self` });

  beforeAll(async () => {
    gateway = await startGateway(env());
    expect(gateway.ready.transport).toBe(transport);
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  describe("cross-site WebSocket hijacking and DNS rebinding", () => {
    it("refuses a browser page from another origin with 403 and no connection", async () => {
      const r = await tryUpgrade(gateway.url, { origin: "http://evil.example" });
      expect(r).toMatchObject({ opened: false, status: 403 });
      expect(!r.opened && JSON.parse(r.body).error).toMatch(/^Origin "http:\/\/evil\.example" is not allowed: add it to \[gateway\] allowed_origins/);
      for (const origin of ["null", "file://", `${APP_ORIGIN}.evil.example`, "http://app.example", `http://evil.example:${gateway.port}`]) {
        expect(await tryUpgrade(gateway.url, { origin }), origin).toMatchObject({ opened: false, status: 403 });
      }
      const refusals = gateway.logs.filter((l) => l.msg === "refused WebSocket upgrade");
      expect(refusals.at(-1)).toMatchObject({ level: 40, status: 403 });
    });

    it("admits listed origins, the gateway's own origins (`self`), and clients that send no Origin", async () => {
      expect(await tryUpgrade(gateway.url, { origin: APP_ORIGIN })).toEqual({ opened: true });
      expect(await tryUpgrade(gateway.url, { origin: `${APP_ORIGIN}:443` })).toEqual({ opened: true });
      for (const host of ["localhost", "127.0.0.1", "[::1]"]) {
        expect(await tryUpgrade(gateway.url, { origin: `http://${host}:${gateway.port}` }), host).toEqual({ opened: true });
      }
      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      client.close();
    });

    it("refuses a foreign Host (DNS rebinding) with 403, admits localhost and loopback IPs with or without the port", async () => {
      for (const host of [`evil.example:${gateway.port}`, "evil.example", `127.0.0.1.evil.example:${gateway.port}`, "bad host"]) {
        const r = await tryUpgrade(gateway.url, { host });
        expect(r, host).toMatchObject({ opened: false, status: 403 });
      }
      const r = await tryUpgrade(gateway.url, { host: `evil.example:${gateway.port}` });
      expect(!r.opened && JSON.parse(r.body).error).toMatch(/allowed_hosts/);
      for (const host of [`localhost:${gateway.port}`, "localhost", "LOCALHOST", `127.0.0.1:${gateway.port}`, "127.0.0.2", `[::1]:${gateway.port}`]) {
        expect(await tryUpgrade(gateway.url, { host }), host).toEqual({ opened: true });
      }
    });
  });

  describe("close codes", () => {
    it("a text frame that is not valid UTF-8 fails the connection; the gateway keeps serving", async () => {
      const code = await closeCodeAfter(gateway.url, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
      // uWebSockets.js fails it without a close frame (RFC 6455 section 7.1.7 makes the close frame
      // a SHOULD; no uWS version sends one): the client sees 1006. The ws transport sends 1007.
      expect(code).toBe(transport === "ws" ? 1007 : 1006);
      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      client.close();
    });

    it("a frame over the 16 MiB hard cap closes the connection with 1009", async () => {
      expect(await closeCodeAfter(gateway.url, new Uint8Array(16 * 1024 * 1024 + 1), true)).toBe(1009);
      expect(await closeCodeAfter(gateway.url, new Uint8Array(20 * 1024 * 1024), false)).toBe(1009);
    });
  });

  describe("slow consumers", () => {
    const MiB = 1024 * 1024;

    it("a client 16 MiB behind on reads is closed with 1008 after everything queued before reaches it, never skipped", async () => {
      const ws = new WebSocket(gateway.url, { maxPayload: 0 });
      ws.on("error", () => {}); // a cut connection also emits close (1006), which the assertion names
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("unexpected-response", () => reject(new Error("upgrade refused")));
      });
      const ids: string[] = [];
      ws.on("message", (data: Buffer) => ids.push(String(JSON.parse(data.toString("utf8")).id).split(":")[0]!));
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
      );
      // Stop reading: the kernel buffers fill, then the server's send buffer grows.
      const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();

      // Each ping echoes its ~1 MB string id (the request stays under the 1 MiB frame limit), so a
      // bounded number of requests pushes the server past 16 MiB plus what the kernel holds.
      const pad = "x".repeat(1_000_000);
      const logsBefore = gateway.logs.length;
      const slowLog = () => gateway.logs.slice(logsBefore).find((l) => l.msg === "closing slow consumer");
      let sent = 0;
      for (; sent < 96 && !slowLog(); sent++) {
        await new Promise<void>((resolve, reject) =>
          ws.send(JSON.stringify({ jsonrpc: "2.0", id: `${sent}:${pad}`, method: "ping" }), (err) => (err ? reject(err) : resolve())),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      const warn = await new Promise<Record<string, unknown> | undefined>((resolve) => {
        const deadline = Date.now() + 5_000;
        const poll = () => (slowLog() || Date.now() > deadline ? resolve(slowLog()) : setTimeout(poll, 20));
        poll();
      });
      expect(warn, `no slow-consumer close after ${sent} requests of 1 MB`).toMatchObject({ level: 40 });
      // The limit is 16 MiB (gateway.max_buffered_bytes): crossed by at most one response.
      expect(warn!.buffered as number).toBeGreaterThan(16 * MiB);
      expect(warn!.buffered as number).toBeLessThan(16 * MiB + 1.1 * 1_000_000);

      socket.resume();
      const noClose = new Promise<{ code: number; reason: string }>((resolve) =>
        setTimeout(() => resolve({ code: 0, reason: "no close within 20 s" }), 20_000).unref(),
      );
      expect(await Promise.race([closed, noClose])).toEqual({ code: 1008, reason: "slow consumer: send buffer full" });
      ws.terminate();
      // Every response queued before the close arrived, in order, none skipped: more than 16 MiB of them.
      expect(ids).toEqual(ids.map((_, i) => String(i)));
      expect(ids.length * 1_000_000).toBeGreaterThan(16 * MiB);
      expect(ids.length).toBeLessThanOrEqual(sent);

      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      client.close();
    }, 60_000);
  });

  describe("MessagePack extension types", () => {
    const withExt = new Packr({ useRecords: false, moreTypes: true, structuredClone: true, useBigIntExtension: true });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const kinds: [string, unknown][] = [
      ["BigInt (1 MiB)", 2n ** BigInt(8 * 1024 * 1000)],
      ["Error", new Error("boom")],
      ["RegExp", /a+/g],
      ["Set", new Set([1, 2])],
      ["Float64Array", new Float64Array([1.5])],
      ["Date (timestamp -1)", new Date(1_700_000_000_123)],
      ["structured-clone reference", cyclic],
    ];

    it.each(kinds)("a request carrying a %s gets -32700 naming the extension; the connection stays", async (_name, value) => {
      const client = await RpcClient.connect(gateway.url);
      try {
        const bytes = withExt.pack({ jsonrpc: "2.0", id: "ext", method: "ping", params: [value] });
        client.sendRaw(bytes);
        const r = await client.waitFor((m) => m.msg.id === null || m.msg.id === "ext");
        expect(r.binary).toBe(true);
        expect(r.msg.error?.code).toBe(-32700);
        expect(r.msg.error.message).toMatch(/^Parse error: MessagePack extension type -?\d+ \(header 0x[0-9a-f]{2}\) at byte \d+ is not allowed/);
        expect((await client.call("ping", undefined, "msgpack")).response.msg.result).toBe("pong");
      } finally {
        client.close();
      }
    });
  });

  it("a second gateway on the same port exits non-zero with `address in use` naming host:port, and the first keeps serving", async () => {
    for (const second of ["uws", "ws"]) {
      const r = await runGatewayOn(gateway.port, { ...anthropic(), EXOCLAW_TRANSPORT: second });
      expect(r.code, `${transport} then ${second}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${gateway.port}: address in use`);
    }
    for (let i = 0; i < 8; i++) {
      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      client.close();
    }
  });
});

describe("the token", () => {
  const token = "s3cret-token-0123456789";

  it.each(["uws", "ws"])("on %s, ?token= still works but logs one deprecation warning per process, never the token", async (transport) => {
    const gateway = await startGateway({ ...anthropic(), EXOCLAW_TRANSPORT: transport, EXOCLAW_TOKEN: token });
    try {
      expect(await tryUpgrade(gateway.url, {})).toMatchObject({ opened: false, status: 401 });
      expect(await tryUpgrade(`${gateway.url}?token=${token}`, {})).toEqual({ opened: true });
      expect(await tryUpgrade(`${gateway.url}?token=${token}`, {})).toEqual({ opened: true });
      expect(await tryUpgrade(gateway.url, { authorization: `Bearer ${token}` })).toEqual({ opened: true });
      // A page from another origin is refused even with the token.
      expect(await tryUpgrade(`${gateway.url}?token=${token}`, { origin: "http://evil.example" })).toMatchObject({ opened: false, status: 403 });
      const warnings = gateway.logs.filter((l) => typeof l.msg === "string" && l.msg.includes("?token="));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40 });
      expect(JSON.stringify(gateway.logs)).not.toContain(token);
    } finally {
      await gateway.stop();
    }
  });

  it("on a wildcard bind with a token, any Host is accepted; with allowed_hosts only those and loopback names", async () => {
    const open = await startGateway({ ...anthropic(), EXOCLAW_TOKEN: token }, ["--bind", "0.0.0.0"]);
    const strict = await startGateway({ ...anthropic(), EXOCLAW_TOKEN: token, EXOCLAW_ALLOWED_HOSTS: "bot.example.com" }, ["--bind", "0.0.0.0"]);
    try {
      const auth = { authorization: `Bearer ${token}` };
      expect(await tryUpgrade(open.url, { ...auth, host: "whatever.example" })).toEqual({ opened: true });
      expect(await tryUpgrade(strict.url, { ...auth, host: "whatever.example" })).toMatchObject({ opened: false, status: 403 });
      expect(await tryUpgrade(strict.url, { ...auth, host: "bot.example.com:443" })).toEqual({ opened: true });
      expect(await tryUpgrade(strict.url, { ...auth, host: `localhost:${strict.port}` })).toEqual({ opened: true });
    } finally {
      await open.stop();
      await strict.stop();
    }
  });
});
