// wit/exoclaw.wit is the source of truth for the plugin contract. This parses it and checks,
// by name, everything that mirrors it by hand:
//   - the host TypeScript types (host/src/plugins/types.ts, capabilities.ts): every record field
//     is a property (kebab-case → camelCase), `option<T>` is exactly the optional properties,
//     types agree (string, bool → boolean, integers and floats → number, list → array, enums →
//     unions of string literals), and no property is missing from the WIT;
//   - the manifest validator (host/src/plugins/manifest.ts): same keys, and a manifest with every
//     WIT field set is accepted and keeps them all;
//   - the `exoclaw:host/v1` host functions (kebab-case → snake_case core imports): the SDK's
//     imports and `HostFn` enum (plugin-sdk/assembly/host.ts, PascalCase), the sandbox's
//     allowlist and capability per function (protocol.mjs HOST_FUNCTIONS, from the WIT doc's
//     "Capability `x`"), and the functions the sandbox worker implements;
//   - the request fields the SDK sends and the worker reads per host function, and the
//     http-response fields the SDK reads, against the parameter records;
//   - the tool-call / tool-result keys the SDK's runTool reads and writes;
//   - the channel contract (interface channel-types, world channel): host/src/channels/types.ts,
//     and the keys the SDK's channel readers and writers (plugin-sdk/assembly/channel.ts) use.
// The source scans are deliberately simple (string literals in the function that handles each
// host function); a refactor that hides them fails here with a message saying what to update.
import { readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { capabilityRequestSchema, pluginManifestSchema } from "../../host/src/plugins/manifest.js";
import { HOST_FUNCTIONS, HOST_MODULE } from "../../host/src/plugins/sandbox/protocol.mjs";
import {
  camelCase,
  formatType,
  parseWit,
  pascalCase,
  snakeCase,
  WitParseError,
  type WitInterface,
  type WitPackage,
  type WitRecord,
  type WitType,
} from "./wit-parser.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), "utf8");

const packages = parseWit(read("wit/exoclaw.wit"));
const pkg = (name: string): WitPackage => {
  const p = packages.find((x) => x.name === name);
  if (p === undefined) throw new Error(`wit/exoclaw.wit has no package ${name}`);
  return p;
};
const iface = (p: WitPackage, name: string): WitInterface => {
  const i = p.interfaces.get(name);
  if (i === undefined) throw new Error(`package ${p.name} has no interface ${name}`);
  return i;
};
const types = iface(pkg("exoclaw:plugin"), "types");
const [hostPkgName, hostIfaceName] = HOST_MODULE.split("/") as [string, string];
const hostV1 = iface(pkg(hostPkgName), hostIfaceName);

/** Fields whose WIT type is `string` (JSON text) because WIT has no "any JSON value" type. */
const JSON_VALUED = new Map([
  ["tool-spec.input-schema", "a JSON Schema object"],
  ["tool-call.input", "any JSON value"],
]);

// ---- TypeScript side, through the compiler API -------------------------------------------------

const TS_FILES = ["host/src/plugins/types.ts", "host/src/plugins/capabilities.ts", "host/src/channels/types.ts"].map((f) => path.join(ROOT, f));
const program = ts.createProgram(TS_FILES, {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  noEmit: true,
  skipLibCheck: true,
  types: [],
});
const checker = program.getTypeChecker();

function tsExport(name: string): ts.Type {
  for (const file of TS_FILES) {
    const sf = program.getSourceFile(file);
    const sym = sf === undefined ? undefined : checker.getSymbolAtLocation(sf);
    const exp = sym === undefined ? undefined : checker.getExportsOfModule(sym).find((s) => s.name === name);
    if (exp !== undefined) return checker.getDeclaredTypeOfSymbol(exp);
  }
  throw new Error(`no exported type ${name} in ${TS_FILES.map((f) => path.relative(ROOT, f)).join(", ")}`);
}

function witRecordOrEnum(i: WitInterface, name: string): { record?: WitRecord; cases?: string[] } {
  const record = i.records.get(name);
  if (record !== undefined) return { record };
  const e = i.enums.get(name);
  if (e !== undefined) return { cases: e.cases };
  throw new Error(`${i.name} has no type ${name}`);
}

/** Differences between a WIT type and a TypeScript type, as sentences; empty when they agree. */
function compareType(i: WitInterface, wit: WitType, t: ts.Type, where: string): string[] {
  const shown = checker.typeToString(t);
  const bad = (want: string) => [`${where}: WIT ${formatType(wit)} is TypeScript ${shown}, expected ${want}`];
  switch (wit.kind) {
    case "prim":
      if (wit.name === "string" || wit.name === "char") return t.flags & ts.TypeFlags.StringLike ? [] : bad("string");
      if (wit.name === "bool") return t.flags & ts.TypeFlags.BooleanLike ? [] : bad("boolean");
      return t.flags & ts.TypeFlags.NumberLike ? [] : bad("number");
    case "list": {
      // Wire mappings: list<u8> is MessagePack bin (Uint8Array; `string` also allowed where the
      // contract says "bin or str"); list<tuple<string, string>> is a MessagePack map of strings.
      if (wit.of.kind === "prim" && wit.of.name === "u8") {
        const names = (t.isUnion() ? t.types : [t]).map((m) =>
          m.flags & ts.TypeFlags.StringLike ? "string" : (m.getSymbol()?.name ?? checker.typeToString(m)),
        );
        return names.includes("Uint8Array") && names.every((n) => n === "Uint8Array" || n === "string") ? [] : bad("Uint8Array");
      }
      if (wit.of.kind === "tuple" && wit.of.of.length === 2 && wit.of.of.every((x) => x.kind === "prim" && x.name === "string")) {
        const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
        return index !== undefined && index.type.flags & ts.TypeFlags.StringLike ? [] : bad("Record<string, string>");
      }
      if (!checker.isArrayType(t)) return bad("an array");
      const el = checker.getTypeArguments(t as ts.TypeReference)[0];
      return el === undefined ? bad("an array") : compareType(i, wit.of, el, `${where}[]`);
    }
    case "named": {
      const { record, cases } = witRecordOrEnum(i, wit.name);
      if (record !== undefined) return compareRecord(i, record, t, where);
      const literals = (t.isUnion() ? t.types : [t]).map((m) => (m.isStringLiteral() ? m.value : null));
      if (literals.includes(null)) return bad(`a union of string literals (${cases!.join(" | ")})`);
      const a = [...literals].sort();
      const b = [...cases!].sort();
      return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${where}: enum ${wit.name} is {${b.join(", ")}}, TypeScript ${shown}`];
    }
    default:
      return [`${where}: WIT ${formatType(wit)} has no TypeScript mapping in this check`];
  }
}

/** Differences between a WIT record and a TypeScript object type (both directions). */
function compareRecord(i: WitInterface, record: WitRecord, t: ts.Type, where: string): string[] {
  const problems: string[] = [];
  const props = new Map(checker.getPropertiesOfType(t).map((p) => [p.name, p]));
  for (const f of record.fields) {
    const key = camelCase(f.name);
    const at = `${where}.${key}`;
    const prop = props.get(key);
    props.delete(key);
    if (prop === undefined) {
      problems.push(`${at}: WIT ${record.name}.${f.name} has no TypeScript property '${key}'`);
      continue;
    }
    const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
    const isOption = f.type.kind === "option";
    if (optional !== isOption) {
      problems.push(`${at}: WIT ${formatType(f.type)} but the TypeScript property is ${optional ? "optional" : "required"}`);
      continue;
    }
    const inner = isOption ? (f.type as { of: WitType }).of : f.type;
    const propType = checker.getNonNullableType(checker.getTypeOfSymbol(prop));
    if (JSON_VALUED.has(`${record.name}.${f.name}`)) {
      if (!(inner.kind === "prim" && inner.name === "string")) problems.push(`${at}: JSON-valued field must be string in WIT`);
      continue;
    }
    problems.push(...compareType(i, inner, propType, at));
  }
  for (const key of props.keys()) problems.push(`${where}.${key}: TypeScript property missing from WIT record ${record.name}`);
  return problems;
}

describe("wit/exoclaw.wit", () => {
  it("parses, with the plugin package, its types interface and tool world, and exoclaw:host/v1", () => {
    expect(packages.map((p) => p.name)).toEqual(["exoclaw:plugin", "exoclaw:host"]);
    expect([...types.records.keys()].sort()).toEqual([
      "capability-request",
      "fs-cap",
      "http-request-cap",
      "kv-cap",
      "manifest",
      "tool-call",
      "tool-result",
      "tool-spec",
    ]);
    const world = pkg("exoclaw:plugin").worlds.get("tool");
    expect(world?.exports.has("call")).toBe(true);
    expect(hostV1.funcs.size).toBeGreaterThanOrEqual(12);
  });

  it("the parser rejects what it does not understand, naming the line", () => {
    expect(() => parseWit("package a:b;\ninterface i {\n  variant v { x }\n}\n")).toThrow(WitParseError);
    expect(() => parseWit("package a:b;\ninterface i {\n  variant v { x }\n}\n")).toThrow(/line 3/);
    expect(() => parseWit("package a:b;\ninterface i {\n  record r { a: string }\n  record r { b: u8 }\n}")).toThrow(/defined twice/);
    expect(() => parseWit("package a:b;\ninterface i {\n  f: func(x: borrow<r>);\n}")).toThrow(/not supported/);
    expect(parseWit("package a:b@1.2.3;\npackage c:d { interface e { f: func() -> result; } }").map((p) => p.name)).toEqual(["a:b", "c:d"]);
  });
});

describe("host TypeScript types mirror the WIT records", () => {
  const pairs: [string, () => ts.Type][] = [
    ["manifest", () => tsExport("PluginManifest")],
    ["tool-spec", () => tsExport("ToolSpec")],
    ["tool-call", () => tsExport("ToolCall")],
    ["tool-result", () => tsExport("ToolResult")],
    ["capability-request", () => tsExport("CapabilityRequest")],
  ];
  for (const [name, tsType] of pairs) {
    it(`${name} (nested records included)`, () => {
      const record = types.records.get(name);
      expect(record, `WIT record ${name}`).toBeDefined();
      expect(compareRecord(types, record!, tsType(), name)).toEqual([]);
    });
  }

  it("plugin-kind is PluginKind", () => {
    expect(compareType(types, { kind: "named", name: "plugin-kind" }, tsExport("PluginKind"), "PluginKind")).toEqual([]);
  });

  it("every WIT record of the types interface is checked against a TypeScript type", () => {
    const reached = new Set<string>();
    const visit = (t: WitType): void => {
      if (t.kind === "named") {
        reached.add(t.name);
        types.records.get(t.name)?.fields.forEach((f) => visit(f.type));
      } else if (t.kind === "list" || t.kind === "option") visit(t.of);
    };
    for (const [name] of pairs) visit({ kind: "named", name });
    expect([...types.records.keys()].filter((r) => !reached.has(r))).toEqual([]);
  });

  it("the checker notices drift", () => {
    const drifted: WitRecord = {
      name: "tool-result",
      docs: "",
      fields: [
        { name: "content", type: { kind: "prim", name: "string" }, docs: "" },
        { name: "is-fatal", type: { kind: "option", of: { kind: "prim", name: "bool" } }, docs: "" },
      ],
    };
    expect(compareRecord(types, drifted, tsExport("ToolResult"), "ToolResult")).toEqual([
      "ToolResult.isFatal: WIT tool-result.is-fatal has no TypeScript property 'isFatal'",
      "ToolResult.isError: TypeScript property missing from WIT record tool-result",
    ]);
  });
});

// ---- the manifest validator (zod) -------------------------------------------------------------

/** Valid sample values for fields the validator constrains, by `record.field`. */
const SAMPLES: Record<string, unknown> = {
  "manifest.abi": 1,
  "manifest.name": "sample",
  "manifest.kind": "tool",
  "tool-spec.name": "sample_tool",
  "tool-spec.input-schema": { type: "object" },
  "tool-call.input": { text: "hi" },
  "http-request-cap.hosts": ["api.example.com"],
  "http-request-cap.methods": ["GET"],
  "fs-cap.guest": "/data",
  "capability-request.config": ["greeting"],
  "capability-request.secrets": ["API_TOKEN"],
  "capability-request.hooks": ["before_tool_call"],
};

/** A value of WIT type `t` with every optional field present (SAMPLES where constrained). */
function sample(t: WitType, key: string): unknown {
  if (key in SAMPLES) return SAMPLES[key];
  switch (t.kind) {
    case "prim":
      return t.name === "bool" ? true : t.name === "string" || t.name === "char" ? "x" : 1;
    case "option":
      return sample(t.of, key);
    case "list":
      return [sample(t.of, key)];
    case "named": {
      const r = types.records.get(t.name);
      if (r === undefined) return types.enums.get(t.name)?.cases[0];
      return Object.fromEntries(r.fields.map((f) => [camelCase(f.name), sample(f.type, `${r.name}.${f.name}`)]));
    }
    default:
      throw new Error(`no sample for ${formatType(t)}`);
  }
}

type ZodLike = { shape?: Record<string, ZodLike>; out?: ZodLike; unwrap?: () => ZodLike; element?: ZodLike };

/** The object schema under optional / preprocess / array wrappers. */
function objectSchema(s: ZodLike): ZodLike {
  let cur: ZodLike | undefined = s;
  for (let i = 0; i < 8 && cur !== undefined && cur.shape === undefined; i++) {
    cur = cur.out ?? cur.element ?? cur.unwrap?.();
  }
  if (cur?.shape === undefined) throw new Error("no object schema found");
  return cur;
}

describe("the manifest validator follows the WIT records", () => {
  const cases: [string, ZodLike, string[]][] = [
    ["manifest", pluginManifestSchema as unknown as ZodLike, []],
    ["capability-request", capabilityRequestSchema as unknown as ZodLike, []],
    ["tool-spec", pluginManifestSchema as unknown as ZodLike, ["tools"]],
    ["http-request-cap", capabilityRequestSchema as unknown as ZodLike, ["http"]],
    ["kv-cap", capabilityRequestSchema as unknown as ZodLike, ["kv"]],
    ["fs-cap", capabilityRequestSchema as unknown as ZodLike, ["fs"]],
  ];
  for (const [record, root, route] of cases) {
    it(`${record}: the schema's keys are the WIT fields`, () => {
      let s = objectSchema(root);
      for (const k of route) s = objectSchema(s.shape![k]!);
      const want = types.records
        .get(record)!
        .fields.map((f) => camelCase(f.name))
        .sort();
      expect(Object.keys(s.shape!).sort()).toEqual(want);
    });
  }

  it("a manifest with every WIT field set is accepted and keeps every field", () => {
    const manifest = sample({ kind: "named", name: "manifest" }, "manifest") as Record<string, unknown>;
    const parsed = pluginManifestSchema.parse(manifest);
    expect(parsed).toEqual(manifest);
    expect(Object.keys(parsed.capabilities).sort()).toEqual(
      types.records
        .get("capability-request")!
        .fields.map((f) => camelCase(f.name))
        .sort(),
    );
  });
});

// ---- exoclaw:host/v1 ------------------------------------------------------------------------

const witHostFns = [...hostV1.funcs.keys()];
const sdkHost = read("plugin-sdk/assembly/host.ts");
const worker = read("host/src/plugins/sandbox/sandbox-worker.mjs");

/** Source of each `export function` of an AssemblyScript/TypeScript file, by name. */
function functionBodies(src: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /^export function (\w+)\(/gm;
  const starts = [...src.matchAll(re)];
  starts.forEach((m, k) => {
    const end = starts[k + 1]?.index ?? src.length;
    out.set(m[1]!, src.slice(m.index, end));
  });
  return out;
}

/** The parameter record of a host function, or null when it takes none. */
function paramsRecord(fn: string): WitRecord | null {
  const f = hostV1.funcs.get(fn)!;
  const p = f.params[0];
  if (p === undefined) return null;
  if (p.type.kind !== "named" || !hostV1.records.has(p.type.name)) throw new Error(`${fn}: its parameter must be a record`);
  return hostV1.records.get(p.type.name)!;
}

const literalKeys = (body: string, re: RegExp): Set<string> => new Set([...body.matchAll(re)].map((m) => m[1]!));

describe("exoclaw:host/v1 functions match the WIT interface", () => {
  it("every function returns result<T, string> and takes at most one record", () => {
    for (const f of hostV1.funcs.values()) {
      expect(f.result?.kind, f.name).toBe("result");
      expect(f.result?.kind === "result" && f.result.err?.kind === "prim" && f.result.err.name === "string", f.name).toBe(true);
      expect(f.params.length, f.name).toBeLessThanOrEqual(1);
      paramsRecord(f.name);
    }
  });

  it("the sandbox allowlist (protocol.mjs HOST_FUNCTIONS) has exactly the WIT functions, with the documented capability", () => {
    expect(Object.keys(HOST_FUNCTIONS).sort()).toEqual(witHostFns.map(snakeCase).sort());
    for (const fn of witHostFns) {
      const documented = /Capability `(\w+)`/.exec(hostV1.funcs.get(fn)!.docs)?.[1];
      expect(documented, `WIT doc of ${fn} must say "Capability \`x\`"`).toBeDefined();
      expect(HOST_FUNCTIONS[snakeCase(fn)], fn).toBe(documented);
    }
  });

  it("the SDK imports exactly the WIT functions, and HostFn names each", () => {
    const imports = [...sdkHost.matchAll(/@external\("([^"]+)", "([^"]+)"\)/g)].filter((m) => m[1] === HOST_MODULE).map((m) => m[2]!);
    expect(imports.sort()).toEqual(witHostFns.map(snakeCase).sort());
    const enumBody = /export const enum HostFn \{([^}]*)\}/.exec(sdkHost)?.[1] ?? "";
    const members = [...enumBody.matchAll(/(\w+)\s*=/g)].map((m) => m[1]!);
    expect(members.sort()).toEqual(witHostFns.map(pascalCase).sort());
  });

  it("the sandbox worker implements exactly the WIT functions", () => {
    const block = /const hostFunctions = \{\n([\s\S]*?)\n\};/.exec(worker)?.[1];
    expect(block, "sandbox-worker.mjs: `const hostFunctions = { ... };` not found; update this check").toBeDefined();
    const names = [...block!.matchAll(/^ {2}(\w+):/gm)].map((m) => m[1]!);
    expect(names.sort()).toEqual(witHostFns.map(snakeCase).sort());
  });

  it("the request fields the SDK sends are the parameter records' fields", () => {
    const sent = new Map<string, Set<string>>();
    for (const [, body] of functionBodies(sdkHost)) {
      for (const m of body.matchAll(/hostCall\(HostFn\.(\w+)/g)) {
        const fn = witHostFns.find((f) => pascalCase(f) === m[1]);
        if (fn === undefined) continue;
        const keys = sent.get(fn) ?? new Set<string>();
        // `.set("key", ...)` on the request map; header names are not literals.
        for (const k of literalKeys(body, /\.set\("(\w+)"/g)) keys.add(k);
        // Values built through keyRequest(name, value).
        for (const k of literalKeys(body, /keyRequest\("(\w+)"/g)) keys.add(k);
        sent.set(fn, keys);
      }
    }
    for (const fn of witHostFns) {
      const record = paramsRecord(fn);
      const want = record === null ? [] : record.fields.map((f) => camelCase(f.name)).sort();
      const helpers = sent.get(fn);
      if (record === null && helpers === undefined) continue; // e.g. clock-now: the raw import only
      expect(helpers, `no SDK helper calls hostCall(HostFn.${pascalCase(fn)})`).toBeDefined();
      expect([...helpers!].sort(), `${fn}: fields the SDK sends`).toEqual(want);
    }
  });

  it("the SDK reads http-response's fields, and the {ok, value, error} result map", () => {
    const body = functionBodies(sdkHost).get("httpRequest") ?? "";
    const read = literalKeys(body.slice(body.indexOf("const v = r.value")), /\.get\("(\w+)"\)/g);
    expect([...read].sort()).toEqual(
      hostV1.records
        .get("http-response")!
        .fields.map((f) => camelCase(f.name))
        .sort(),
    );
    const decode = /function decodeResponse[\s\S]*?\n\}/.exec(sdkHost)?.[0] ?? "";
    expect([...literalKeys(decode, /\.get\("(\w+)"\)/g)].sort()).toEqual(["error", "ok", "value"]);
  });

  it("the request fields the sandbox worker reads are the parameter records' fields", () => {
    const block = /const hostFunctions = \{\n([\s\S]*?)\n\};/.exec(worker)?.[1] ?? "";
    const entries = [...block.matchAll(/^ {2}(\w+):([\s\S]*?)(?=^ {2}\w+:|(?![\s\S]))/gm)];
    const kvKey = /function kvKey\(req\) \{[\s\S]*?\n\}/.exec(worker)?.[0] ?? "";
    const secretName = /function secretName\(req\) \{[\s\S]*?\n\}/.exec(worker)?.[0] ?? "";
    for (const fn of witHostFns) {
      const body = entries.find((e) => e[1] === snakeCase(fn))?.[2] ?? "";
      const keys = new Set([
        ...literalKeys(body, /(?:str|bin|optUint)\((?:req|r), "(\w+)"/g),
        ...literalKeys(body, /\(req\)\["(\w+)"\]/g),
        ...literalKeys(body, /\br\["(\w+)"\]/g),
        ...(body.includes("kvKey(req)") ? literalKeys(kvKey, /str\(req, "(\w+)"\)/g) : []),
        ...(body.includes("secretName(req)") ? literalKeys(secretName, /str\(req, "(\w+)"\)/g) : []),
      ]);
      const record = paramsRecord(fn);
      const want = record === null ? [] : record.fields.map((f) => camelCase(f.name)).sort();
      expect([...keys].sort(), `${fn}: fields sandbox-worker.mjs reads`).toEqual(want);
    }
  });
});

describe("the SDK's tool ABI keys are the WIT tool-call / tool-result fields", () => {
  const index = read("plugin-sdk/assembly/index.ts");
  it("runTool reads tool-call's fields and writeToolResult writes tool-result's", () => {
    // The envelope is read by readToolCall (name) and toolInput (input), which runTool uses.
    const run = ["runToolInner", "readToolCall", "toolInput"].map((fn) => new RegExp(`function ${fn}[\\s\\S]*?\\n\\}`).exec(index)?.[0] ?? "").join("\n");
    expect([...literalKeys(run, /call\.get\("(\w+)"\)/g)].sort()).toEqual(
      types.records
        .get("tool-call")!
        .fields.map((f) => camelCase(f.name))
        .sort(),
    );
    const write = /export function writeToolResult[\s\S]*?\n\}/.exec(index)?.[0] ?? "";
    const written = [...write.matchAll(/writeString\("(\w+)"\)/g)].map((m) => m[1]!);
    expect(written.sort()).toEqual(
      types.records
        .get("tool-result")!
        .fields.map((f) => camelCase(f.name))
        .sort(),
    );
    expect(write).toContain(`writeMapHeader(${types.records.get("tool-result")!.fields.length})`);
  });
});

// ---- the channel contract ---------------------------------------------------------------------

describe("the channel contract (channel-types, world channel) matches its mirrors", () => {
  const channelTypes = iface(pkg("exoclaw:plugin"), "channel-types");
  const pairs: [string, string][] = [
    ["webhook-request", "WebhookRequest"],
    ["inbound-message", "InboundMessage"],
    ["attachment", "Attachment"],
    ["attachment-fetch", "AttachmentFetch"],
    ["webhook-response", "WebhookResponse"],
    ["parse-result", "ParseResult"],
    ["outbound-message", "OutboundMessage"],
    ["outbound-file", "OutboundFile"],
    ["outbound-file-message", "OutboundFileMessage"],
    ["send-receipt", "SendReceipt"],
    ["poll-request", "PollRequest"],
    ["poll-result", "PollResult"],
    ["connect-request", "ConnectRequest"],
    ["connect-result", "ConnectResult"],
    ["frame-event", "FrameEvent"],
    ["frame-result", "FrameResult"],
    ["typing-request", "TypingRequest"],
    ["edit-request", "EditRequest"],
    ["edit-result", "EditResult"],
  ];

  it("the world exports parse, send, poll, connect, on-frame, typing and send-file with the records of channel-types", () => {
    const world = pkg("exoclaw:plugin").worlds.get("channel");
    expect([...(world?.exports.keys() ?? [])].sort()).toEqual(["connect", "edit", "on-frame", "parse", "poll", "send", "send-file", "typing"]);
    expect([...channelTypes.records.keys()].sort()).toEqual(pairs.map(([w]) => w).sort());
    expect([...channelTypes.enums.keys()]).toEqual(["peer-kind", "frame-kind"]);
  });

  it("frame-kind is FrameKind", () => {
    expect(compareType(channelTypes, { kind: "named", name: "frame-kind" }, tsExport("FrameKind"), "FrameKind")).toEqual([]);
  });

  for (const [wit, tsName] of pairs) {
    it(`${wit} is host/src/channels/types.ts ${tsName}`, () => {
      expect(compareRecord(channelTypes, channelTypes.records.get(wit)!, tsExport(tsName), tsName)).toEqual([]);
    });
  }

  it("peer-kind is PeerKind", () => {
    expect(compareType(channelTypes, { kind: "named", name: "peer-kind" }, tsExport("PeerKind"), "PeerKind")).toEqual([]);
  });

  const sdk = read("plugin-sdk/assembly/channel.ts");
  const fns = functionBodies(sdk);
  const fields = (...records: string[]) => [...new Set(records.flatMap((r) => channelTypes.records.get(r)!.fields.map((f) => camelCase(f.name))))].sort();
  const body = (fn: string): string => {
    const b = fns.get(fn);
    expect(b, `plugin-sdk/assembly/channel.ts: export function ${fn} not found; update this check`).toBeDefined();
    return b!;
  };
  /** Keys a reader takes from the input map `m`. */
  const readKeys = (b: string) => [...new Set([...literalKeys(b, /(?:strField|requireStr)\(m, "(\w+)"/g), ...literalKeys(b, /\bm\.get\("(\w+)"\)/g)])].sort();

  it("the SDK readers take the input records' fields", () => {
    expect(readKeys(body("readWebhookRequest"))).toEqual(fields("webhook-request"));
    expect(readKeys(body("readOutboundMessage"))).toEqual(fields("outbound-message"));
    expect(readKeys(body("readPollRequest"))).toEqual(fields("poll-request"));
    expect(readKeys(body("readConnectRequest"))).toEqual(fields("connect-request"));
    expect(readKeys(body("readFrameEvent"))).toEqual(fields("frame-event"));
    expect(readKeys(body("readTypingRequest"))).toEqual(fields("typing-request"));
    expect(readKeys(body("readEditRequest"))).toEqual(fields("edit-request"));
  });

  it("the SDK writers write the output records' fields", () => {
    const msg = body("inboundMessageValue");
    const keysOf = (v: string) =>
      [
        ...new Set([
          ...literalKeys(msg, new RegExp(`\\b${v}\\.set\\("(\\w+)"`, "g")),
          ...literalKeys(msg, new RegExp(`optStr\\(${v}, "(\\w+)"`, "g")),
          ...literalKeys(msg, new RegExp(`const ${v} = Value\\.map\\(\\)\\.set\\("(\\w+)"`, "g")),
        ]),
      ].sort();
    expect(keysOf("m")).toEqual(fields("inbound-message"));
    expect(keysOf("av")).toEqual(fields("attachment"));
    const set = (b: string) => [...new Set([...literalKeys(b, /\.set\("(\w+)"/g), ...literalKeys(b, /optStr\(\w+, "(\w+)"/g)])].sort();
    expect(set(body("writeParseResult"))).toEqual(fields("parse-result", "webhook-response"));
    expect(set(body("writeSendReceipt"))).toEqual(fields("send-receipt"));
    expect(set(body("writePollResult"))).toEqual(fields("poll-result"));
    expect(set(body("writeConnectResult"))).toEqual(fields("connect-result"));
    expect(set(body("writeFrameResult"))).toEqual(fields("frame-result"));
    expect(set(body("writeEditResult"))).toEqual(fields("edit-result"));
  });
});
