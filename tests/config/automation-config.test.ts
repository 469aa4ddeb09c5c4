import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_HEARTBEAT_PROMPT, loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-cron-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(toml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: dir }, []);
}

describe("[[cron]] and [agents.heartbeat]", () => {
  it("loads jobs with defaults (agent, account, missed) and heartbeats with the default prompt", () => {
    const c = load(`
[[agents]]
id = "main"
heartbeat = { every = "30m", deliver = { channel = "telegram", peer = "1" } }

[[cron]]
id = "digest"
cron = "0 9 * * 1-5"
tz = "Europe/Berlin"
prompt = "digest"
deliver = { channel = "telegram", peer = "1" }
`);
    expect(c.cron).toEqual([
      {
        id: "digest",
        agent: "main",
        cron: "0 9 * * 1-5",
        tz: "Europe/Berlin",
        prompt: "digest",
        deliver: { channel: "telegram", account: "default", peer: "1" },
        missed: "skip",
      },
    ]);
    expect(c.agents[0]!.heartbeat).toEqual({ every: "30m", prompt: DEFAULT_HEARTBEAT_PROMPT, deliver: { channel: "telegram", account: "default", peer: "1" } });
  });

  it("refuses a bad job naming the job and the field", () => {
    const bad: [string, RegExp][] = [
      [`[[cron]]\nid = "a"\ncron = "61 * * * *"\nprompt = "p"`, /cron\.0\.cron|cron\[0\].*cron|is not a valid cron expression/],
      [`[[cron]]\nid = "a"\nevery = "1h"\ncron = "* * * * *"\nprompt = "p"`, /exactly one of cron, every or at/],
      [`[[cron]]\nid = "a"\nevery = "500ms"\nprompt = "p"`, /at least 1s/],
      [`[[cron]]\nid = "a"\ncron = "* * * * *"\ntz = "Mars/Base"\nprompt = "p"`, /IANA time zone/],
      [`[[cron]]\nid = "a"\nevery = "1h"\nprompt = "p"\nagent = "ghost"`, /cron\[0\] \("a"\): agent "ghost" is not an agent id/],
      [`[[cron]]\nid = "a"\nevery = "1h"\nprompt = "p"\n[[cron]]\nid = "a"\nevery = "2h"\nprompt = "q"`, /duplicate job id "a"/],
      [`[[cron]]\nid = "a b"\nevery = "1h"\nprompt = "p"`, /job ids may use/],
    ];
    for (const [toml, re] of bad) expect(() => load(toml), toml).toThrow(re);
  });
});
