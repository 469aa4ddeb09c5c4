/**
 * Capability grants: what a plugin may use is the intersection of
 *   - what its manifest requests (`CapabilityRequest`),
 *   - what the operator grants in exoclaw.toml (`[plugins.grants.<name>]`, `OperatorGrant`), and
 *   - what the operator approved for that exact module (`exoclaw plugin approve`, bound to the
 *     module's sha256, stored in `<state dir>/trust/approvals.json`, outside every plugin
 *     directory: whoever can drop a plugin must not be able to approve it).
 *
 * Approvals bind to module bytes, never to the name in a manifest: a module whose sha256 has no
 * approval gets nothing, even when its manifest names an approved plugin. Earlier approvals of
 * the same name only explain what changed (`approvalDiff`) and rank modules competing for a name.
 *
 * Everything here except `ApprovalStore` is pure. Capability sets are compared at the level of
 * names (`CapabilityRequest`); values (config values, secret values, host paths) only enter in
 * `materializeGrant`, and approvals never store them.
 */
import { randomBytes } from "node:crypto";
import { access, chmod, mkdir, readFile, realpath, rename, writeFile, rm } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import type { CapabilityRequest, EffectiveGrant } from "./capabilities.js";

/** Quota of a kv grant whose `quota_bytes` is not set, bytes (1 MiB). */
export const DEFAULT_KV_QUOTA_BYTES = 1024 * 1024;

/** What the operator grants one plugin in exoclaw.toml (`[plugins.grants.<plugin>]`), resolved. */
export interface OperatorGrant {
  /** Hosts (exact or `*.example.com`) and, optionally, the only methods allowed (absent = all). */
  http?: { hosts: string[]; methods?: string[] };
  /** Quota of the plugin's key-value store, bytes (keys + values). */
  kv?: { quotaBytes: number };
  /** Guest paths mapped to absolute host directories; `write` false = read-only. */
  fs?: { guest: string; host: string; write: boolean }[];
  /** Config values by name. */
  config?: Record<string, string>;
  /**
   * Secrets by name, each read from an environment variable when the plugin is loaded.
   * `allowInsecure`: the host may substitute it into plain-http requests to non-loopback hosts
   * too (default: only https, or http to loopback).
   */
  secrets?: Record<string, { env: string; allowInsecure?: boolean }>;
  clock?: boolean;
  random?: boolean;
  log?: boolean;
  /** Lifecycle hooks the plugin may have called (`[plugins.grants.<plugin>] hooks`). */
  hooks?: string[];
}

/** One approval: the capabilities approved for one module (by sha256), names only. */
export interface ApprovalRecord {
  /** Plugin name from the manifest. */
  name: string;
  /** sha256 of the module bytes, lowercase hex. */
  sha256: string;
  /** requested ∩ operator grant at approval time (names only, never values). */
  approved: CapabilityRequest;
  /** ISO 8601 time of the approval. */
  at: string;
  /**
   * Absolute path the module was approved from (for `plugin list` and messages; the binding is
   * the sha256: the same bytes elsewhere are the same code). Absent in records written before it existed.
   */
  path?: string;
}

/** The result of resolving one plugin's capabilities at load. */
export interface GrantResolution {
  /**
   * How the module stands: `exact` (this sha256 is approved), `changed` (other modules of this
   * name were approved, this one was not: it gets nothing and is `pending_approval` until
   * approved), `none` (the name was never approved), `not_needed` (requests nothing and the name
   * was never approved).
   */
  approval: "exact" | "changed" | "none" | "not_needed";
  /** The newest approval of another module of the same name (what a `changed` module replaced), if any. */
  previous?: ApprovalRecord;
  /** What the plugin runs with, names only (what `effective` holds). */
  granted: CapabilityRequest;
  /** What `exoclaw plugin approve` would add: (request ∩ operator grant) − approval. */
  pending: CapabilityRequest;
  /** What the plugin gets, values included (secrets from the environment). */
  effective: EffectiveGrant;
  /** Problems worth a warning (e.g. a granted secret whose environment variable is unset). Never contains values. */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Host patterns

/** Whether pattern `outer` (exact or `*.suffix`) covers everything `inner` (exact or pattern) does. */
function covers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  if (!outer.startsWith("*.")) return false;
  const suffix = outer.slice(1); // ".example.com"
  return inner.endsWith(suffix) && inner.length > suffix.length;
}

/** The pattern both `a` and `b` allow, or null (`*.x.com` ∩ `api.x.com` = `api.x.com`). */
function intersectHost(a: string, b: string): string | null {
  if (covers(a, b)) return b;
  if (covers(b, a)) return a;
  return null;
}

function intersectHosts(a: string[], b: string[]): string[] {
  const out = new Set<string>();
  for (const x of a)
    for (const y of b) {
      const h = intersectHost(x, y);
      if (h !== null) out.add(h);
    }
  // Drop entries covered by another (keeps the list minimal and deterministic).
  const list = [...out];
  return list.filter((h) => !list.some((o) => o !== h && covers(o, h))).sort();
}

/** Methods both allow; `undefined` = all methods. */
function intersectMethods(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (a === undefined) return b === undefined ? undefined : [...b].sort();
  if (b === undefined) return [...a].sort();
  return a.filter((m) => b.includes(m)).sort();
}

// ---------------------------------------------------------------------------------------------
// Operations on names-level capability sets

/** Drops empty parts so that "nothing" is always `{}` (and compares equal with `isEmpty`). */
export function normalizeRequest(c: CapabilityRequest): CapabilityRequest {
  const out: CapabilityRequest = {};
  if (c.http && c.http.hosts.length > 0 && (c.http.methods === undefined || c.http.methods.length > 0)) {
    out.http = { hosts: [...new Set(c.http.hosts)].sort(), ...(c.http.methods ? { methods: [...new Set(c.http.methods)].sort() } : {}) };
  }
  if (c.kv) out.kv = c.kv.quotaBytes === undefined ? {} : { quotaBytes: c.kv.quotaBytes };
  if (c.fs && c.fs.length > 0) out.fs = c.fs.map((f) => ({ guest: f.guest, write: f.write === true }));
  if (c.config && c.config.length > 0) out.config = [...new Set(c.config)].sort();
  if (c.secrets && c.secrets.length > 0) out.secrets = [...new Set(c.secrets)].sort();
  if (c.clock) out.clock = true;
  if (c.random) out.random = true;
  if (c.log) out.log = true;
  if (c.hooks && c.hooks.length > 0) out.hooks = [...new Set(c.hooks)].sort();
  return out;
}

/** True when `c` asks for nothing. */
export function isEmptyRequest(c: CapabilityRequest): boolean {
  return Object.keys(normalizeRequest(c)).length === 0;
}

/** The names-level view of an operator grant (what it would allow a plugin to request). */
export function grantAsRequest(g: OperatorGrant): CapabilityRequest {
  return normalizeRequest({
    ...(g.http ? { http: g.http } : {}),
    ...(g.kv ? { kv: { quotaBytes: g.kv.quotaBytes } } : {}),
    ...(g.fs ? { fs: g.fs.map((f) => ({ guest: f.guest, write: f.write })) } : {}),
    ...(g.config ? { config: Object.keys(g.config) } : {}),
    ...(g.secrets ? { secrets: Object.keys(g.secrets) } : {}),
    ...(g.clock ? { clock: true } : {}),
    ...(g.random ? { random: true } : {}),
    ...(g.log ? { log: true } : {}),
    ...(g.hooks ? { hooks: g.hooks } : {}),
  });
}

/** The names-level view of an effective grant (for `plugin.list`: no values). */
export function effectiveAsRequest(e: EffectiveGrant): CapabilityRequest {
  return normalizeRequest({
    ...(e.http ? { http: e.http } : {}),
    ...(e.kv ? { kv: { quotaBytes: e.kv.quotaBytes } } : {}),
    ...(e.fs ? { fs: e.fs.map((f) => ({ guest: f.guest, write: f.write })) } : {}),
    ...(e.config ? { config: Object.keys(e.config) } : {}),
    ...(e.secrets ? { secrets: Object.keys(e.secrets) } : {}),
    ...(e.clock ? { clock: true } : {}),
    ...(e.random ? { random: true } : {}),
    ...(e.log ? { log: true } : {}),
    ...(e.hooks ? { hooks: e.hooks } : {}),
  });
}

/**
 * What both `a` and `b` allow. For kv the smaller quota wins (an absent quota = no bound of its
 * own); for fs a guest path must be in both and is writable only if both say so; http hosts
 * intersect pattern-wise (`*.x.com` ∩ `api.x.com` = `api.x.com`) and methods as sets.
 */
export function intersectRequests(a: CapabilityRequest, b: CapabilityRequest): CapabilityRequest {
  const out: CapabilityRequest = {};
  if (a.http && b.http) {
    const hosts = intersectHosts(a.http.hosts, b.http.hosts);
    const methods = intersectMethods(a.http.methods, b.http.methods);
    if (hosts.length > 0 && (methods === undefined || methods.length > 0)) {
      out.http = { hosts, ...(methods ? { methods } : {}) };
    }
  }
  if (a.kv && b.kv) {
    const quotas = [a.kv.quotaBytes, b.kv.quotaBytes].filter((q): q is number => q !== undefined);
    out.kv = quotas.length === 0 ? {} : { quotaBytes: Math.min(...quotas) };
  }
  if (a.fs && b.fs) {
    const fs = a.fs.flatMap((x) => {
      const y = b.fs!.find((f) => f.guest === x.guest);
      return y === undefined ? [] : [{ guest: x.guest, write: x.write === true && y.write === true }];
    });
    if (fs.length > 0) out.fs = fs;
  }
  if (a.config && b.config) out.config = a.config.filter((n) => b.config!.includes(n));
  if (a.secrets && b.secrets) out.secrets = a.secrets.filter((n) => b.secrets!.includes(n));
  if (a.clock && b.clock) out.clock = true;
  if (a.random && b.random) out.random = true;
  if (a.log && b.log) out.log = true;
  if (a.hooks && b.hooks) out.hooks = a.hooks.filter((n) => b.hooks!.includes(n));
  return normalizeRequest(out);
}

/**
 * What `a` asks for that `b` does not cover (used for "pending approval"). Approximations, all
 * on the safe side of asking again: http lists `a`'s hosts not covered by `b` (with `a`'s
 * methods), or all of `a`'s hosts when `a` wants methods `b` lacks; kv is pending when `b` has
 * none or a smaller quota; an fs entry when its guest path is missing from `b` or needs write.
 */
export function subtractRequests(a: CapabilityRequest, b: CapabilityRequest): CapabilityRequest {
  const out: CapabilityRequest = {};
  if (a.http) {
    const bh = b.http;
    const uncovered = bh === undefined ? a.http.hosts : a.http.hosts.filter((h) => !bh.hosts.some((o) => covers(o, h)));
    const methodsMissing =
      bh !== undefined && bh.methods !== undefined && (a.http.methods === undefined || a.http.methods.some((m) => !bh.methods!.includes(m)));
    const hosts = methodsMissing ? a.http.hosts : uncovered;
    if (hosts.length > 0) out.http = { hosts, ...(a.http.methods ? { methods: a.http.methods } : {}) };
  }
  if (a.kv) {
    const aq = a.kv.quotaBytes;
    const bq = b.kv?.quotaBytes;
    if (b.kv === undefined || (bq !== undefined && (aq === undefined || aq > bq))) out.kv = { ...a.kv };
  }
  if (a.fs) {
    const fs = a.fs.filter((x) => {
      const y = b.fs?.find((f) => f.guest === x.guest);
      return y === undefined || (x.write === true && y.write !== true);
    });
    if (fs.length > 0) out.fs = fs;
  }
  if (a.config) out.config = a.config.filter((n) => !(b.config ?? []).includes(n));
  if (a.secrets) out.secrets = a.secrets.filter((n) => !(b.secrets ?? []).includes(n));
  if (a.clock && !b.clock) out.clock = true;
  if (a.random && !b.random) out.random = true;
  if (a.log && !b.log) out.log = true;
  if (a.hooks) out.hooks = a.hooks.filter((n) => !(b.hooks ?? []).includes(n));
  return normalizeRequest(out);
}

/**
 * Turns a names-level capability set (already ∩ the operator grant) into the grant a sandbox
 * enforces, taking values from the operator grant: config values, fs host paths, the kv quota
 * (the request's if smaller, else the operator's or `DEFAULT_KV_QUOTA_BYTES`), and secret values
 * from `env`. A secret whose variable is unset or empty is left out, with a warning naming the
 * variable (never a value).
 * @param allowed names-level set, a subset of `grantAsRequest(grant)`
 * @param grant the operator's grant
 * @param env where secrets are read (normally `process.env`)
 */
export function materializeGrant(
  allowed: CapabilityRequest,
  grant: OperatorGrant,
  env: Record<string, string | undefined>,
): { effective: EffectiveGrant; warnings: string[] } {
  const c = intersectRequests(allowed, grantAsRequest(grant));
  const effective: EffectiveGrant = {};
  const warnings: string[] = [];
  if (c.http) effective.http = { hosts: c.http.hosts, ...(c.http.methods ? { methods: c.http.methods } : {}) };
  if (c.kv) effective.kv = { quotaBytes: c.kv.quotaBytes ?? grant.kv?.quotaBytes ?? DEFAULT_KV_QUOTA_BYTES };
  if (c.fs) {
    effective.fs = c.fs.map((f) => ({ guest: f.guest, host: grant.fs!.find((g) => g.guest === f.guest)!.host, write: f.write === true }));
  }
  if (c.config) effective.config = Object.fromEntries(c.config.map((n) => [n, grant.config![n]!]));
  if (c.secrets) {
    const secrets: Record<string, string> = {};
    for (const n of c.secrets) {
      const variable = grant.secrets![n]!.env;
      const value = env[variable];
      if (value === undefined || value === "") warnings.push(`secret ${n}: environment variable ${variable} is not set; not granted`);
      else secrets[n] = value;
    }
    if (Object.keys(secrets).length > 0) {
      effective.secrets = secrets;
      const insecure = Object.keys(secrets).filter((n) => grant.secrets![n]!.allowInsecure === true);
      if (insecure.length > 0) effective.insecureSecrets = insecure;
    }
  }
  if (c.clock) effective.clock = true;
  if (c.random) effective.random = true;
  if (c.log) effective.log = true;
  if (c.hooks) effective.hooks = c.hooks;
  return { effective, warnings };
}

/**
 * Resolves what one plugin runs with (pure). Capabilities come only from an approval of this
 * exact module (sha256):
 * - an approval for this sha256 → approved ∩ operator grant ∩ request; pending = (request ∩ grant) − approved;
 * - no approval of this sha256 but one of another module of the same name (the file changed, or
 *   a look-alike claims the name) → `changed`: nothing (pure computation), pending = request ∩
 *   grant; the plugin is `pending_approval` even when that is empty, since the name is bound to
 *   the approved modules;
 * - requests nothing, name never approved → `not_needed`;
 * - never approved → `none`: nothing; pending = request ∩ grant.
 * @param request the manifest's capabilities
 * @param grant the operator's grant for this plugin (`{}` when exoclaw.toml has none)
 * @param exact the approval recorded for this sha256, if any
 * @param previous the latest approval recorded for another sha256 of the same name, if any
 * @param env where secret values come from
 */
export function resolveGrant(
  request: CapabilityRequest,
  grant: OperatorGrant,
  exact: ApprovalRecord | undefined,
  previous: ApprovalRecord | undefined,
  env: Record<string, string | undefined>,
): GrantResolution {
  const req = normalizeRequest(request);
  const prev = previous !== undefined ? { previous } : {};
  const grantable = intersectRequests(req, grantAsRequest(grant));
  if (exact === undefined) {
    if (previous !== undefined) return { approval: "changed", ...prev, granted: {}, pending: grantable, effective: {}, warnings: [] };
    if (isEmptyRequest(req)) return { approval: "not_needed", granted: {}, pending: {}, effective: {}, warnings: [] };
    return { approval: "none", granted: {}, pending: grantable, effective: {}, warnings: [] };
  }
  const approved = normalizeRequest(exact.approved);
  const { effective, warnings } = materializeGrant(intersectRequests(approved, grantable), grant, env);
  return { approval: "exact", ...prev, granted: effectiveAsRequest(effective), pending: subtractRequests(grantable, approved), effective, warnings };
}

/** Whether a resolution leaves the plugin waiting for `exoclaw plugin approve` (`plugin.list` status `pending_approval`). */
export function isPendingApproval(r: GrantResolution): boolean {
  return r.approval === "changed" || !isEmptyRequest(r.pending);
}

/**
 * How two modules claiming the same plugin name rank (higher wins the name): an approved module
 * (exact sha256) beats any other, the newer approval beating the older; everything else ranks 0
 * (then the first loaded keeps the name). So which file holds an approved name never depends on
 * directory order.
 * @returns 0 for an unapproved module, else 1 + the approval time in ms
 */
export function approvalRank(r: GrantResolution, exact: ApprovalRecord | undefined): number {
  if (r.approval !== "exact" || exact === undefined) return 0;
  const t = Date.parse(exact.at);
  return 1 + (Number.isFinite(t) ? t : 0);
}

/** What changed between two approvals (names level): kept as before, added, removed. */
export interface ApprovalDiff {
  /** In both. */
  same: CapabilityRequest;
  /** In the new one only. */
  added: CapabilityRequest;
  /** In the old one only. */
  removed: CapabilityRequest;
}

/** `same` / `added` / `removed` between the capabilities of an earlier approval and a new one. */
export function approvalDiff(before: CapabilityRequest, after: CapabilityRequest): ApprovalDiff {
  return { same: intersectRequests(before, after), added: subtractRequests(after, before), removed: subtractRequests(before, after) };
}

/**
 * What `exoclaw plugin approve` records for a module: request ∩ operator grant (names only).
 * @returns the approval record, and what the manifest requests that the operator has not granted
 *   in exoclaw.toml (so it cannot be approved until it is)
 */
export function approvalFor(
  name: string,
  sha256: string,
  request: CapabilityRequest,
  grant: OperatorGrant,
  now: Date = new Date(),
  file?: string,
): { record: ApprovalRecord; notGranted: CapabilityRequest } {
  const req = normalizeRequest(request);
  const grantable = grantAsRequest(grant);
  return {
    record: { name, sha256, approved: intersectRequests(req, grantable), at: now.toISOString(), ...(file !== undefined ? { path: file } : {}) },
    notGranted: subtractRequests(req, grantable),
  };
}

/** One-line human summary of a capability set, e.g. `http(api.x.com GET) kv(1048576 B) clock`; `-` when empty. */
export function describeRequest(c: CapabilityRequest): string {
  const n = normalizeRequest(c);
  const parts: string[] = [];
  if (n.http) parts.push(`http(${n.http.hosts.join(",")}${n.http.methods ? ` ${n.http.methods.join(",")}` : ""})`);
  if (n.kv) parts.push(n.kv.quotaBytes === undefined ? "kv" : `kv(${n.kv.quotaBytes} B)`);
  if (n.fs) parts.push(`fs(${n.fs.map((f) => `${f.guest}${f.write ? ":rw" : ":ro"}`).join(",")})`);
  if (n.config) parts.push(`config(${n.config.join(",")})`);
  if (n.secrets) parts.push(`secrets(${n.secrets.join(",")})`);
  for (const flag of ["clock", "random", "log"] as const) if (n[flag]) parts.push(flag);
  if (n.hooks) parts.push(`hooks(${n.hooks.join(",")})`);
  return parts.length === 0 ? "-" : parts.join(" ");
}

// ---------------------------------------------------------------------------------------------
// Approval store

const approvalFileSchema = z.object({
  version: z.literal(1),
  approvals: z.array(
    z.object({
      name: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      approved: z.record(z.string(), z.unknown()),
      at: z.string(),
      path: z.string().optional(),
    }),
  ),
});

/** Approval records kept per plugin name (older ones are dropped). */
const MAX_RECORDS_PER_NAME = 8;

/** The trust directory, `<stateDir>/trust` (mode 0700): approvals and the validation cache. */
export function trustDir(stateDir: string): string {
  return path.join(stateDir, "trust");
}

/** Where approvals lived before they moved to the trust directory: `<stateDir>/plugins/approvals.json` (the default plugin directory). */
export function legacyApprovalsPath(stateDir: string): string {
  return path.join(stateDir, "plugins", "approvals.json");
}

/** The trust store is somewhere a plugin dropper could write it; `message` says where and what to do. */
export class TrustStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrustStoreError";
  }
}

/** `p` with symlinks resolved as far as it exists (a missing tail is appended as is). */
async function realish(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realish(parent), path.basename(abs));
  }
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

/**
 * Checks that the trust store of `stateDir` is out of reach of whoever can write a plugin
 * directory, before anything reads it:
 * - the trust directory must not be a plugin directory or inside one (who can write a directory
 *   can rename its subdirectories and put their own in place);
 * - no `approvals.json` may sit in a plugin directory or at the legacy place
 *   `<stateDir>/plugins/approvals.json`: exoclaw no longer reads it there, and moving it
 *   silently would trust a file anyone who can drop a plugin could have written. The operator
 *   reviews and moves it (the message has the command) or deletes it and approves again.
 * @param pluginDirs every configured plugin directory (first-party ones included)
 * @throws TrustStoreError naming the file or directory and what to do
 */
export async function checkTrustStoreLocation(stateDir: string, pluginDirs: string[]): Promise<void> {
  const trust = await realish(trustDir(stateDir));
  for (const dir of pluginDirs) {
    const d = await realish(dir);
    if (isInside(trust, d)) {
      throw new TrustStoreError(
        `the trust directory ${trustDir(stateDir)} (plugin approvals) is inside the plugin directory ${dir}, where anyone who can drop a plugin could approve it; ` +
          `set [plugins] dirs (or EXOCLAW_PLUGINS_DIR) to a directory that does not contain the state directory, or move the state directory (EXOCLAW_STATE_DIR)`,
      );
    }
  }
  const target = ApprovalStore.pathFor(stateDir);
  const candidates = [...new Set([legacyApprovalsPath(stateDir), ...pluginDirs.map((d) => path.join(path.resolve(d), "approvals.json"))])];
  for (const file of candidates) {
    const exists = await access(file).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    throw new TrustStoreError(
      `${file}: plugin approvals found in a plugin directory, where anyone who can drop a plugin can edit them; exoclaw reads approvals only from ${target}. ` +
        `Review the file (every entry approves a module by sha256), then move it: mkdir -p -m 700 ${trustDir(stateDir)} && mv ${file} ${target} && chmod 600 ${target} ` +
        `(or delete it and approve each plugin again with: exoclaw plugin approve <file>)`,
    );
  }
}

/**
 * The approvals file, `<state dir>/trust/approvals.json` (directory 0700, file 0600):
 * `{"version": 1, "approvals": [{name, sha256, approved, at, path?}, ...]}`. Written atomically
 * (temporary file in the same directory, then rename), so a reader never sees half a file.
 */
export class ApprovalStore {
  private records: ApprovalRecord[] = [];

  private constructor(readonly file: string) {}

  /** `<stateDir>/trust/approvals.json`. */
  static pathFor(stateDir: string): string {
    return path.join(trustDir(stateDir), "approvals.json");
  }

  /**
   * Reads the store; a missing file is an empty store.
   * @throws Error naming the file if it exists but is not a valid approvals file
   */
  static async open(file: string): Promise<ApprovalStore> {
    const store = new ApprovalStore(file);
    await store.reload();
    return store;
  }

  /**
   * Re-reads the file (after another process, e.g. `exoclaw plugin approve`, changed it).
   * @throws Error naming the file if it is not a valid approvals file (the old records are kept)
   */
  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        this.records = [];
        return;
      }
      throw new Error(`${this.file}: cannot read approvals (${(err as Error).message})`);
    }
    let parsed: z.infer<typeof approvalFileSchema>;
    try {
      parsed = approvalFileSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(
        `${this.file}: not a valid approvals file (${(err as Error).message.split("\n")[0]}); ` +
          `restore it from a backup, or delete it and approve each plugin again with: exoclaw plugin approve <file>`,
      );
    }
    this.records = parsed.approvals as ApprovalRecord[];
  }

  /** All records, oldest first. */
  all(): ApprovalRecord[] {
    return [...this.records];
  }

  /** The approval for exactly this module, if any. */
  exact(name: string, sha256: string): ApprovalRecord | undefined {
    return this.records.find((r) => r.name === name && r.sha256 === sha256);
  }

  /** The newest approval of any module with this plugin name, if any. */
  latest(name: string): ApprovalRecord | undefined {
    return this.records
      .filter((r) => r.name === name)
      .sort((a, b) => a.at.localeCompare(b.at))
      .at(-1);
  }

  /** The latest approval of another module with the same plugin name, if any. */
  previous(name: string, sha256: string): ApprovalRecord | undefined {
    return this.records
      .filter((r) => r.name === name && r.sha256 !== sha256)
      .sort((a, b) => a.at.localeCompare(b.at))
      .at(-1);
  }

  /**
   * Records (or replaces) the approval of `record.sha256` and writes the file atomically.
   * Keeps at most 8 records per plugin name, newest first.
   */
  async add(record: ApprovalRecord): Promise<void> {
    const others = this.records.filter((r) => !(r.name === record.name && r.sha256 === record.sha256));
    const same = others.filter((r) => r.name === record.name).sort((a, b) => a.at.localeCompare(b.at));
    const dropped = new Set(same.slice(0, Math.max(0, same.length - (MAX_RECORDS_PER_NAME - 1))));
    this.records = [...others.filter((r) => !dropped.has(r)), record];
    await this.write();
  }

  private async write(): Promise<void> {
    // Owner only: the approvals decide what every plugin may touch.
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await chmod(path.dirname(this.file), 0o700).catch(() => {});
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify({ version: 1, approvals: this.records }, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
