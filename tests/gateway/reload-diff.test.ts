// What a config reload applies live and what it reports as needing a restart (`diffConfig`),
// on configurations loaded from real files by `loadConfig`.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { diffConfig } from "../../host/src/gateway/reload.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-reload-diff-"));
let n = 0;

function load(toml: string) {
  const file = join(dir, `c${n++}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

const BASE = `
[gateway]
token = "aaaaaaaaaaaaaaaa"
[[agents]]
id = "main"
system_prompt = "one"
[channels.telegram]
allow = ["1"]
[plugins.grants.web]
http = { hosts = ["api.example.com"] }
`;

describe("diffConfig", () => {
  it("[metrics] enabled needs a restart (the metrics are wired at start-up)", () => {
    expect(diffConfig(load(BASE), load(`${BASE}\n[metrics]\nenabled = false\n`))).toEqual({ live: [], restart: ["metrics.enabled"] });
    expect(diffConfig(load(BASE), load(`${BASE}\n[metrics]\nenabled = true\n`))).toEqual({ live: [], restart: [] });
  });

  it("[gateway] heap needs a restart (V8 flags are set once, at start)", () => {
    expect(diffConfig(load(BASE), load(BASE.replace('token = "aaaaaaaaaaaaaaaa"', 'token = "aaaaaaaaaaaaaaaa"\nheap = "throughput"')))).toEqual({
      live: [],
      restart: ["gateway.heap"],
    });
  });

  it("the same file: nothing to do", () => {
    expect(diffConfig(load(BASE), load(BASE))).toEqual({ live: [], restart: [] });
  });

  it("agents, bindings, channels, grants and limits are live, by key", () => {
    const next = load(
      `${BASE.replace('system_prompt = "one"', 'system_prompt = "two"').replace('allow = ["1"]', 'allow = ["1", "2"]').replace("api.example.com", "api2.example.com")}
[[agents]]
id = "support"
[[bindings]]
agent = "support"
peer = "2"
[plugins.limits]
timeout_ms = 2345
`,
    );
    expect(diffConfig(load(BASE), next)).toEqual({
      live: ["agents.main", "agents.support", "bindings", "channels.telegram", "plugins.grants.web", "plugins.limits"],
      restart: [],
    });
  });

  it("listener, token, TLS, store, bus and providers need a restart, named by key (never by value)", () => {
    const next = load(
      `${BASE.replace('token = "aaaaaaaaaaaaaaaa"', 'token = "bbbbbbbbbbbbbbbb"\nport = 7300\nbind = "127.0.0.2"\ntls = { cert = "c.pem", key = "k.pem" }')}
[store]
url = "memory"
[bus]
url = "nats://127.0.0.1:4222"
[providers.openai]
base_url = "http://127.0.0.1:1/v1"
`,
    );
    const d = diffConfig(load(BASE), next);
    expect(d.live).toEqual([]);
    expect(d.restart).toEqual(["gateway.bind", "gateway.port", "gateway.token", "gateway.tls", "providers.openai", "store", "bus"]);
    expect(JSON.stringify(d)).not.toContain("bbbb");
  });
});
