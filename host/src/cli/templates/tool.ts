// Files of a new tool plugin project (`exoclaw plugin new <name>`). Kept as code so that the
// bundled CLI carries them; docs/plugins.md walks through what each file is for.

/** How the generated package.json reaches the SDK, the compiler and the exoclaw CLI. */
export interface TemplateDeps {
  /** npm spec of `@exoclaw/plugin-sdk` (`^0.1.0`, or `file:/path/to/plugin-sdk`). */
  sdk: string;
  /** npm spec of `assemblyscript`. */
  assemblyscript: string;
  /** npm spec of `exoclaw` (the CLI), or null when `cli` points at a local checkout instead. */
  exoclaw: string | null;
  /** The command that runs the exoclaw CLI in npm scripts (`exoclaw`, or `node "<checkout>/bin/exoclaw.js"`). */
  cli: string;
  /** True when the specs are paths into a source checkout (offline, for developing exoclaw itself). */
  linked: boolean;
}

/**
 * The files of a tool plugin project, by relative path. The example tool `name` greets someone;
 * it builds with `exoclaw plugin build` and passes `exoclaw plugin test` as generated.
 * @param name plugin name (also the tool's name), already validated
 */
export function toolProjectFiles(name: string, deps: TemplateDeps): Record<string, string> {
  return {
    ...projectSkeleton(name, "tool", `${deps.cli} plugin build && ${deps.cli} plugin test build/${name}.wasm --cases test/cases.json`, deps),
    "plugin.toml": pluginToml(name),
    "assembly/index.ts": indexTs(name),
    "test/cases.json": casesJson(name),
    "README.md": readme(name, deps),
  };
}

/**
 * The files every generated plugin project shares: `package.json` (build/test scripts, the SDK,
 * AssemblyScript and, when known, exoclaw as dev dependencies), the AssemblyScript tsconfig and
 * `.gitignore`.
 * @param kind the word used in the package description
 * @param test the `npm test` script
 */
export function projectSkeleton(name: string, kind: "tool" | "channel", test: string, deps: TemplateDeps): Record<string, string> {
  const devDependencies: Record<string, string> = {
    "@exoclaw/plugin-sdk": deps.sdk,
    assemblyscript: deps.assemblyscript,
    ...(deps.exoclaw !== null ? { exoclaw: deps.exoclaw } : {}),
  };
  const pkg = {
    name,
    version: "0.1.0",
    private: true,
    description: `exoclaw ${kind} plugin "${name}"`,
    type: "module",
    scripts: { build: `${deps.cli} plugin build`, test },
    devDependencies,
  };
  return {
    "package.json": `${JSON.stringify(pkg, null, 2)}\n`,
    "assembly/tsconfig.json": `${JSON.stringify({ extends: "assemblyscript/std/assembly.json", include: ["./**/*.ts"] }, null, 2)}\n`,
    ".gitignore": "node_modules/\nbuild/\n",
  };
}

function pluginToml(name: string): string {
  return `# Manifest of the "${name}" plugin. \`exoclaw plugin build\` embeds it in the module as the
# \`exoclaw.manifest\` custom section; the gateway reads it without running plugin code.
name = "${name}"
version = "0.1.0"
kind = "tool"
description = "An example tool plugin: greets someone by name."

# Host capabilities this plugin requests. Deny by default: an operator grants them in
# exoclaw.toml ([plugins.grants.${name}]) and approves them with \`exoclaw plugin approve\`.
# Pure computation needs none. Examples:
#   log = true                                  # hostLog()
#   clock = true                                # clockNow()
#   random = true                               # randomBytes()
#   kv = { quota_bytes = 65536 }                # kvGet/kvSet/kvDelete/kvList
#   http = { hosts = ["api.example.com"], methods = ["GET"] }   # httpRequest()
#   config = ["units"]                          # hostConfigGet("units")
[capabilities]

[[tools]]
name = "${name}"
description = "Greets someone by name. Use it when the user asks to be greeted."

# JSON Schema of the tool's input, shown to the model. The top level must be an object.
[tools.input_schema]
type = "object"
required = ["name"]
additionalProperties = false

[tools.input_schema.properties.name]
type = "string"
description = "Who to greet."
minLength = 1
maxLength = 200
`;
}

function indexTs(name: string): string {
  return `// The "${name}" tool plugin, in AssemblyScript. \`exoclaw plugin build\` compiles it to
// build/${name}.wasm; the gateway calls the \`call\` export once per tool call.
import { runTool, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";

/**
 * Handles one tool call. \`tool\` is the tool the model called (a plugin may offer several);
 * \`input\` is the JSON the model produced, as a Value (nil when absent). Never trust it: the
 * model can send anything, whatever the schema says.
 */
function handle(tool: string, input: Value): ToolResult {
  const who = input.get("name");
  if (who == null || !who.isString()) return ToolResult.error("'name' must be a string");
  const name = who.strValue.trim();
  if (name.length == 0) return ToolResult.error("'name' must not be empty");
  // The schema's maxLength is advice to the model, not a guarantee: enforce limits in code.
  if (name.length > 200) return ToolResult.error("'name' is longer than 200 characters");
  return ToolResult.ok("Hello, " + name + "!");
}

/** The export the gateway calls (ABI v1): decodes the call, runs \`handle\`, encodes the result. */
export function call(): i32 {
  return runTool(handle);
}
`;
}

function casesJson(name: string): string {
  const cases = [
    { tool: name, input: { name: "Ada" }, expect: { content: "Hello, Ada!", isError: false } },
    { tool: name, input: { name: "  " }, expect: { isError: true } },
    { tool: name, input: {}, expect: { contains: "'name'", isError: true } },
  ];
  return `[\n${cases.map((c) => `  ${JSON.stringify(c)}`).join(",\n")}\n]\n`;
}

function readme(name: string, deps: TemplateDeps): string {
  const install = deps.linked
    ? `This project was generated from an exoclaw source checkout, so package.json links the SDK and
the compiler by path and runs that checkout's CLI: it works offline. To publish or share it,
depend on the registry packages instead:

\`\`\`sh
npm install --save-dev @exoclaw/plugin-sdk assemblyscript exoclaw
\`\`\`

and use \`exoclaw\` in the npm scripts.`
    : `package.json depends on \`@exoclaw/plugin-sdk\` (the AssemblyScript guest SDK),
\`assemblyscript\` (the compiler) and \`exoclaw\` (the CLI that builds and tests the plugin).`;
  return `# ${name}

An exoclaw tool plugin, written in AssemblyScript.

\`\`\`sh
npm install      # the SDK, the compiler and the exoclaw CLI
npm run build    # exoclaw plugin build  -> build/${name}.wasm
npm test         # build, then exoclaw plugin test: conformance checks + test/cases.json
\`\`\`

${install}

## Files

| file | what |
|---|---|
| \`plugin.toml\` | the manifest: name, version, tools with their JSON Schemas, requested capabilities |
| \`assembly/index.ts\` | the code; \`call\` is the export the gateway runs |
| \`test/cases.json\` | example calls and the results they must give (\`content\`, \`contains\`, \`isError\`) |
| \`build/${name}.wasm\` | the built plugin (not committed) |

## Install into a gateway

Copy \`build/${name}.wasm\` into the gateway's plugins directory (\`~/.exoclaw/plugins\`, or
\`--plugins-dir\`); a running gateway loads it within a second. If the plugin requests
capabilities, the operator grants them in exoclaw.toml (\`[plugins.grants.${name}]\`) and runs
\`exoclaw plugin approve <path to ${name}.wasm>\`.

The full guide, the SDK reference and the host functions are in docs/plugins.md of the
exoclaw repository.
`;
}
