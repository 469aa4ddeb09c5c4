import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../host/src/config/index.js";
import {
  ApprovalStore,
  DEFAULT_KV_QUOTA_BYTES,
  DEFAULT_LIMITS,
  TrustStoreError,
  approvalDiff,
  approvalFor,
  approvalRank,
  checkTrustStoreLocation,
  intersectRequests,
  isPendingApproval,
  parseManifest,
  resolveGrant,
  subtractRequests,
  type ApprovalRecord,
  type CapabilityRequest,
  type OperatorGrant,
} from "../../host/src/plugins/index.js";
import { tempDir } from "./support.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);
const env = { WEATHER_KEY: "s3cret-value", EMPTY: "" };

const grant: OperatorGrant = {
  http: { hosts: ["api.weather.com", "*.example.com"], methods: ["GET", "POST"] },
  kv: { quotaBytes: 4096 },
  fs: [
    { guest: "/data", host: "/srv/data", write: true },
    { guest: "/ro", host: "/srv/ro", write: false },
  ],
  config: { units: "metric", lang: "en" },
  secrets: { WEATHER_KEY: { env: "WEATHER_KEY" }, MISSING: { env: "NOT_SET" } },
  clock: true,
  random: true,
};

const request: CapabilityRequest = {
  http: { hosts: ["api.weather.com", "cdn.example.com", "evil.org"] },
  kv: { quotaBytes: 1_000_000 },
  fs: [{ guest: "/data", write: true }, { guest: "/ro", write: true }, { guest: "/etc" }],
  config: ["units", "theme"],
  secrets: ["WEATHER_KEY"],
  clock: true,
  log: true,
};

const record = (sha256: string, approved: CapabilityRequest, at = "2026-01-01T00:00:00.000Z"): ApprovalRecord => ({ name: "weather", sha256, approved, at });

describe("intersection and difference", () => {
  it("intersects host patterns, methods, quotas, fs write bits, names and flags", () => {
    expect(
      intersectRequests(request, {
        http: { hosts: ["*.example.com", "api.weather.com"], methods: ["GET"] },
        kv: { quotaBytes: 4096 },
        fs: [
          { guest: "/data", write: true },
          { guest: "/ro", write: false },
        ],
        config: ["units"],
        clock: true,
      }),
    ).toEqual({
      http: { hosts: ["api.weather.com", "cdn.example.com"], methods: ["GET"] },
      kv: { quotaBytes: 4096 },
      fs: [
        { guest: "/data", write: true },
        { guest: "/ro", write: false },
      ],
      config: ["units"],
      clock: true,
    });
    // A wildcard request against an exact grant narrows to the grant; disjoint methods deny http.
    expect(intersectRequests({ http: { hosts: ["*.x.com"] } }, { http: { hosts: ["api.x.com", "x.com"] } })).toEqual({ http: { hosts: ["api.x.com"] } });
    expect(intersectRequests({ http: { hosts: ["a.com"], methods: ["PUT"] } }, { http: { hosts: ["a.com"], methods: ["GET"] } })).toEqual({});
    expect(intersectRequests({}, grant as unknown as CapabilityRequest)).toEqual({});
  });

  it("subtracts what is already covered", () => {
    expect(
      subtractRequests({ http: { hosts: ["a.x.com", "b.com"] }, clock: true, config: ["u", "v"] }, { http: { hosts: ["*.x.com"] }, config: ["u"] }),
    ).toEqual({
      http: { hosts: ["b.com"] },
      clock: true,
      config: ["v"],
    });
    expect(subtractRequests({ kv: { quotaBytes: 10 } }, { kv: { quotaBytes: 5 } })).toEqual({ kv: { quotaBytes: 10 } });
    expect(subtractRequests({ kv: { quotaBytes: 5 } }, { kv: { quotaBytes: 10 } })).toEqual({});
    expect(subtractRequests({ fs: [{ guest: "/d", write: true }] }, { fs: [{ guest: "/d", write: false }] })).toEqual({ fs: [{ guest: "/d", write: true }] });
    expect(subtractRequests({ http: { hosts: ["a.com"], methods: ["GET", "PUT"] } }, { http: { hosts: ["a.com"], methods: ["GET"] } })).toEqual({
      http: { hosts: ["a.com"], methods: ["GET", "PUT"] },
    });
  });
});

describe("resolveGrant", () => {
  const grantable: CapabilityRequest = {
    http: { hosts: ["api.weather.com", "cdn.example.com"], methods: ["GET", "POST"] },
    kv: { quotaBytes: 4096 },
    fs: [
      { guest: "/data", write: true },
      { guest: "/ro", write: false },
    ],
    config: ["units"],
    secrets: ["WEATHER_KEY"],
    clock: true,
  };

  it("a plugin that requests nothing needs no approval", () => {
    expect(resolveGrant({}, grant, undefined, undefined, env)).toEqual({ approval: "not_needed", granted: {}, pending: {}, effective: {}, warnings: [] });
    expect(resolveGrant({ clock: false, fs: [] }, {}, undefined, undefined, env).approval).toBe("not_needed");
  });

  it("never approved: runs with nothing; pending = request ∩ operator grant", () => {
    const r = resolveGrant(request, grant, undefined, undefined, env);
    expect(r.approval).toBe("none");
    expect(r.effective).toEqual({});
    expect(r.granted).toEqual({});
    expect(r.pending).toEqual(grantable);
    // Requested but not granted by the operator (evil.org, /etc, theme, log) is not even pending.
    expect(JSON.stringify(r.pending)).not.toMatch(/evil|\/etc|theme|"log"/);
  });

  it("never approved, no operator grant: nothing pending", () => {
    expect(resolveGrant(request, {}, undefined, undefined, env)).toMatchObject({ approval: "none", effective: {}, pending: {} });
  });

  it("approved sha256: effective = approval ∩ current operator grant ∩ request, values filled in", () => {
    const r = resolveGrant(request, grant, record(SHA_A, grantable), undefined, env);
    expect(r.approval).toBe("exact");
    expect(r.pending).toEqual({});
    expect(r.effective).toEqual({
      http: { hosts: ["api.weather.com", "cdn.example.com"], methods: ["GET", "POST"] },
      kv: { quotaBytes: 4096 },
      fs: [
        { guest: "/data", host: "/srv/data", write: true },
        { guest: "/ro", host: "/srv/ro", write: false },
      ],
      config: { units: "metric" },
      secrets: { WEATHER_KEY: "s3cret-value" },
      clock: true,
    });
    expect(r.granted).toEqual(grantable);
  });

  it("approved sha256 but the operator has since narrowed the grant: the grant wins", () => {
    const narrower: OperatorGrant = { ...grant, http: { hosts: ["api.weather.com"], methods: ["GET"] }, clock: false, kv: { quotaBytes: 100 } };
    const r = resolveGrant(request, narrower, record(SHA_A, grantable), undefined, env);
    expect(r.effective.http).toEqual({ hosts: ["api.weather.com"], methods: ["GET"] });
    expect(r.effective.clock).toBeUndefined();
    expect(r.effective.kv).toEqual({ quotaBytes: 100 });
  });

  it("approved sha256, then the operator grants more: the extra is pending", () => {
    const r = resolveGrant(request, { ...grant, log: true }, record(SHA_A, grantable), undefined, env);
    expect(r.pending).toEqual({ log: true });
    expect(r.effective.log).toBeUndefined();
  });

  it("file changed (new sha256, older approval of the same name): nothing at all until approved; everything grantable pending", () => {
    const newRequest: CapabilityRequest = { http: { hosts: ["api.weather.com", "new.example.com"] }, clock: true, random: true };
    const r = resolveGrant(newRequest, grant, undefined, record(SHA_A, grantable), env);
    expect(r.approval).toBe("changed");
    expect(r.previous?.sha256).toBe(SHA_A);
    // The old approval is not carried over, not even for what it still requests.
    expect(r.effective).toEqual({});
    expect(r.granted).toEqual({});
    expect(r.pending).toEqual({ http: { hosts: ["api.weather.com", "new.example.com"], methods: ["GET", "POST"] }, clock: true, random: true });
    expect(isPendingApproval(r)).toBe(true);
  });

  it("file changed to request less, or nothing: still nothing, and still pending approval (the name is bound to approved modules)", () => {
    expect(resolveGrant({ clock: true }, grant, undefined, record(SHA_A, grantable), env)).toMatchObject({
      approval: "changed",
      effective: {},
      pending: { clock: true },
    });
    const empty = resolveGrant({}, grant, undefined, record(SHA_A, grantable), env);
    expect(empty).toMatchObject({ approval: "changed", effective: {}, pending: {} });
    expect(isPendingApproval(empty)).toBe(true);
  });

  it("approvalDiff: same / added / removed between two approvals", () => {
    expect(approvalDiff({ clock: true, secrets: ["A", "B"] }, { clock: true, secrets: ["B", "C"], random: true })).toEqual({
      same: { clock: true, secrets: ["B"] },
      added: { secrets: ["C"], random: true },
      removed: { secrets: ["A"] },
    });
    expect(approvalDiff(grantable, grantable)).toEqual({ same: grantable, added: {}, removed: {} });
  });

  it("approvalRank: an approved module outranks any other, the newer approval the older", () => {
    const older = record(SHA_A, { clock: true }, "2026-01-01T00:00:00.000Z");
    const newer = record(SHA_B, { clock: true }, "2026-02-01T00:00:00.000Z");
    const exactOld = resolveGrant({ clock: true }, grant, older, undefined, env);
    const exactNew = resolveGrant({ clock: true }, grant, newer, older, env);
    const changed = resolveGrant({ clock: true }, grant, undefined, newer, env);
    const none = resolveGrant({ clock: true }, grant, undefined, undefined, env);
    expect(approvalRank(changed, undefined)).toBe(0);
    expect(approvalRank(none, undefined)).toBe(0);
    expect(approvalRank(exactOld, older)).toBeGreaterThan(0);
    expect(approvalRank(exactNew, newer)).toBeGreaterThan(approvalRank(exactOld, older));
  });

  it("an exact approval wins over an older one", () => {
    const r = resolveGrant({ clock: true, random: true }, grant, record(SHA_B, { random: true }), record(SHA_A, { clock: true }), env);
    expect(r).toMatchObject({ approval: "exact", effective: { random: true }, pending: { clock: true } });
  });

  it("a granted secret whose variable is unset is left out, with a warning naming the variable only", () => {
    const r = resolveGrant({ secrets: ["WEATHER_KEY", "MISSING"] }, grant, record(SHA_A, { secrets: ["WEATHER_KEY", "MISSING"] }), undefined, env);
    expect(r.effective).toEqual({ secrets: { WEATHER_KEY: "s3cret-value" } });
    expect(r.granted).toEqual({ secrets: ["WEATHER_KEY"] });
    expect(r.warnings).toEqual(["secret MISSING: environment variable NOT_SET is not set; not granted"]);
    expect(JSON.stringify(r.granted) + r.warnings.join()).not.toContain("s3cret");
  });

  it("kv quota: the request's when smaller, else the operator's", () => {
    expect(resolveGrant({ kv: {} }, { kv: { quotaBytes: 777 } }, record(SHA_A, { kv: {} }), undefined, env).effective).toEqual({ kv: { quotaBytes: 777 } });
    expect(resolveGrant({ kv: { quotaBytes: 10 } }, { kv: { quotaBytes: 777 } }, record(SHA_A, { kv: { quotaBytes: 10 } }), undefined, env).effective).toEqual({
      kv: { quotaBytes: 10 },
    });
  });

  it("approvalFor records request ∩ grant (names only) and reports what the operator did not grant", () => {
    const { record: rec, notGranted } = approvalFor("weather", SHA_A, request, grant, new Date("2026-02-03T04:05:06Z"));
    expect(rec).toEqual({ name: "weather", sha256: SHA_A, approved: grantable, at: "2026-02-03T04:05:06.000Z" });
    expect(notGranted).toEqual({
      http: { hosts: ["api.weather.com", "cdn.example.com", "evil.org"] },
      kv: { quotaBytes: 1_000_000 },
      fs: [
        { guest: "/ro", write: true },
        { guest: "/etc", write: false },
      ],
      config: ["theme"],
      log: true,
    });
    expect(JSON.stringify(rec)).not.toMatch(/metric|s3cret|\/srv/);
  });
});

describe("ApprovalStore", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("starts empty, writes atomically, finds exact and previous approvals, survives reopening", async () => {
    const file = ApprovalStore.pathFor(path.join(dir, "state"));
    expect(file).toBe(path.join(dir, "state", "trust", "approvals.json"));
    const store = await ApprovalStore.open(file);
    expect(store.all()).toEqual([]);
    await store.add(record(SHA_A, { clock: true }, "2026-01-01T00:00:00.000Z"));
    await store.add(record(SHA_B, { random: true }, "2026-01-02T00:00:00.000Z"));
    await store.add(record(SHA_A, { clock: true, random: true }, "2026-01-03T00:00:00.000Z")); // re-approval replaces
    const again = await ApprovalStore.open(file);
    expect(again.all()).toHaveLength(2);
    expect(again.exact("weather", SHA_A)?.approved).toEqual({ clock: true, random: true });
    expect(again.previous("weather", "c".repeat(64))?.sha256).toBe(SHA_A); // the newest other one
    expect(again.previous("weather", SHA_A)?.sha256).toBe(SHA_B);
    expect(again.exact("other", SHA_A)).toBeUndefined();
    expect((await readdir(path.dirname(file))).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(JSON.parse(await readFile(file, "utf8")).version).toBe(1);
    // Owner only: the directory 0700, the file 0600.
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("keeps at most 8 records per plugin name", async () => {
    const store = await ApprovalStore.open(path.join(dir, "many.json"));
    for (let i = 0; i < 12; i++) await store.add(record(i.toString(16).padStart(64, "0"), {}, `2026-01-${String(i + 1).padStart(2, "0")}T00:00:00.000Z`));
    expect(store.all()).toHaveLength(8);
    expect(store.exact("weather", "b".padStart(64, "0"))).toBeDefined();
    expect(store.exact("weather", "0".padStart(64, "0"))).toBeUndefined();
  });

  it("rejects a corrupt file, naming it", async () => {
    const file = path.join(dir, "corrupt.json");
    await writeFile(file, "{not json");
    await expect(ApprovalStore.open(file)).rejects.toThrow(
      /corrupt\.json: not a valid approvals file .*restore it from a backup, or delete it and approve each plugin again with: exoclaw plugin approve <file>/,
    );
  });
});

describe("trust store location", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("accepts the default layout: <state>/plugins for plugins, <state>/trust for approvals", async () => {
    const state = path.join(dir, "ok");
    await mkdir(path.join(state, "plugins"), { recursive: true });
    await expect(checkTrustStoreLocation(state, [path.join(state, "plugins"), "/nonexistent/builtin"])).resolves.toBeUndefined();
  });

  it("refuses a trust directory inside a plugin directory (whoever writes the parent can replace it)", async () => {
    const state = path.join(dir, "inside");
    await mkdir(state, { recursive: true });
    const err = await checkTrustStoreLocation(state, [state]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TrustStoreError);
    expect((err as Error).message).toContain(`the trust directory ${path.join(state, "trust")} (plugin approvals) is inside the plugin directory ${state}`);
  });

  it("refuses old approvals left in the plugin directory, with the command that moves them", async () => {
    const state = path.join(dir, "legacy");
    await mkdir(path.join(state, "plugins"), { recursive: true });
    const old = path.join(state, "plugins", "approvals.json");
    await writeFile(old, JSON.stringify({ version: 1, approvals: [] }));
    const err = await checkTrustStoreLocation(state, [path.join(state, "plugins")]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TrustStoreError);
    expect((err as Error).message).toMatch(new RegExp(`^${old.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: plugin approvals found in a plugin directory`));
    expect((err as Error).message).toContain(`mv ${old} ${path.join(state, "trust", "approvals.json")}`);
    // Also when the old place is no longer a configured plugin directory: the approvals would silently vanish.
    await expect(checkTrustStoreLocation(state, [path.join(dir, "elsewhere")])).rejects.toThrow(TrustStoreError);
  });
});

describe("manifest capabilities", () => {
  const base = { abi: 1, name: "p", version: "1", kind: "tool", tools: [{ name: "t", description: "d", inputSchema: { type: "object" } }] };

  it("accepts the object form, a legacy empty array, and a missing field", () => {
    expect(parseManifest({ ...base, capabilities: [] }, "f").capabilities).toEqual({});
    expect(parseManifest(base, "f").capabilities).toEqual({});
    expect(
      parseManifest({ ...base, capabilities: { http: { hosts: ["*.x.com"], methods: ["GET"] }, kv: { quotaBytes: 5 }, clock: true } }, "f").capabilities,
    ).toEqual({
      http: { hosts: ["*.x.com"], methods: ["GET"] },
      kv: { quotaBytes: 5 },
      clock: true,
    });
  });

  it.each([
    [{ capabilities: ["net"] }, "capabilities", /must be a table of capabilities/],
    [{ capabilities: { net: true } }, "capabilities", /unknown capability "net"/],
    [{ capabilities: { http: { hosts: ["Bad Host"] } } }, "capabilities.http.hosts[0]", /host name/],
    [{ capabilities: { http: { hosts: ["a.com"], methods: ["FETCH"] } } }, "capabilities.http.methods[0]", /GET/],
    [{ capabilities: { fs: [{ guest: "data" }] } }, "capabilities.fs[0].guest", /absolute/],
    [{ capabilities: { fs: [{ guest: "/a/../b" }] } }, "capabilities.fs[0].guest", /\.\./],
    [{ capabilities: { kv: { quotaBytes: -1 } } }, "capabilities.kv.quotaBytes", /.+/],
    [{ capabilities: { secrets: ["lower"] } }, "capabilities.secrets[0]", /A-Z/],
    [{ capabilities: { clock: "yes" } }, "capabilities.clock", /boolean/],
  ])("rejects %j naming the field", (extra, field, message) => {
    let caught: unknown;
    try {
      parseManifest({ ...base, ...extra }, "plugin.wasm");
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ field });
    expect((caught as Error).message).toMatch(message);
  });
});

describe("config: [plugins.grants] and [plugins.limits]", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await tempDir();
    await mkdir(path.join(dir, "state"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const load = async (toml: string) => {
    const file = path.join(dir, "exoclaw.toml");
    await writeFile(file, toml);
    return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: path.join(dir, "state") }, []);
  };

  it("reads grants and per-plugin limits over the defaults", async () => {
    const config = await load(`
[plugins]
max_instances = 3
[plugins.limits]
timeout_ms = 2000
memory_mb = 32
[plugins.limits.weather]
timeout_ms = 5000
max_queued = 2
[plugins.grants.weather]
http = { hosts = ["api.weather.com"], methods = ["GET"] }
kv = {}
fs = [{ guest = "/data", host = "data", write = true }, { guest = "/ro", host = "/srv/ro" }]
config = { units = "metric" }
secrets = { WEATHER_KEY = { env = "WEATHER_API_KEY" }, PLAIN = { env = "PLAIN", allow_insecure = true } }
clock = true
log = false
`);
    expect(config.stateDir).toBe(path.join(dir, "state"));
    expect(config.plugins.defaultLimits).toEqual({ ...DEFAULT_LIMITS, timeoutMs: 2000, memoryBytes: 32 * 1024 * 1024, maxInFlight: 3 });
    expect(config.plugins.limits).toEqual({ weather: { ...DEFAULT_LIMITS, timeoutMs: 5000, memoryBytes: 32 * 1024 * 1024, maxInFlight: 3, maxQueued: 2 } });
    expect(config.plugins.grants).toEqual({
      weather: {
        http: { hosts: ["api.weather.com"], methods: ["GET"] },
        kv: { quotaBytes: DEFAULT_KV_QUOTA_BYTES },
        fs: [
          { guest: "/data", host: path.join(dir, "data"), write: true }, // relative to the config file
          { guest: "/ro", host: "/srv/ro", write: false },
        ],
        config: { units: "metric" },
        secrets: { WEATHER_KEY: { env: "WEATHER_API_KEY" }, PLAIN: { env: "PLAIN", allowInsecure: true } },
        clock: true,
      },
    });
    expect(config.plugins.watch).toBe(true);
  });

  it("defaults to no grants and DEFAULT_LIMITS", async () => {
    const config = await load("");
    expect(config.plugins.grants).toEqual({});
    expect(config.plugins.defaultLimits).toEqual(DEFAULT_LIMITS);
  });

  it.each([
    ["[plugins.grants.weather]\nnetwork = true\n", /plugins\.grants\.weather: Unrecognized key: "network"/],
    ["[plugins.grants.weather]\nhttp = { hosts = [] }\n", /plugins\.grants\.weather\.http\.hosts/],
    ["[plugins.grants.Weather]\nclock = true\n", /plugins\.grants\.Weather/],
    ["[plugins.limits]\ntimeout_ms = -1\n", /plugins\.limits\.timeout_ms/],
    ["[plugins.limits.weather]\nmemory = 3\n", /plugins\.limits\.weather/],
    ['[plugins.grants.weather]\nsecrets = { key = { env = "X" } }\n', /plugins\.grants\.weather\.secrets/],
  ])("rejects %j naming the field", async (toml, message) => {
    await expect(load(toml)).rejects.toThrow(ConfigError);
    await expect(load(toml)).rejects.toThrow(message);
  });
});
