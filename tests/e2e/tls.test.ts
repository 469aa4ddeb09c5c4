// TLS on the gateway's own port ([gateway.tls]), against a real gateway process: a wss:// client
// trusting the test CA (tests/fixtures/tls, generated with openssl, valid 100 years) completes a
// chat turn, https:// serves /health, a replaced certificate is served to new connections, and
// a key that does not match its certificate (or a missing file) refuses start-up naming the file.
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { ROOT, RpcClient } from "../support/gateway.js";

const FIXTURES = join(ROOT, "tests", "fixtures", "tls");
const ca = readFileSync(join(FIXTURES, "ca.pem"));
const fingerprint = (file: string) => new X509Certificate(readFileSync(join(FIXTURES, file))).fingerprint256;

let dir: string;
let gw: ChannelGateway;

/** The fingerprint of the certificate a new TLS connection to the gateway gets. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "exoclaw-tls-"));
  copyFileSync(join(FIXTURES, "server.pem"), join(dir, "cert.pem"));
  copyFileSync(join(FIXTURES, "server.key"), join(dir, "key.pem"));
  // Absolute paths: the harness writes the config into its own state directory.
  gw = await startChannelGateway({ config: { gateway: { tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } } } });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("[gateway.tls]", () => {
  it("a wss:// client trusting the test CA completes a chat turn; the ready line says wss:// and the ws transport", async () => {
    expect(gw.gateway.ready).toMatchObject({ transport: "ws", url: `wss://127.0.0.1:${gw.port}/ws` });
    expect(gw.gateway.logs.some((l) => String(l.msg).startsWith("TLS on: serving wss:// and https://"))).toBe(true);
    const client = await RpcClient.connect(`wss://localhost:${gw.port}/ws`, {}, { ca });
    const { response } = await client.call("chat.send", { content: "hello over tls" });
    expect(response.msg.error).toBeUndefined();
    expect(response.msg.result.text).toBe("You said: hello over tls");
    client.close();
  });

  it("https:// serves /health on the same port; plain ws:// is not spoken there", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      get(`https://localhost:${gw.port}/health`, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).once("error", reject);
    });
    expect(status).toBe(200);
    await expect(RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`)).rejects.toThrow();
  });

  it("a replaced certificate and key are served to new connections; open ones keep going", async () => {
    expect(await servedFingerprint(gw.port)).toBe(fingerprint("server.pem"));
    const open = await RpcClient.connect(`wss://localhost:${gw.port}/ws`, {}, { ca });
    // Renewed as tools like certbot do: new files renamed over the old ones, key first.
    copyFileSync(join(FIXTURES, "server2.key"), join(dir, "key.pem.new"));
    copyFileSync(join(FIXTURES, "server2.pem"), join(dir, "cert.pem.new"));
    renameSync(join(dir, "key.pem.new"), join(dir, "key.pem"));
    renameSync(join(dir, "cert.pem.new"), join(dir, "cert.pem"));
    await gw.waitForLog((l) => l.msg === "TLS certificate reloaded: new connections get it" && l.fingerprint256 === fingerprint("server2.pem"));
    expect(await servedFingerprint(gw.port)).toBe(fingerprint("server2.pem"));
    expect((await open.call("ping")).response.msg.result).toBe("pong");
    const fresh = await RpcClient.connect(`wss://localhost:${gw.port}/ws`, {}, { ca });
    expect((await fresh.call("chat.send", { content: "after renewal" })).response.msg.result.text).toBe("You said: after renewal");
    open.close();
    fresh.close();
  });
});

describe("[gateway.tls] refusals at start-up", () => {
  it("a key that does not match the certificate refuses to start, naming the key file", async () => {
    const key = join(FIXTURES, "server2.key");
    await expect(startChannelGateway({ config: { gateway: { tls: { cert: join(FIXTURES, "server.pem"), key } } } })).rejects.toThrow(
      `[gateway.tls] key: ${key} does not match the certificate in ${join(FIXTURES, "server.pem")}`,
    );
  });

  it("a missing certificate file refuses to start, naming it", async () => {
    const cert = join(FIXTURES, "missing.pem");
    await expect(startChannelGateway({ config: { gateway: { tls: { cert, key: join(FIXTURES, "server.key") } } } })).rejects.toThrow(
      `[gateway.tls] cert: cannot read ${cert}`,
    );
  });

  it("transport uws forced together with TLS is an error saying why", async () => {
    await expect(
      startChannelGateway({
        config: { gateway: { transport: "uws", tls: { cert: join(FIXTURES, "server.pem"), key: join(FIXTURES, "server.key") } } },
      }),
    ).rejects.toThrow('transport "uws" cannot serve [gateway.tls]');
  });
});
