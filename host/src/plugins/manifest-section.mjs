// Reading and writing the `exoclaw.manifest` custom section of a WebAssembly module.
// Plain byte-level code (no compilation, no dependencies) so that the build script (through the
// re-export in scripts/lib/manifest-section.mjs), the host
// and a future `exoclaw plugin pack` can all share it.

/** Name of the custom section that carries a plugin's manifest as UTF-8 JSON. */
export const MANIFEST_SECTION = "exoclaw.manifest";

/** Plugin ABI version written into new manifests. */
export const ABI_VERSION = 1;

const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
// Shared: a non-streaming `decode` starts afresh at every call (a fatal error included), and a
// decoder per section name cost more than the walk itself at start-up.
const SECTION_NAME_DECODER = new TextDecoder("utf-8", { fatal: true });
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
// What Anthropic and OpenAI both accept as a tool name.
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const KINDS = ["tool", "channel", "both"];
// signature_headers entries: lower-case HTTP header names.
const HEADER_NAME_RE = /^[a-z0-9-]{1,64}$/;

/**
 * Unsigned LEB128 encoding of a non-negative safe integer.
 * @param {number} value
 * @returns {Uint8Array}
 * @throws {RangeError} if `value` is negative, fractional or above 2^32-1 (Wasm's u32 limit).
 */
export function encodeULEB128(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`LEB128 value out of u32 range: ${value}`);
  }
  const out = [];
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return Uint8Array.from(out);
}

/**
 * Decodes an unsigned LEB128 u32 at `offset`.
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @returns {{value: number, next: number}} the value and the offset just past it
 * @throws {Error} if truncated or longer than 5 bytes.
 */
export function decodeULEB128(bytes, offset) {
  let value = 0;
  let shift = 0;
  let pos = offset;
  for (;;) {
    if (pos >= bytes.length) throw new Error(`truncated LEB128 at byte ${offset}`);
    if (shift > 28) throw new Error(`LEB128 longer than 5 bytes at byte ${offset}`);
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) break;
  }
  return { value, next: pos };
}

/**
 * Checks the 8-byte Wasm header (magic + version 1).
 * @param {Uint8Array} wasm
 * @throws {Error} if `wasm` is not a WebAssembly binary module.
 */
export function assertWasmHeader(wasm) {
  if (wasm.length < 8 || WASM_HEADER.some((b, i) => wasm[i] !== b)) {
    throw new Error("not a WebAssembly module (bad magic/version header)");
  }
}

/**
 * Splits a module into its top-level sections without interpreting them.
 * @param {Uint8Array} wasm
 * @returns {Array<{id: number, start: number, end: number, name?: string, payloadStart?: number}>}
 *   byte ranges `[start, end)` of each whole section (id byte included); for custom sections
 *   (id 0) also the section name and where its payload starts.
 * @throws {Error} on a bad header or a truncated/malformed section.
 */
export function listSections(wasm) {
  assertWasmHeader(wasm);
  const sections = [];
  let pos = 8;
  while (pos < wasm.length) {
    const start = pos;
    const id = wasm[pos++];
    const size = decodeULEB128(wasm, pos);
    const contentStart = size.next;
    const end = contentStart + size.value;
    if (end > wasm.length) throw new Error(`section at byte ${start} runs past the end of the module`);
    if (id === 0) {
      const nameLen = decodeULEB128(wasm, contentStart);
      const nameEnd = nameLen.next + nameLen.value;
      if (nameEnd > end) throw new Error(`custom section name at byte ${start} runs past its section`);
      const name = SECTION_NAME_DECODER.decode(wasm.subarray(nameLen.next, nameEnd));
      sections.push({ id, start, end, name, payloadStart: nameEnd });
    } else {
      sections.push({ id, start, end });
    }
    pos = end;
  }
  return sections;
}

/**
 * Payloads of every custom section called `name`, in module order (views into `wasm`).
 * @param {Uint8Array} wasm
 * @param {string} name
 * @returns {Uint8Array[]}
 */
export function readCustomSections(wasm, name) {
  return listSections(wasm)
    .filter((s) => s.id === 0 && s.name === name)
    .map((s) => wasm.subarray(/** @type {number} */ (s.payloadStart), s.end));
}

/**
 * Returns a copy of `wasm` with every custom section called `name` removed.
 * @param {Uint8Array} wasm
 * @param {string} name
 * @returns {Uint8Array}
 */
export function removeCustomSections(wasm, name) {
  const keep = listSections(wasm).filter((s) => !(s.id === 0 && s.name === name));
  const parts = [wasm.subarray(0, 8), ...keep.map((s) => wasm.subarray(s.start, s.end))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Appends a custom section (id 0, LEB128 size, LEB128 name length, name, payload) to a module.
 * Custom sections may appear anywhere, so appending never disturbs the rest of the module.
 * @param {Uint8Array} wasm the module bytes (not modified)
 * @param {string} name section name
 * @param {Uint8Array | string} payload raw bytes, or a string written as UTF-8
 * @returns {Uint8Array} a new module
 * @throws {Error} if `wasm` lacks a Wasm header.
 */
export function appendCustomSection(wasm, name, payload) {
  assertWasmHeader(wasm);
  const enc = new TextEncoder();
  const nameBytes = enc.encode(name);
  const body = typeof payload === "string" ? enc.encode(payload) : payload;
  const nameLen = encodeULEB128(nameBytes.length);
  const size = encodeULEB128(nameLen.length + nameBytes.length + body.length);
  const out = new Uint8Array(wasm.length + 1 + size.length + nameLen.length + nameBytes.length + body.length);
  let off = 0;
  for (const part of [wasm, Uint8Array.of(0), size, nameLen, nameBytes, body]) {
    out.set(part, off);
    off += part.length;
  }
  return out;
}

/**
 * Checks a manifest object against the ABI v1 shape (`PluginManifest` in
 * host/src/plugins/types.ts).
 * @param {unknown} m
 * @returns {string[]} problems as `field: reason`; empty when valid
 */
export function validateManifest(m) {
  const errors = [];
  const isObj = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(m)) return ["manifest: expected an object"];
  if (m.abi !== ABI_VERSION) errors.push(`abi: expected ${ABI_VERSION}, got ${JSON.stringify(m.abi)}`);
  if (typeof m.name !== "string" || !NAME_RE.test(m.name)) {
    errors.push(`name: expected a lowercase name matching ${NAME_RE}, got ${JSON.stringify(m.name)}`);
  }
  if (typeof m.version !== "string" || m.version.length === 0) errors.push("version: expected a non-empty string");
  if (!KINDS.includes(m.kind)) errors.push(`kind: expected one of ${KINDS.join(", ")}, got ${JSON.stringify(m.kind)}`);
  if (m.description !== undefined && typeof m.description !== "string") errors.push("description: expected a string");
  errors.push(...validateCapabilities(m.capabilities));
  if (m.signatureHeaders !== undefined) {
    const h = m.signatureHeaders;
    if (!Array.isArray(h) || h.length === 0 || h.length > 8 || !h.every((x) => typeof x === "string" && HEADER_NAME_RE.test(x))) {
      errors.push(`signature_headers: expected 1 to 8 lower-case header names matching ${HEADER_NAME_RE}, got ${JSON.stringify(h)}`);
    }
  }
  if (!Array.isArray(m.tools)) {
    errors.push("tools: expected an array");
  } else {
    const seen = new Set();
    m.tools.forEach((t, i) => {
      const at = `tools[${i}]`;
      if (!isObj(t)) {
        errors.push(`${at}: expected an object`);
        return;
      }
      if (typeof t.name !== "string" || !TOOL_NAME_RE.test(t.name)) {
        errors.push(`${at}.name: expected a name matching ${TOOL_NAME_RE}, got ${JSON.stringify(t.name)}`);
      } else if (seen.has(t.name)) {
        errors.push(`${at}.name: duplicate tool name ${JSON.stringify(t.name)}`);
      } else {
        seen.add(t.name);
      }
      if (typeof t.description !== "string" || t.description.length === 0) {
        errors.push(`${at}.description: expected a non-empty string`);
      }
      if (!isObj(t.inputSchema)) errors.push(`${at}.inputSchema: expected a JSON Schema object`);
      else if (t.inputSchema.type !== "object") errors.push(`${at}.inputSchema.type: expected "object"`);
    });
    const hooksOnly = m.kind === "tool" && Array.isArray(m.capabilities?.hooks) && m.capabilities.hooks.length > 0;
    if ((m.kind === "tool" || m.kind === "both") && m.tools.length === 0 && !hooksOnly) {
      errors.push(`tools: a "${m.kind}" plugin must declare at least one tool`);
    }
  }
  return errors;
}

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const HOST_PATTERN_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const CONFIG_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
const SECRET_NAME_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const CAPABILITY_KEYS = ["http", "kv", "fs", "config", "secrets", "clock", "random", "log", "hooks"];
/** Lifecycle hook names (host/src/plugins/hook-names.ts). */
const HOOK_NAMES = ["before_message", "before_tool_call", "after_tool_call", "before_model_call", "agent_response", "session_start", "session_end", "on_error"];

/**
 * Checks the `capabilities` object of a manifest (`CapabilityRequest` in
 * host/src/plugins/capabilities.ts). `undefined` and a legacy empty array both mean "nothing".
 * Mirrors the host's zod schema (host/src/plugins/manifest.ts); the host is authoritative.
 * @param {unknown} c
 * @returns {string[]} problems as `capabilities.<field>: reason`; empty when valid
 */
export function validateCapabilities(c) {
  if (c === undefined || (Array.isArray(c) && c.length === 0)) return [];
  const isObj = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(c)) {
    return ["capabilities: expected a table of capabilities (http, kv, fs, config, secrets, clock, random, log)"];
  }
  const errors = [];
  for (const key of Object.keys(c)) {
    if (!CAPABILITY_KEYS.includes(key)) errors.push(`capabilities.${key}: unknown capability (expected one of ${CAPABILITY_KEYS.join(", ")})`);
  }
  const strings = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (c.http !== undefined) {
    if (!isObj(c.http)) errors.push("capabilities.http: expected a table {hosts, methods?}");
    else {
      if (!strings(c.http.hosts) || c.http.hosts.length === 0) errors.push("capabilities.http.hosts: expected a non-empty array of host names");
      else
        c.http.hosts.forEach((h, i) => {
          if (!HOST_PATTERN_RE.test(h))
            errors.push(`capabilities.http.hosts[${i}]: ${JSON.stringify(h)} is not a host name like api.example.com or *.example.com`);
        });
      if (c.http.methods !== undefined) {
        if (!strings(c.http.methods)) errors.push("capabilities.http.methods: expected an array of HTTP methods");
        else
          c.http.methods.forEach((m, i) => {
            if (!HTTP_METHODS.includes(m)) errors.push(`capabilities.http.methods[${i}]: expected one of ${HTTP_METHODS.join(", ")}, got ${JSON.stringify(m)}`);
          });
      }
    }
  }
  if (c.kv !== undefined) {
    if (!isObj(c.kv)) errors.push("capabilities.kv: expected a table {quotaBytes?}");
    else if (c.kv.quotaBytes !== undefined && !(Number.isInteger(c.kv.quotaBytes) && c.kv.quotaBytes > 0)) {
      errors.push("capabilities.kv.quotaBytes: expected a positive integer");
    }
  }
  if (c.fs !== undefined) {
    if (!Array.isArray(c.fs)) errors.push("capabilities.fs: expected an array of {guest, write?}");
    else
      c.fs.forEach((f, i) => {
        if (!isObj(f) || typeof f.guest !== "string" || !/^\/[^\0]*$/.test(f.guest) || f.guest.split("/").includes("..")) {
          errors.push(`capabilities.fs[${i}].guest: expected an absolute guest path without ".."`);
        } else if (f.write !== undefined && typeof f.write !== "boolean") {
          errors.push(`capabilities.fs[${i}].write: expected a boolean`);
        }
      });
  }
  if (c.config !== undefined) {
    if (!strings(c.config)) errors.push("capabilities.config: expected an array of config names");
    else
      c.config.forEach((n, i) => {
        if (!CONFIG_NAME_RE.test(n)) errors.push(`capabilities.config[${i}]: ${JSON.stringify(n)} must match ${CONFIG_NAME_RE}`);
      });
  }
  if (c.secrets !== undefined) {
    if (!strings(c.secrets)) errors.push("capabilities.secrets: expected an array of secret names");
    else
      c.secrets.forEach((n, i) => {
        if (!SECRET_NAME_RE.test(n)) errors.push(`capabilities.secrets[${i}]: ${JSON.stringify(n)} must match ${SECRET_NAME_RE}`);
      });
  }
  if (c.hooks !== undefined) {
    if (!strings(c.hooks) || c.hooks.length === 0) errors.push("capabilities.hooks: expected a non-empty array of hook names");
    else
      c.hooks.forEach((n, i) => {
        if (!HOOK_NAMES.includes(n)) errors.push(`capabilities.hooks[${i}]: ${JSON.stringify(n)} is not one of ${HOOK_NAMES.join(", ")}`);
      });
  }
  for (const flag of ["clock", "random", "log"]) {
    if (c[flag] !== undefined && typeof c[flag] !== "boolean") errors.push(`capabilities.${flag}: expected a boolean`);
  }
  return errors;
}

/**
 * Turns the `[capabilities]` table of a plugin.toml (snake_case: `kv = { quota_bytes = 4096 }`)
 * into the manifest's `CapabilityRequest` (camelCase). A legacy `capabilities = []` becomes `{}`.
 * Values of the wrong type are passed through so that validation can name them.
 * @param {unknown} caps
 * @returns {unknown}
 */
export function capabilitiesFromToml(caps) {
  if (caps === undefined || (Array.isArray(caps) && caps.length === 0)) return {};
  if (typeof caps !== "object" || caps === null || Array.isArray(caps)) return caps;
  const out = { ...caps };
  if (typeof out.kv === "object" && out.kv !== null && !Array.isArray(out.kv)) {
    const { quota_bytes, ...rest } = out.kv;
    out.kv = { ...rest, ...(quota_bytes !== undefined ? { quotaBytes: quota_bytes } : {}) };
  }
  return out;
}

/**
 * Turns a parsed plugin.toml into the manifest JSON object (`PluginManifest`).
 * plugin.toml uses snake_case (`input_schema`); the manifest uses the ABI's camelCase.
 * @param {Record<string, any>} toml
 * @returns {Record<string, unknown>}
 */
export function manifestFromToml(toml) {
  const tools = Array.isArray(toml.tools) ? toml.tools : [];
  return {
    abi: toml.abi ?? ABI_VERSION,
    name: toml.name,
    version: toml.version,
    kind: toml.kind,
    ...(toml.description !== undefined ? { description: toml.description } : {}),
    tools: tools.map((t) => ({
      name: t?.name,
      description: typeof t?.description === "string" ? t.description.trim() : t?.description,
      inputSchema: t?.input_schema ?? t?.inputSchema,
    })),
    capabilities: capabilitiesFromToml(toml.capabilities),
    ...(toml.signature_headers !== undefined ? { signatureHeaders: toml.signature_headers } : {}),
  };
}

/**
 * Validates `manifest` and returns `wasm` with it as the one `exoclaw.manifest` section
 * (any previous one is replaced), as compact UTF-8 JSON.
 * @param {Uint8Array} wasm
 * @param {object} manifest
 * @returns {Uint8Array}
 * @throws {Error} listing every manifest problem, or on a non-Wasm input.
 */
export function embedManifest(wasm, manifest) {
  const problems = validateManifest(manifest);
  if (problems.length > 0) throw new Error(`invalid plugin manifest:\n  ${problems.join("\n  ")}`);
  return appendCustomSection(removeCustomSections(wasm, MANIFEST_SECTION), MANIFEST_SECTION, JSON.stringify(manifest));
}

/**
 * Reads and validates the manifest of a module without compiling or running it.
 * @param {Uint8Array} wasm
 * @returns {object} the parsed manifest
 * @throws {Error} if the section is missing, duplicated, not UTF-8 JSON, or invalid.
 */
export function extractManifest(wasm) {
  const payloads = readCustomSections(wasm, MANIFEST_SECTION);
  if (payloads.length === 0) throw new Error(`no "${MANIFEST_SECTION}" custom section`);
  if (payloads.length > 1) throw new Error(`${payloads.length} "${MANIFEST_SECTION}" custom sections (expected one)`);
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payloads[0]));
  } catch (err) {
    throw new Error(`"${MANIFEST_SECTION}" is not UTF-8 JSON: ${err instanceof Error ? err.message : err}`);
  }
  const problems = validateManifest(manifest);
  if (problems.length > 0) throw new Error(`invalid plugin manifest:\n  ${problems.join("\n  ")}`);
  return manifest;
}
