/**
 * Capabilities: what a plugin may touch beyond pure computation. Deny by default — a plugin gets
 * the intersection of what its manifest requests and what the operator granted (exoclaw.toml +
 * `exoclaw plugin approve`, bound to the module's sha256). See docs/security.md.
 */

/** What a manifest requests (the `capabilities` object of the `exoclaw.manifest` JSON). */
export interface CapabilityRequest {
  /** Outbound HTTP to these hosts (exact `api.example.com` or `*.example.com`), optionally only these methods. */
  http?: { hosts: string[]; methods?: string[] };
  /** A persistent key-value store scoped to the plugin, at most `quotaBytes` (keys + values). */
  kv?: { quotaBytes?: number };
  /** Directories the plugin sees at `guest` paths; the operator maps each to a host directory. */
  fs?: { guest: string; write?: boolean }[];
  /** Names of config values it reads. */
  config?: string[];
  /** Names of secrets the host may substitute into its outbound HTTP requests or check with hmac_verify / secret_equals (never readable). */
  secrets?: string[];
  clock?: boolean;
  random?: boolean;
  log?: boolean;
  /**
   * Lifecycle hooks the plugin exports (`before_tool_call`, ...; see `HOOK_NAMES` in hooks.ts):
   * a hook sees and may change messages and tool calls of every session, so it is a capability
   * like any other (granted by the operator, approved for the module's sha256).
   */
  hooks?: string[];
}

/** What a plugin actually gets, resolved against the operator's grant. Absent = denied. */
export interface EffectiveGrant {
  http?: { hosts: string[]; methods?: string[] };
  kv?: { quotaBytes: number };
  fs?: { guest: string; host: string; write: boolean }[];
  /** Config values by name. */
  config?: Record<string, string>;
  /** Secret values by name; used only by the host (HTTP substitution, hmac_verify, secret_equals). */
  secrets?: Record<string, string>;
  /** Names of granted secrets the operator lets the host send over plain http to non-loopback hosts (`allow_insecure`). */
  insecureSecrets?: string[];
  clock?: boolean;
  random?: boolean;
  log?: boolean;
  /** Hooks the host may call (still only when `[hooks] order` lists the plugin). */
  hooks?: string[];
}

/** Per-plugin resource limits (defaults in `DEFAULT_LIMITS`). */
export interface PluginLimits {
  /** Wall-clock budget of one call, including host calls it makes, ms. */
  timeoutMs: number;
  /** Maximum guest linear memory, bytes (rounded down to 64 KiB pages). */
  memoryBytes: number;
  /** Largest output a call may return, bytes. */
  maxOutputBytes: number;
  /** Calls of this plugin running at once (= sandbox instances). */
  maxInFlight: number;
  /** Calls allowed to wait for an instance before new ones fail fast. */
  maxQueued: number;
}

export const DEFAULT_LIMITS: PluginLimits = {
  timeoutMs: 1_000,
  memoryBytes: 16 * 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
  maxInFlight: 4,
  maxQueued: 64,
};
