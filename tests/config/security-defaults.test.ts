/**
 * The numbers docs/security.md states as defaults, pinned as literals: changing a default in the
 * code without changing the documentation (and this test) fails here. Each is checked both as the
 * exported constant and as what `loadConfig` yields for a config file that sets nothing, so a
 * fallback written elsewhere (e.g. `max_instances ?? 4`) is covered too.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CHANNEL_DEFAULTS, loadConfig } from "../../host/src/config/index.js";
import { DEFAULT_LIMITS } from "../../host/src/plugins/capabilities.js";

const KiB = 1024;
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "exoclaw-security-defaults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads a config file with the given TOML and no EXOCLAW_* overrides. */
function load(toml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: dir }, []);
}

describe("docs/security.md, Plugins > Limits: per-plugin defaults", () => {
  const documented = { timeoutMs: 1_000, memoryBytes: 16 * MiB, maxOutputBytes: 1 * MiB, maxInFlight: 4, maxQueued: 64 };

  it("DEFAULT_LIMITS: wall time 1 s, guest memory 16 MiB, output 1 MiB, 4 in flight, 64 queued", () => {
    expect(DEFAULT_LIMITS).toEqual(documented);
  });

  it("a config without [plugins.limits] gives every plugin those limits", () => {
    const config = load("");
    expect(config.plugins.defaultLimits).toEqual(documented);
    expect(config.plugins.maxInstances).toBe(4);
  });
});

describe("docs/security.md, Webhooks: per-channel limits", () => {
  const documented = { maxBodyBytes: 1 * MiB, maxMessageBytes: 16 * KiB, maxAttachments: 4 };

  it("CHANNEL_DEFAULTS: max_body_bytes 1 MiB, max_message_bytes 16 KiB, max_attachments 4", () => {
    expect(CHANNEL_DEFAULTS).toMatchObject(documented);
  });

  it("a [channels.<name>] table that sets no limit gets those limits", () => {
    const [channel] = load('[channels.webhook]\nallow = ["alice"]\n').channels;
    expect(channel).toMatchObject({ name: "webhook", ...documented });
  });

  it("doors are closed by default: a channel with no allow list admits nobody", () => {
    const [channel] = load("[channels.webhook]\n").channels;
    expect(channel!.allow).toEqual([]);
  });
});

describe("docs/security.md, Network edge: gateway defaults", () => {
  it("binds 127.0.0.1, frames over 1 MiB get -32003, a client 16 MiB behind is closed (1008)", () => {
    const { gateway } = load("");
    expect(gateway.bind).toBe("127.0.0.1");
    expect(gateway.maxFrameBytes).toBe(1 * MiB);
    expect(gateway.maxBufferedBytes).toBe(16 * MiB);
    expect(gateway.token).toBeUndefined();
  });
});
