// `exoclaw plugin test <file.wasm>`: conformance checks for a plugin module. Static: valid
// WebAssembly, manifest, ABI version, imports the host provides, required exports, tool schemas
// that are valid JSON Schema (ajv). Dynamic, through the real sandbox with a short time budget:
// inputs derived from each schema (valid and malformed), garbage MessagePack, and optional
// example cases — every call must come back as a well-formed {content, isError}, never a trap,
// a hang or an out-of-memory.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import {
  type CapabilityRequest,
  type EffectiveGrant,
  DEFAULT_LIMITS,
  DEFAULT_KV_QUOTA_BYTES,
  EXOCLAW_HOST_FUNCTIONS,
  EXOCLAW_HOST_V1,
  EXTISM_ENV,
  EXTISM_KERNEL,
  HOST_ABI_VERSION,
  MANIFEST_SECTION,
  describeRequest,
  parseManifest,
  sha256Hex,
  type PluginLogger,
  type PluginManifest,
  type ToolSpec,
} from "../plugins/index.js";
import { createSandboxPool, HostHttpError, type CallOutcome, type HostServices, type SandboxPool, wasmApi, type WasmModule } from "../plugins/internal.js";
import { pluginEnvelope } from "../protocol/msgpack.mjs";
import { percentile } from "../util/index.js";
import type { CliIo } from "./io.js";
import { malformedInputs, sampleValue, type LabeledInput, type Schema } from "./schema-inputs.js";

/** One line of the report. */
export interface CheckResult {
  /** Short name: module, manifest, abi, imports, exports, schema, calls, garbage, cases. */
  check: string;
  ok: boolean;
  /** One-line summary. */
  summary: string;
  /** What failed, one entry per problem. */
  failures: string[];
  /** Worth knowing, not failures. */
  notes: string[];
}

/** The result of {@link testPlugin}. */
export interface PluginTestReport {
  file: string;
  ok: boolean;
  checks: CheckResult[];
  /** Calls made through the sandbox. */
  calls: number;
  ms: number;
}

/** Options of {@link testPlugin}. */
export interface PluginTestOptions {
  /** Time budget of one call, ms (default 1000, the gateway's default). */
  timeoutMs?: number;
  /** A JSON file of example cases: `[{tool?, input, expect: {content?, contains?, isError?}}]`. */
  casesFile?: string;
  /**
   * Grant what the manifest requests, backed by test doubles (default true): kv in a temporary
   * directory, fs guest paths mapped to empty temporary directories, config values "", secrets
   * "test-secret", clock / random / log real, and HTTP refused by the host ("network access is
   * disabled during plugin test"). False: nothing granted, as before an operator approves.
   */
  grants?: boolean;
}

/** An example case from the cases file. */
interface Case {
  name?: string;
  tool?: string;
  input: unknown;
  expect: { content?: string; contains?: string; isError?: boolean };
}

/** Timeouts of one tool after which its remaining inputs are skipped. */
const MAX_TIMEOUTS_PER_TOOL = 2;

const check = (name: string, ok: boolean, summary: string, failures: string[] = [], notes: string[] = []): CheckResult => ({
  check: name,
  ok,
  summary,
  failures,
  notes,
});

function preview(v: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}... (${s.length} chars)` : s;
}

/** Why `output` is not a well-formed `{content: string, isError: boolean}` map, or null. */
function malformedOutput(output: Uint8Array): string | null | { content: string; isError: boolean } {
  if (output.length === 0) return "no output";
  let v: unknown;
  try {
    v = pluginEnvelope.unpack(output);
  } catch (err) {
    return `output is not MessagePack (${(err as Error).message})`;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return `output is not a map: ${preview(v)}`;
  const { content, isError } = v as Record<string, unknown>;
  if (typeof content !== "string") return `output field 'content' is not a string: ${preview(content)}`;
  if (typeof isError !== "boolean") return `output field 'isError' is not a boolean: ${preview(isError)}`;
  return { content, isError };
}

/** Test doubles for the capabilities a manifest requests. */
async function doubleGrant(req: CapabilityRequest, scratch: string): Promise<EffectiveGrant> {
  const g: EffectiveGrant = {};
  if (req.http) g.http = { hosts: [...req.http.hosts], ...(req.http.methods ? { methods: [...req.http.methods] } : {}) };
  if (req.kv) g.kv = { quotaBytes: req.kv.quotaBytes ?? DEFAULT_KV_QUOTA_BYTES };
  if (req.fs && req.fs.length > 0) {
    g.fs = [];
    for (const f of req.fs) g.fs.push({ guest: f.guest, host: await mkdtemp(path.join(scratch, "fs-")), write: f.write === true });
  }
  if (req.config) g.config = Object.fromEntries(req.config.map((n) => [n, ""]));
  if (req.secrets) g.secrets = Object.fromEntries(req.secrets.map((n) => [n, "test-secret"]));
  if (req.clock) g.clock = true;
  if (req.random) g.random = true;
  if (req.log) g.log = true;
  return g;
}

const offlineServices: HostServices = {
  http() {
    return Promise.reject(new HostHttpError("network access is disabled during `exoclaw plugin test`"));
  },
};

/** Envelopes the SDK must refuse (error_set) or survive: never trap, never hang. */
function garbageEnvelopes(tool: string, validInput: unknown): LabeledInput[] {
  const enc = new TextEncoder();
  const good = pluginEnvelope.pack({ name: tool, input: validInput });
  let seed = 0x2545f491;
  const random = new Uint8Array(64).map(() => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed & 0xff;
  });
  const nameKey = [0xa4, ...enc.encode("name")];
  const inputKey = [0xa5, ...enc.encode("input")];
  return [
    { label: "empty input", input: new Uint8Array(0) },
    { label: "the never-used byte 0xc1", input: Uint8Array.of(0xc1) },
    { label: "64 random bytes", input: random },
    { label: "a truncated envelope", input: good.subarray(0, Math.max(1, good.length >> 1)) },
    { label: "an envelope with trailing bytes", input: Uint8Array.from([...good, 0xc0, 0xc0]) },
    { label: "an array instead of a map", input: pluginEnvelope.pack([tool, validInput]) },
    { label: "a map without 'name'", input: pluginEnvelope.pack({ input: validInput }) },
    { label: "'name' not a string", input: pluginEnvelope.pack({ name: 42, input: validInput }) },
    { label: "an unknown tool name", input: pluginEnvelope.pack({ name: "no_such_tool_here", input: validInput }) },
    { label: "'name' of invalid UTF-8", input: Uint8Array.from([0x82, ...nameKey, 0xa3, 0xff, 0xfe, 0xfd, ...inputKey, 0x80]) },
    { label: "a string claiming 4 GiB", input: Uint8Array.from([0x82, ...nameKey, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]) },
    { label: "a map claiming 4 billion entries", input: Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff, ...nameKey]) },
    { label: "an ext value as input", input: Uint8Array.from([0x82, ...nameKey, ...pluginEnvelope.pack(tool), ...inputKey, 0xd4, 0x01, 0x00]) },
    {
      label: "a 200-deep array as input",
      input: Uint8Array.from([0x82, ...nameKey, ...pluginEnvelope.pack(tool), ...inputKey, ...new Array(200).fill(0x91), 0xc0]),
    },
  ].map((g) => ({ label: g.label, input: g.input }));
}

async function loadCases(file: string, tools: ToolSpec[]): Promise<Case[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: cannot read cases (${(err as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of {tool?, input, expect}`);
  return raw.map((c, i) => {
    if (typeof c !== "object" || c === null || !("expect" in c) || typeof (c as Case).expect !== "object") {
      throw new Error(`${file}: case ${i}: expected {tool?, input, expect: {content?, contains?, isError?}}`);
    }
    const tool = (c as Case).tool ?? tools[0]?.name;
    if (!tools.some((t) => t.name === tool)) throw new Error(`${file}: case ${i}: the plugin has no tool "${tool}"`);
    return { ...(c as Case), tool };
  });
}

const ms = (v: number): string => (v < 10 ? v.toFixed(1) : Math.round(v).toString());

/**
 * Runs every conformance check on a plugin file and returns the report (never throws for a bad
 * plugin: that is a failed check).
 * @throws Error if the file cannot be read, or the cases file is unusable
 */
export async function testPlugin(file: string, options: PluginTestOptions = {}): Promise<PluginTestReport> {
  const t0 = performance.now();
  const checks: CheckResult[] = [];
  const done = (calls = 0): PluginTestReport => ({ file, ok: checks.every((c) => c.ok), checks, calls, ms: Math.round(performance.now() - t0) });
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }

  // Static checks.
  let module: WasmModule;
  try {
    module = await wasmApi.compile(bytes);
    checks.push(check("module", true, `valid WebAssembly, ${bytes.length} bytes, sha256 ${sha256Hex(bytes).slice(0, 16)}...`));
  } catch (err) {
    checks.push(check("module", false, "not a valid WebAssembly module", [(err as Error).message]));
    return done();
  }
  const sections = wasmApi.Module.customSections(module, MANIFEST_SECTION);
  let raw: unknown = undefined;
  let manifest: PluginManifest | null = null;
  if (sections.length !== 1) {
    checks.push(
      check(
        "manifest",
        false,
        sections.length === 0
          ? `no "${MANIFEST_SECTION}" custom section (build with \`exoclaw plugin build\` or add one with \`exoclaw plugin pack\`)`
          : `${sections.length} "${MANIFEST_SECTION}" sections, expected one`,
      ),
    );
  } else {
    try {
      raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(sections[0]));
    } catch (err) {
      checks.push(check("manifest", false, `"${MANIFEST_SECTION}" is not UTF-8 JSON`, [(err as Error).message]));
    }
  }
  if (raw !== undefined) {
    try {
      manifest = parseManifest(raw, file);
      const m = manifest;
      const caps = describeRequest(m.capabilities);
      checks.push(
        check(
          "manifest",
          true,
          `${m.name} ${m.version} (${m.kind}): ${m.tools.length} tool${m.tools.length === 1 ? "" : "s"} (${m.tools.map((t) => t.name).join(", ")}), requests ${caps === "-" ? "no capabilities" : caps}`,
        ),
      );
    } catch (err) {
      const reason = (err as Error).message.startsWith(`${file}: `) ? (err as Error).message.slice(file.length + 2) : (err as Error).message;
      checks.push(check("manifest", false, "invalid manifest", reason.split("; ")));
    }
    const abi = (raw as { abi?: unknown } | null)?.abi;
    checks.push(
      check(
        "abi",
        abi === HOST_ABI_VERSION,
        abi === HOST_ABI_VERSION ? `${abi} (this host speaks ${HOST_ABI_VERSION})` : `${JSON.stringify(abi)}, but this host speaks ${HOST_ABI_VERSION}`,
      ),
    );
  }

  const imports = wasmApi.Module.imports(module);
  const badImports = imports.filter(
    (i) =>
      !(
        i.kind === "function" &&
        ((i.module === EXTISM_ENV && EXTISM_KERNEL.has(i.name)) || (i.module === EXOCLAW_HOST_V1 && EXOCLAW_HOST_FUNCTIONS.has(i.name)))
      ),
  );
  const byModule = new Map<string, number>();
  for (const i of imports) byModule.set(i.module, (byModule.get(i.module) ?? 0) + 1);
  checks.push(
    check(
      "imports",
      badImports.length === 0,
      badImports.length === 0
        ? `${imports.length} import${imports.length === 1 ? "" : "s"}, all provided by the host (${[...byModule].map(([m, n]) => `${m}: ${n}`).join(", ") || "none"})`
        : `${badImports.length} import${badImports.length === 1 ? "" : "s"} the host does not provide (deny by default)`,
      badImports.map((i) => `${i.kind} "${i.module}"."${i.name}"`),
    ),
  );
  const exports = wasmApi.Module.exports(module);
  const call = exports.find((e) => e.name === "call");
  const needsCall = manifest === null || manifest.kind !== "channel";
  const exportsOk = !needsCall || call?.kind === "function";
  checks.push(
    check(
      "exports",
      exportsOk,
      exportsOk
        ? exports.map((e) => `${e.name} (${e.kind})`).join(", ")
        : `no function export "call" (exports: ${exports.map((e) => `${e.kind} ${e.name}`).join(", ") || "none"})`,
    ),
  );
  if (manifest === null) return done();

  // Schemas, with ajv (draft-07 by default; 2019-09 / 2020-12 when "$schema" says so).
  // CommonJS modules: the class is module.exports.default under Node's ESM interop.
  const Ajv = (await import("ajv")).default.default;
  const Ajv2019 = (await import("ajv/dist/2019.js")).default.default;
  const Ajv2020 = (await import("ajv/dist/2020.js")).default.default;
  const validators = new Map<string, (v: unknown) => boolean>();
  for (const tool of manifest.tools) {
    const schema = tool.inputSchema;
    const dialect = typeof schema["$schema"] === "string" ? schema["$schema"] : "";
    const ajvWarnings: string[] = [];
    const logger = { log() {}, warn: (...a: unknown[]) => ajvWarnings.push(a.join(" ")), error: (...a: unknown[]) => ajvWarnings.push(a.join(" ")) };
    const opts = { strict: true, strictTypes: false, strictTuples: false, allErrors: true, validateFormats: false, logger } as const;
    const ajv = dialect.includes("2020-12") ? new Ajv2020(opts) : dialect.includes("2019-09") ? new Ajv2019(opts) : new Ajv(opts);
    const draft = dialect.includes("2020-12") ? "2020-12" : dialect.includes("2019-09") ? "2019-09" : "draft-07";
    try {
      const validate = ajv.compile(schema);
      validators.set(tool.name, (v) => validate(v) as boolean);
      checks.push(check("schema", true, `${tool.name}: valid JSON Schema (${draft})`, [], ajvWarnings));
    } catch (err) {
      checks.push(
        check(
          "schema",
          false,
          `${tool.name}: not a valid JSON Schema (${draft}, strict mode: unknown keywords are errors)`,
          [(err as Error).message],
          ajvWarnings,
        ),
      );
    }
  }
  if (!checks.every((c) => c.ok) || manifest.tools.length === 0) return done();

  // Calls through the real sandbox.
  const scratch = await mkdtemp(path.join(tmpdir(), "exoclaw-plugin-test-"));
  let calls = 0;
  let pool: SandboxPool | null = null;
  const logLines: string[] = [];
  const logger: PluginLogger = {
    info() {},
    warn() {},
    debug(obj: unknown, msg?: string) {
      // The sandbox forwards guest log lines as debug({plugin, level}, message).
      if (typeof obj === "object" && obj !== null && "level" in obj && msg !== undefined) logLines.push(msg);
    },
    isLevelEnabled: () => true,
  };
  try {
    const grant = options.grants === false ? {} : await doubleGrant(manifest.capabilities, scratch);
    pool = createSandboxPool({
      name: manifest.name,
      wasm: bytes,
      grant,
      limits: { ...DEFAULT_LIMITS, timeoutMs: options.timeoutMs ?? DEFAULT_LIMITS.timeoutMs, maxInFlight: 1 },
      stateDir: path.join(scratch, "state"),
      services: offlineServices,
      logger,
      idleTimeoutMs: 5_000,
    });
    const p = pool;
    const run = async (payload: Uint8Array): Promise<CallOutcome> => {
      calls++;
      return p.call("call", payload);
    };
    const durations: number[] = [];

    for (const tool of manifest.tools) {
      const validate = validators.get(tool.name)!;
      const schema = tool.inputSchema as Schema;
      const candidates = [sampleValue(schema, false), sampleValue(schema, true)];
      const valid = candidates.filter((c, i) => validate(c) && candidates.findIndex((d) => JSON.stringify(d) === JSON.stringify(c)) === i);
      const notes: string[] = [];
      if (valid.length === 0)
        notes.push(`could not derive a valid input from the schema (add "examples" to it); tried ${candidates.map((c) => preview(c)).join(", ")}`);
      const inputs: (LabeledInput & { valid: boolean })[] = [
        ...valid.map((v, i) => ({ label: `valid input ${i + 1} ${preview(v, 60)}`, input: v, valid: true })),
        ...malformedInputs(schema, valid[valid.length - 1] ?? candidates[1]).map((m) => ({ ...m, valid: false })),
      ];
      const failures: string[] = [];
      let timeouts = 0;
      let validErrors = 0;
      let skipped = 0;
      for (const { label, input, valid: isValid } of inputs) {
        if (timeouts >= MAX_TIMEOUTS_PER_TOOL) {
          skipped++;
          continue;
        }
        const outcome = await run(pluginEnvelope.pack({ name: tool.name, input }));
        durations.push(outcome.durationMs);
        if (!outcome.ok) {
          if (outcome.kind === "timeout") timeouts++;
          failures.push(`${label}: ${outcome.kind}: ${outcome.message}`);
          continue;
        }
        const r = malformedOutput(outcome.output);
        if (typeof r === "string" || r === null) failures.push(`${label}: ${r ?? "malformed output"}`);
        else if (isValid && r.isError) validErrors++;
      }
      if (skipped > 0) failures.push(`${skipped} more inputs skipped after ${timeouts} timeouts`);
      if (validErrors > 0)
        notes.push(`${validErrors} of ${valid.length} valid inputs answered isError: true (fine if the sample values make no sense to the tool)`);
      const n = inputs.length;
      checks.push(
        check(
          "calls",
          failures.length === 0,
          failures.length === 0
            ? `${tool.name}: ${valid.length} valid + ${n - valid.length} malformed inputs, every call returned {content, isError}`
            : `${tool.name}: ${failures.length} of ${n} inputs failed (a trap, timeout or malformed output is a bug: the model can send anything)`,
          failures,
          notes,
        ),
      );
    }

    // Garbage envelopes: the plugin may refuse them through Extism's error channel, never crash.
    const first = manifest.tools[0]!;
    const garbage = garbageEnvelopes(first.name, sampleValue(first.inputSchema as Schema, true));
    const gFailures: string[] = [];
    let refused = 0;
    let answered = 0;
    for (const g of garbage) {
      const outcome = await run(g.input as Uint8Array);
      durations.push(outcome.durationMs);
      if (!outcome.ok) {
        if (outcome.kind === "plugin_error") refused++;
        else gFailures.push(`${g.label}: ${outcome.kind}: ${outcome.message}`);
        continue;
      }
      const r = malformedOutput(outcome.output);
      if (typeof r === "string" || r === null) gFailures.push(`${g.label}: ${r ?? "malformed output"}`);
      else answered++;
    }
    checks.push(
      check(
        "garbage",
        gFailures.length === 0,
        gFailures.length === 0
          ? `${garbage.length} malformed MessagePack envelopes: no trap, no hang (${refused} refused through the error channel, ${answered} answered)`
          : `${gFailures.length} of ${garbage.length} malformed envelopes crashed or hung the plugin`,
        gFailures,
      ),
    );

    if (options.casesFile !== undefined) {
      const cases = await loadCases(options.casesFile, manifest.tools);
      const cFailures: string[] = [];
      for (const [i, c] of cases.entries()) {
        const label = c.name ?? `case ${i + 1} (${c.tool} ${preview(c.input, 60)})`;
        const outcome = await run(pluginEnvelope.pack({ name: c.tool, input: c.input }));
        durations.push(outcome.durationMs);
        if (!outcome.ok) {
          cFailures.push(`${label}: ${outcome.kind}: ${outcome.message}`);
          continue;
        }
        const r = malformedOutput(outcome.output);
        if (typeof r === "string" || r === null) {
          cFailures.push(`${label}: ${r ?? "malformed output"}`);
          continue;
        }
        const e = c.expect;
        const got = `got ${JSON.stringify(r.content)} (isError: ${r.isError})`;
        if (e.content !== undefined && r.content !== e.content) cFailures.push(`${label}: expected content ${JSON.stringify(e.content)}, ${got}`);
        else if (e.contains !== undefined && !r.content.includes(e.contains))
          cFailures.push(`${label}: expected content containing ${JSON.stringify(e.contains)}, ${got}`);
        else if (e.isError !== undefined && r.isError !== e.isError) cFailures.push(`${label}: expected isError: ${e.isError}, ${got}`);
      }
      checks.push(
        check(
          "cases",
          cFailures.length === 0,
          `${cases.length - cFailures.length} of ${cases.length} cases from ${path.relative(process.cwd(), options.casesFile) || options.casesFile} passed`,
          cFailures,
        ),
      );
    }
    const sorted = [...durations].sort((a, b) => a - b);
    const timing = check(
      "timing",
      true,
      `${calls} calls, p50 ${ms(percentile(sorted, 0.5, true))} ms, max ${ms(sorted[sorted.length - 1] ?? 0)} ms (budget ${options.timeoutMs ?? DEFAULT_LIMITS.timeoutMs} ms per call)`,
    );
    if (logLines.length > 0) timing.notes.push(`the plugin logged ${logLines.length} line(s), e.g. ${preview(logLines[0], 100)}`);
    if (options.grants !== false && describeRequest(manifest.capabilities) !== "-") {
      timing.notes.push(
        `ran with the requested capabilities backed by test doubles (HTTP refused, kv/fs in temporary directories); --no-grants runs with none`,
      );
    }
    checks.push(timing);
  } finally {
    await pool?.close();
    await rm(scratch, { recursive: true, force: true });
  }
  return done(calls);
}

/** The report as text lines: `PASS  name  summary`, failures and notes indented under each. */
export function formatReport(r: PluginTestReport): string[] {
  const lines = [`exoclaw plugin test ${r.file}`];
  for (const c of r.checks) {
    lines.push(`${c.ok ? "PASS" : "FAIL"}  ${c.check.padEnd(9)} ${c.summary}`);
    for (const f of c.failures.slice(0, 20)) lines.push(`        x ${f}`);
    if (c.failures.length > 20) lines.push(`        ... and ${c.failures.length - 20} more`);
    for (const n of c.notes) lines.push(`        note: ${n}`);
  }
  const failed = r.checks.filter((c) => !c.ok).length;
  lines.push(
    failed === 0 ? `PASS: all ${r.checks.length} checks (${r.calls} calls in ${r.ms} ms)` : `FAIL: ${failed} of ${r.checks.length} checks failed (${r.ms} ms)`,
  );
  return lines;
}

/** Adds `exoclaw plugin test` to the `plugin` command. */
export function registerPluginTest(plugin: Command, io: CliIo, fail: (err: unknown) => void): void {
  plugin
    .command("test <file.wasm>")
    .description("Conformance checks: manifest, ABI, imports, exports, JSON Schemas, and generated inputs through the real sandbox (exit 1 on failure)")
    .option("--cases <file.json>", "example calls and expected results: [{tool?, input, expect: {content?, contains?, isError?}}]")
    .option("--timeout <ms>", "time budget of one call", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error("--timeout must be a positive integer (ms)");
      return n;
    })
    .option("--no-grants", "run with no capabilities granted (default: what the manifest requests, backed by test doubles)")
    .option("--json", "print the report as JSON")
    .action(async (file: string, opts: { cases?: string; timeout?: number; grants: boolean; json?: boolean }) => {
      try {
        const r = await testPlugin(file, {
          ...(opts.cases !== undefined ? { casesFile: opts.cases } : {}),
          ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
          grants: opts.grants,
        });
        if (opts.json) io.out(JSON.stringify(r, null, 2));
        else for (const l of formatReport(r)) io.out(l);
        if (!r.ok) process.exitCode = 1;
      } catch (err) {
        fail(err);
      }
    });
}
