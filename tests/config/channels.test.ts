/** `[channels.<name>] accounts` and `[gateway.webhooks]` in the configuration. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { WEBHOOK_LIMIT_DEFAULTS } from "../../host/src/config/types.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-channels-config-"));

function load(toml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("channel accounts", () => {
  it('default to ["default"]; polling uses the same list', () => {
    const [c] = load('[channels.tg]\nplugin = "telegram"\npoll = { interval_ms = 500 }\n').channels;
    expect(c!.accounts).toEqual(["default"]);
    expect(c!.poll).toEqual({ intervalMs: 500, accounts: ["default"] });
    const [d] = load('[channels.tg]\nplugin = "telegram"\naccounts = ["bot1", "bot2"]\npoll = {}\n').channels;
    expect(d!.accounts).toEqual(["bot1", "bot2"]);
    expect(d!.poll!.accounts).toEqual(["bot1", "bot2"]);
  });

  it("a config naming accounts only under poll keeps them for webhooks too", () => {
    const [c] = load('[channels.tg]\npoll = { accounts = ["bot1"] }\n').channels;
    expect(c!.accounts).toEqual(["bot1"]);
  });

  it("refuses a polled account missing from accounts, and a bad account name, naming the key", () => {
    expect(() => load('[channels.tg]\naccounts = ["bot1"]\npoll = { accounts = ["bot2"] }\n')).toThrow(
      /channels\.tg\.poll\.accounts.*also be listed in the channel's accounts/,
    );
    expect(() => load('[channels.tg]\naccounts = ["bad name"]\n')).toThrow(/channels\.tg\.accounts.*\[A-Za-z0-9_.-\]\{1,64\}/);
    expect(() => load("[channels.tg]\naccounts = []\n")).toThrow(/channels\.tg\.accounts/);
  });
});

describe("[gateway.webhooks]", () => {
  it("has defaults, and reads every key", () => {
    expect(load("").gateway.webhooks).toEqual(WEBHOOK_LIMIT_DEFAULTS);
    const w = load(
      "[gateway.webhooks]\nmax_in_flight_bytes = 1048576\nmax_in_flight = 8\nunsigned_share = 0.5\nper_address_rate = 2.5\nper_address_burst = 10\nper_address_in_flight = 2\nbody_timeout_ms = 5000\n",
    ).gateway.webhooks;
    expect(w).toEqual({
      maxInFlightBytes: 1048576,
      maxInFlight: 8,
      unsignedShare: 0.5,
      perAddressRate: 2.5,
      perAddressBurst: 10,
      perAddressInFlight: 2,
      bodyTimeoutMs: 5000,
    });
  });

  it("refuses out-of-range values naming the key", () => {
    expect(() => load("[gateway.webhooks]\nunsigned_share = 1.5\n")).toThrow(/gateway\.webhooks\.unsigned_share/);
    expect(() => load("[gateway.webhooks]\nmax_in_flight_bytes = 10\n")).toThrow(/gateway\.webhooks\.max_in_flight_bytes/);
    expect(() => load("[gateway.webhooks]\nmax_in_flight_request = 10\n")).toThrow(/max_in_flight_request/);
    expect(() => load("[gateway.webhooks]\nbody_timeout_ms = 5\n")).toThrow(/gateway\.webhooks\.body_timeout_ms/);
  });
});

describe("[channels.<name>] stream (progressive replies)", () => {
  it('is off unless set; "edit" with the interval, per account overrides', async () => {
    const { accountStream } = await import("../../host/src/config/index.js");
    const [off] = load('[channels.tg]\nplugin = "telegram"\n').channels;
    expect(off!.stream).toBeUndefined();
    expect(accountStream(off!.stream, "default")).toBeUndefined();
    const [on] = load(
      '[channels.tg]\nplugin = "telegram"\nstream = "edit"\nstream_interval_ms = 1500\n[channels.tg.per_account.quiet]\nstream = "off"\n',
    ).channels;
    expect(on!.stream).toEqual({ mode: "edit", intervalMs: 1500, perAccount: { quiet: "off" } });
    expect(accountStream(on!.stream, "default")).toEqual({ intervalMs: 1500 });
    expect(accountStream(on!.stream, "quiet")).toBeUndefined();
    // One account streaming on a channel that does not.
    const [one] = load('[channels.tg]\nplugin = "telegram"\n[channels.tg.per_account.live]\nstream = "edit"\n').channels;
    expect(accountStream(one!.stream, "live")).toEqual({ intervalMs: 1000 });
    expect(accountStream(one!.stream, "default")).toBeUndefined();
  });

  it("refuses a bad mode or interval, naming the key", () => {
    expect(() => load('[channels.tg]\nstream = "chunks"\n')).toThrow(/channels\.tg\.stream.*"off" or "edit"/);
    expect(() => load('[channels.tg]\nstream = "edit"\nstream_interval_ms = 10\n')).toThrow(/channels\.tg\.stream_interval_ms/);
  });
});
