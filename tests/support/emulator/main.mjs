#!/usr/bin/env node
// CLI: `node tests/support/emulator/main.mjs [--port N] [--host H] [--latency-ms N] [--no-record]`
// Prints exactly one line `{"url":"http://127.0.0.1:PORT"}` when ready; exits on SIGTERM/SIGINT.
import { parseArgs } from "node:util";
import { startEmulator } from "./server.mjs";

/**
 * @param {string[]} argv
 * @returns {import("./server.mjs").EmulatorOptions}
 */
function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      "latency-ms": { type: "string", default: "0" },
      "no-record": { type: "boolean", default: false },
    },
  });
  return {
    port: Number(values.port),
    host: values.host,
    latencyMs: Number(values["latency-ms"]),
    record: !values["no-record"],
  };
}

async function main() {
  const emulator = await startEmulator(parseOptions(process.argv.slice(2)));
  const shutdown = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
  process.stdout.write(`${JSON.stringify({ url: emulator.url })}\n`);
}

main().catch((error) => {
  process.stderr.write(`emulator: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
