/** `[[gateway.clients]]`: extra client tokens, each its own account on channel ws with its own scopes. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { createIdentifier } from "../../host/src/gateway/identity.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-clients-config-"));

function load(toml: string, env: Record<string, string> = {}) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: dir, ...env }, []);
}
const client = (body: string) => `[[gateway.clients]]\n${body}\n`;

describe("[[gateway.clients]]", () => {
  it("defaults to no clients; reads token or token_env; scopes default to chat", () => {
    expect(load("").gateway.clients).toEqual([]);
    const c = load(
      client('name = "alice"\ntoken = "alice-token-0123456789"') + client('name = "ops.bot"\ntoken_env = "OPS_TOKEN"\nscopes = ["chat", "admin", "admin"]'),
      { OPS_TOKEN: "ops-token-0123456789" },
    );
    expect(c.gateway.clients).toEqual([
      { name: "alice", token: "alice-token-0123456789", scopes: ["chat"] },
      { name: "ops.bot", token: "ops-token-0123456789", scopes: ["chat", "admin"] },
    ]);
  });

  it.each([
    [client('name = "a b"\ntoken = "alice-token-0123456789"'), /gateway\.clients\.0\.name: name must match/],
    [client('name = "a"\ntoken = "short"'), /gateway\.clients\.0\.token: token must be at least 16 characters/],
    [client('name = "a"'), /gateway\.clients\.0: give exactly one of token and token_env/],
    [client('name = "default"\ntoken = "alice-token-0123456789"'), /gateway\.clients\[0\]: name "default" is the gateway token's account/],
    [client('name = "a"\ntoken = "alice-token-0123456789"\nscopes = ["root"]'), /gateway\.clients\.0\.scopes\.0/],
    [client('name = "a"\ntoken = "alice-token-0123456789"\nscopes = []'), /scopes must name at least one of chat, admin, impersonate/],
    [client('name = "a"\ntoken_env = "UNSET_TOKEN_VAR"'), /gateway\.clients\[0\]: token_env UNSET_TOKEN_VAR is not set/],
    [
      client('name = "a"\ntoken = "alice-token-0123456789"') + client('name = "a"\ntoken = "other-token-0123456789"'),
      /gateway\.clients\[1\]: duplicate client name "a"/,
    ],
    [
      client('name = "a"\ntoken = "alice-token-0123456789"') + client('name = "b"\ntoken = "alice-token-0123456789"'),
      /gateway\.clients\[1\]: token is the same as the gateway token or another client's/,
    ],
  ])("refuses %j naming the key", (toml, error) => {
    expect(() => load(toml)).toThrow(error);
  });

  it("never echoes a token in an error", () => {
    expect(() => load(client('name = "a"\ntoken = "alice-token-0123456789"') + client('name = "b"\ntoken = "alice-token-0123456789"'))).toThrow(
      /^(?![\s\S]*alice-token)/,
    );
  });
});

describe("createIdentifier", () => {
  const view = (i: ReturnType<ReturnType<typeof createIdentifier>>) => (i ? { account: i.account, scopes: [...i.scopes] } : null);

  it("maps the gateway token to default/chat+admin and each client token to its own identity", () => {
    const identify = createIdentifier({ token: "gateway-token-0123456789", clients: [{ name: "alice", token: "alice-token-0123456789", scopes: ["chat"] }] });
    expect(view(identify("gateway-token-0123456789"))).toEqual({ account: "default", scopes: ["chat", "admin"] });
    expect(view(identify("alice-token-0123456789"))).toEqual({ account: "alice", scopes: ["chat"] });
    expect(identify("wrong-token-0123456789")).toBeNull();
    expect(identify(undefined)).toBeNull();
  });

  it("without a gateway token (loopback): no token is the gateway identity; a client token is that client; a wrong one is refused", () => {
    const identify = createIdentifier({ clients: [{ name: "alice", token: "alice-token-0123456789", scopes: ["chat"] }] });
    expect(view(identify(undefined))).toEqual({ account: "default", scopes: ["chat", "admin"] });
    expect(view(identify("alice-token-0123456789"))).toEqual({ account: "alice", scopes: ["chat"] });
    expect(identify("wrong-token-0123456789")).toBeNull();
    // Nothing configured at all: any client is the gateway identity, as before.
    expect(view(createIdentifier({})("anything"))).toEqual({ account: "default", scopes: ["chat", "admin"] });
  });
});
