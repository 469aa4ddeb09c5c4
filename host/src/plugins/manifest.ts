import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as z from "zod";
import type { CapabilityRequest } from "./capabilities.js";
import { HOOK_NAMES } from "./hook-names.js";
import type { PluginManifest } from "./types.js";
import { wasmApi, type WasmModule } from "./wasm.js";

/** Name of the custom section holding a plugin's manifest (UTF-8 JSON). */
export const MANIFEST_SECTION = "exoclaw.manifest";

/** The plugin ABI version this host speaks. */
export const HOST_ABI_VERSION = 1;

/** Plugin names double as file names and log keys, so keep them boring. */
const PLUGIN_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
/** What both Anthropic and OpenAI accept as a tool name. */
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
/** `signatureHeaders` entries: lower-case HTTP header names (the host compares lower-cased names). */
const HEADER_NAME_RE = /^[a-z0-9-]{1,64}$/;

/**
 * A plugin file whose manifest is missing or invalid. `field` is the dotted path of the
 * offending manifest field (e.g. `tools[0].inputSchema.type`), or null when the problem is
 * the section itself.
 */
export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly field: string | null,
    readonly reason: string,
  ) {
    super(`${file}: ${field === null ? "" : `manifest field ${field}: `}${reason}`);
    this.name = "ManifestError";
  }
}

const toolSpecSchema = z.object({
  name: z.string().regex(TOOL_NAME_RE, "must match [a-zA-Z0-9_-]{1,64}"),
  description: z.string().min(1, "must not be empty"),
  // Models require an object schema at the top level; the rest is the plugin's business.
  inputSchema: z.looseObject({ type: z.literal("object") }),
});

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
/** `api.example.com` or `*.example.com`, lowercase. */
const HOST_PATTERN_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const CONFIG_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
const SECRET_NAME_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const CAPABILITY_KEYS = ["http", "kv", "fs", "config", "secrets", "clock", "random", "log", "hooks"];

/**
 * zod schema of a manifest's `capabilities` (`CapabilityRequest`). Strict: an unknown
 * capability is an error, not silently dropped, so a typo never looks like "granted nothing".
 * `undefined` and a legacy empty array are read as `{}`.
 */
export const capabilityRequestSchema = z.preprocess(
  (v) => (v === undefined || (Array.isArray(v) && v.length === 0) ? {} : v),
  z.strictObject(
    {
      http: z
        .strictObject({
          hosts: z
            .array(z.string().regex(HOST_PATTERN_RE, "must be a lowercase host name like api.example.com or *.example.com"))
            .min(1, "must list at least one host"),
          methods: z.array(z.enum(HTTP_METHODS)).min(1, "must list at least one method (omit it for all)").optional(),
        })
        .optional(),
      kv: z.strictObject({ quotaBytes: z.number().int().positive().optional() }).optional(),
      fs: z
        .array(
          z.strictObject({
            guest: z
              .string()
              .regex(/^\/[^\0]*$/, "must be an absolute guest path")
              .refine((p) => !p.split("/").includes(".."), 'must not contain ".."'),
            write: z.boolean().optional(),
          }),
        )
        .optional(),
      config: z.array(z.string().regex(CONFIG_NAME_RE, `must match ${CONFIG_NAME_RE.source}`)).optional(),
      secrets: z.array(z.string().regex(SECRET_NAME_RE, `must match ${SECRET_NAME_RE.source}`)).optional(),
      clock: z.boolean().optional(),
      random: z.boolean().optional(),
      log: z.boolean().optional(),
      hooks: z
        .array(z.enum(HOOK_NAMES, { error: () => `must be one of ${HOOK_NAMES.join(", ")}` }))
        .min(1, "must list at least one hook (omit it for none)")
        .optional(),
    },
    {
      error: (issue) =>
        issue.code === "invalid_type"
          ? `must be a table of capabilities (${CAPABILITY_KEYS.join(", ")}); the old list form is only accepted empty`
          : issue.code === "unrecognized_keys"
            ? `unknown capability ${issue.keys.map((k) => `"${k}"`).join(", ")} (expected ${CAPABILITY_KEYS.join(", ")})`
            : undefined,
    },
  ),
) as unknown as z.ZodType<CapabilityRequest>;

/** zod schema of the embedded manifest (`PluginManifest`, ABI v1). Unknown keys are dropped. */
export const pluginManifestSchema = z
  .object({
    abi: z.literal(HOST_ABI_VERSION, {
      error: (issue) => `unsupported ABI version ${JSON.stringify(issue.input)} (this host speaks ${HOST_ABI_VERSION})`,
    }),
    name: z.string().regex(PLUGIN_NAME_RE, "must be lowercase [a-z][a-z0-9_-]{0,63}"),
    version: z.string().min(1, "must not be empty"),
    kind: z.enum(["tool", "channel", "both"]),
    description: z.string().optional(),
    tools: z.array(toolSpecSchema),
    capabilities: capabilityRequestSchema,
    signatureHeaders: z
      .array(z.string().regex(HEADER_NAME_RE, "must be a lower-case header name [a-z0-9-]{1,64}"))
      .min(1, "must list at least one header (omit it for none)")
      .max(8, "at most 8 headers")
      .optional(),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.tools.forEach((t, i) => {
      if (seen.has(t.name)) {
        ctx.addIssue({ code: "custom", path: ["tools", i, "name"], message: `duplicate tool name "${t.name}"` });
      }
      seen.add(t.name);
    });
    // A hooks-only plugin (kind "tool", no tools, `capabilities.hooks`) offers the model nothing.
    if (m.kind !== "channel" && m.tools.length === 0 && !(m.kind === "tool" && (m.capabilities.hooks?.length ?? 0) > 0)) {
      ctx.addIssue({ code: "custom", path: ["tools"], message: `a "${m.kind}" plugin must declare at least one tool (or, kind "tool", only hooks)` });
    }
  });

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `${out === "" ? "" : "."}${String(p)}`;
  return out === "" ? "(root)" : out;
}

/**
 * Validates an already-parsed manifest object.
 * @param value the JSON value from the manifest section
 * @param file the plugin file, for error messages
 * @throws ManifestError naming the first offending field (all problems are in the message).
 */
export function parseManifest(value: unknown, file: string): PluginManifest {
  // Without zod's JIT: a manifest is parsed a few times per start (once per plugin file), where
  // generating and compiling a parser costs more than it saves (issue 13, start-up).
  const result = pluginManifestSchema.safeParse(value, { jitless: true });
  if (result.success) return result.data;
  const issues = result.error.issues;
  const first = issues[0];
  const field = first === undefined ? null : formatPath(first.path);
  const reason = issues.map((i) => (issues.length > 1 ? `${formatPath(i.path)}: ${i.message}` : i.message)).join("; ");
  throw new ManifestError(file, field, reason);
}

/**
 * Reads and validates the manifest of a compiled module. Runs no plugin code: custom sections
 * are read from the compiled module's metadata.
 * @param module a compiled (not instantiated) module
 * @param file the plugin file, for error messages
 * @throws ManifestError if the section is missing, duplicated, not UTF-8 JSON, or invalid.
 */
export function readManifest(module: WasmModule, file: string): PluginManifest {
  return manifestFromSections(wasmApi.Module.customSections(module, MANIFEST_SECTION), file);
}

/**
 * Reads and validates a manifest from the payloads of a module's `exoclaw.manifest` custom
 * sections (all of them, in order: `WebAssembly.Module.customSections`, or `readCustomSections`
 * of the bytes).
 * @param sections the payloads
 * @param file the plugin file, for error messages
 * @throws ManifestError if the section is missing, duplicated, not UTF-8 JSON, or invalid.
 */
export function manifestFromSections(sections: readonly (ArrayBuffer | Uint8Array)[], file: string): PluginManifest {
  if (sections.length === 0) {
    throw new ManifestError(file, null, `no "${MANIFEST_SECTION}" custom section (not an exoclaw plugin?)`);
  }
  if (sections.length > 1) {
    throw new ManifestError(file, null, `${sections.length} "${MANIFEST_SECTION}" custom sections, expected one`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(sections[0]));
  } catch (err) {
    throw new ManifestError(file, null, `"${MANIFEST_SECTION}" is not UTF-8 JSON: ${(err as Error).message}`);
  }
  return parseManifest(json, file);
}

/** A plugin file compiled and described, but not instantiated. */
export interface InspectedPlugin {
  /** The path as given. */
  path: string;
  /** sha256 of the file bytes, hex. */
  sha256: string;
  /** File size in bytes. */
  size: number;
  module: WasmModule;
  manifest: PluginManifest;
}

/**
 * Reads, compiles and describes one plugin file without running any of its code.
 * @throws Error if the file cannot be read or is not a valid WebAssembly module (message
 *   prefixed with the path); ManifestError if its manifest is missing or invalid.
 */
export async function inspectPluginFile(path: string): Promise<InspectedPlugin> {
  const bytes = await readFile(path);
  let module: WasmModule;
  try {
    module = await wasmApi.compile(bytes);
  } catch (err) {
    throw new Error(`${path}: not a valid WebAssembly module: ${(err as Error).message}`);
  }
  const manifest = readManifest(module, path);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { path, sha256, size: bytes.length, module, manifest };
}
