// Files of a new channel plugin project (`exoclaw plugin new <name> --kind channel`). Kept as
// code so that the bundled CLI carries them; docs/plugins.md ("Channel plugins") explains the
// contract they implement.
import { projectSkeleton, type TemplateDeps } from "./tool.js";

/**
 * The files of a channel plugin project, by relative path: a minimal JSON webhook channel
 * (`parse` checks an HMAC-SHA256 signature with the host's `hmac_verify` and turns
 * `{peer, text, id}` into one message; `send` POSTs `{peer, text}` to the configured `base_url`
 * with a bearer token the host substitutes). It builds with `exoclaw plugin build` and passes
 * `exoclaw plugin test` (the static checks: manifest, ABI, imports, exports) as generated.
 * @param name plugin name, already validated
 */
export function channelProjectFiles(name: string, deps: TemplateDeps): Record<string, string> {
  return {
    ...projectSkeleton(name, "channel", `${deps.cli} plugin build && ${deps.cli} plugin test build/${name}.wasm`, deps),
    "plugin.toml": pluginToml(name),
    "assembly/index.ts": indexTs(name),
    "README.md": readme(name),
  };
}

function pluginToml(name: string): string {
  return `# Manifest of the "${name}" channel plugin. \`exoclaw plugin build\` embeds it in the module as
# the \`exoclaw.manifest\` custom section; the gateway reads it without running plugin code.
name = "${name}"
version = "0.1.0"
kind = "channel"
description = "An example channel: signed JSON webhooks in, JSON POSTs out."
# Headers carrying the platform's signature: a POST with none of them is answered 401 by the
# host before its body is read or this plugin runs (cheap refusal of unsigned floods).
signature_headers = ["x-signature"]

# Host capabilities this plugin requests. Deny by default: the operator grants them in
# exoclaw.toml ([plugins.grants.${name}]) and approves them with \`exoclaw plugin approve\`.
#   http     the platform's API host(s); the operator's grant narrows it further
#   secrets  names only: SIGNING_SECRET is checked with hmac_verify, API_TOKEN is substituted
#            into {{secret:API_TOKEN}} by the host; the plugin never reads either value
#   config   base_url, the platform's API address (a fake platform's in tests)
[capabilities]
http = { hosts = ["api.example.com", "127.0.0.1", "localhost"], methods = ["POST"] }
secrets = ["SIGNING_SECRET", "API_TOKEN"]
config = ["base_url"]
`;
}

function indexTs(name: string): string {
  return `// The "${name}" channel plugin, in AssemblyScript. \`exoclaw plugin build\` compiles it to
// build/${name}.wasm. The gateway calls \`parse\` for every HTTP request to
// /webhook/<channel>[/<account>] and \`send\` for every reply; a platform that is polled instead
// also exports \`poll\` (readPollRequest / writePollResult).
import {
  channelDone, channelError, hmacVerify, hostConfigGet, httpRequest, InboundMessage, parseJson, readOutboundMessage,
  readWebhookRequest, toJson, utf8Bytes, Value, writeJsonParseResult, writeSendReceipt,
} from "@exoclaw/plugin-sdk/assembly";

/**
 * One inbound request -> the HTTP answer and the messages in it. The body is
 * \`{"peer": "...", "text": "...", "id": "..."}\`, signed with
 * \`x-signature: sha256=<hex HMAC-SHA256(body, SIGNING_SECRET)>\`. Never trust the body: anyone
 * can reach a webhook URL, so the signature is checked first (401 = not authentic, the host
 * then ignores any messages).
 */
export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return 1; // malformed input, already reported
  const sig = req.header("x-signature");
  if (sig == null || !sig.startsWith("sha256=") || !hmacVerify("sha256", "SIGNING_SECRET", req.body, sig.substring(7))) {
    writeJsonParseResult(401, "{\\"error\\":\\"bad signature\\"}", []);
    return channelDone(0);
  }
  const body = parseJson(req.bodyText());
  if (body == null || !body.isMap()) {
    writeJsonParseResult(400, "{\\"error\\":\\"the body must be a JSON object\\"}", []);
    return channelDone(0);
  }
  const peer = body.get("peer");
  const text = body.get("text");
  const id = body.get("id");
  if (peer == null || !peer.isString() || text == null || !text.isString() || id == null || !id.isString()) {
    writeJsonParseResult(400, "{\\"error\\":\\"'peer', 'text' and 'id' must be strings\\"}", []);
    return channelDone(0);
  }
  // The platform's message id: the host answers a redelivered id only once.
  const msg = new InboundMessage(peer.strValue, text.strValue, id.strValue);
  writeJsonParseResult(200, "{\\"ok\\":true}", [msg]);
  return channelDone(0);
}

/** One reply -> the platform. A failure is reported with channelError (the host retries and logs it). */
export function send(): i32 {
  const out = readOutboundMessage();
  if (out == null) return 1;
  const base = hostConfigGet("base_url");
  const url = base.string();
  if (!base.ok || url == null) return channelDone(channelError("config value 'base_url' is not set: " + base.error));
  const headers = new Map<string, string>();
  headers.set("content-type", "application/json");
  headers.set("authorization", "Bearer {{secret:API_TOKEN}}");
  const payload = Value.map().set("peer", Value.str(out.peer)).set("text", Value.str(out.content));
  const res = httpRequest("POST", url + "/messages", headers, utf8Bytes(toJson(payload)));
  if (!res.ok) return channelDone(channelError("POST /messages failed: " + res.error));
  if (res.status < 200 || res.status >= 300) return channelDone(channelError("POST /messages answered " + res.status.toString()));
  writeSendReceipt(null);
  return channelDone(0);
}
`;
}

function readme(name: string): string {
  return `# ${name}

An exoclaw channel plugin, written in AssemblyScript: signed JSON webhooks in, JSON POSTs out.

\`\`\`sh
npm install      # the SDK, the compiler and the exoclaw CLI
npm run build    # exoclaw plugin build  -> build/${name}.wasm
npm test         # build, then exoclaw plugin test (manifest, ABI, imports, exports)
\`\`\`

\`exoclaw plugin test\` runs tool calls only for tool plugins; for a channel it checks the
module statically. Test the behaviour end to end against a fake of your platform: a small HTTP
server standing in for its API (point \`base_url\` at it) and webhook requests signed the way the
platform signs them (see docs/plugins.md, "Channel plugins", and the telegram / webhook plugins
and tests of the exoclaw repository).

## Files

| file | what |
|---|---|
| \`plugin.toml\` | the manifest: kind \`channel\`, requested capabilities (http, secrets, config) |
| \`assembly/index.ts\` | \`parse\` (webhook request -> messages + HTTP answer) and \`send\` (reply -> platform) |
| \`build/${name}.wasm\` | the built plugin (not committed) |

## Install into a gateway

Copy \`build/${name}.wasm\` into the plugins directory, then in exoclaw.toml:

\`\`\`toml
[channels.${name}]
allow = ["alice"]                      # peers allowed in; everyone else is dropped

[plugins.grants.${name}]
http = { hosts = ["api.example.com"], methods = ["POST"] }
config = { base_url = "https://api.example.com" }
secrets = { SIGNING_SECRET = { env = "MY_SIGNING_SECRET" }, API_TOKEN = { env = "MY_API_TOKEN" } }
\`\`\`

and run \`exoclaw plugin approve <path to ${name}.wasm>\`. Webhooks arrive at
\`POST /webhook/${name}\`.
`;
}
