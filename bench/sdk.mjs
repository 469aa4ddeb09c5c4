#!/usr/bin/env node
// `npm run bench:sdk`: what the guest SDK's MessagePack round trip costs per call, beside the bare
// Extism call with the same bytes, in the same run, on the main thread (no sandbox, so only the
// SDK differs between the two columns). Fixture: plugins/fixtures/sdk-roundtrip.
//   echo     plugin.call("echo", bytes): input copied in and the same bytes copied out, no MessagePack
//   sdk      host packs the value (msgpackr) + guest decodes it and re-encodes it (SDK) + host unpacks
//   codec    the host's share alone (msgpackr pack + unpack, no call)
//   guest    sdk - echo - codec: what the SDK's decode + encode add inside the guest (p50s)
// Two shapes per size: "text" (one string, i.e. copying and UTF-8) and "records" (an array of
// small maps, i.e. allocation). Options: --calls N (per row at <= 1 KiB; 64 KiB rows use N/5).
//
// What the numbers say (2-core VM, see plugin-sdk/README.md "Cost per call"): the echo column is
// almost all copying at 64 KiB. The Extism kernel ABI (extism:host/env) has no bulk transfer:
// input_load_u64 / store_u64 move 8 bytes per import call, ~60-70 ns each in the JavaScript
// kernel (a BigInt in or out every call), so 64 KiB in and out is ~16k calls, ~1 ms. A leaner
// kernel override in the sandbox worker measures ~47 ns per call (-30%); a bulk import that
// copies straight into guest memory measures ~2 us per 64 KiB. Both are host-side changes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import createPlugin from "@extism/extism";
import { Packr, Unpackr } from "msgpackr";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({ options: { calls: { type: "string", default: "5000" } } });
const CALLS = Number(opts.calls);
const log = (s) => process.stderr.write(`${s}\n`);

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** p50 / p99 of samples, ms. */
function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

/**
 * Times several functions interleaved (call i of each back to back), so that a load change on
 * the machine hits every column alike; returns p50/p99 per function.
 */
async function timeInterleaved(n, fns) {
  for (let i = 0; i < Math.max(50, n / 10); i++) for (const fn of fns) await fn();
  const samples = fns.map(() => new Array(n));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < fns.length; k++) {
      const t = performance.now();
      await fns[k]();
      samples[k][i] = performance.now() - t;
    }
  }
  return samples.map(stats);
}

/** A value whose MessagePack encoding is about `bytes` long. */
function makeValue(shape, bytes) {
  if (shape === "text") {
    const base = packr.pack({ text: "" }).length;
    // Header growth (fixstr -> str 8 -> str 16) is absorbed by measuring once more.
    let n = Math.max(0, bytes - base - 3);
    while (packr.pack({ text: "a".repeat(n) }).length > bytes && n > 0) n--;
    return { text: "a".repeat(n) };
  }
  const items = [];
  for (let i = 0; packr.pack({ items }).length < bytes; i++) {
    items.push({ id: i, name: `item ${i}`, score: i / 7, tags: ["a", "b"], ok: i % 2 === 0 });
  }
  return { items };
}

const us = (ms) => (ms * 1000).toFixed(1);

async function main() {
  const wasm = readFileSync(join(ROOT, "build/fixtures/sdk-roundtrip.wasm"));
  const plugin = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false, runInWorker: false });

  const rows = [["shape", "bytes", "echo p50 us", "p99", "sdk p50 us", "p99", "sdk/echo", "codec p50 us", "guest SDK p50 us"]];
  for (const size of [128, 1024, 64 * 1024]) {
    for (const shape of ["text", "records"]) {
      const value = makeValue(shape, size);
      const bytes = packr.pack(value);
      const n = size > 4096 ? Math.max(100, Math.floor(CALLS / 5)) : CALLS;
      log(`${shape} ${bytes.length} B x ${n}...`);

      // Sanity: the guest gives back an equal value.
      const back = unpackr.unpack((await plugin.call("roundtrip", bytes)).bytes());
      if (JSON.stringify(back) !== JSON.stringify(value)) throw new Error(`${shape} ${size}: the round trip changed the value`);

      const [echo, sdk, codec] = await timeInterleaved(n, [
        () => plugin.call("echo", bytes),
        async () => {
          const out = await plugin.call("roundtrip", packr.pack(value));
          unpackr.unpack(out.bytes());
        },
        async () => {
          unpackr.unpack(packr.pack(value));
        },
      ]);
      rows.push([
        shape,
        String(bytes.length),
        us(echo.p50),
        us(echo.p99),
        us(sdk.p50),
        us(sdk.p99),
        (sdk.p50 / echo.p50).toFixed(2),
        us(codec.p50),
        us(Math.max(0, sdk.p50 - echo.p50 - codec.p50)),
      ]);
    }
  }
  await plugin.close();

  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => (i < 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
  console.log("\necho: bare Extism call, same bytes in and out; sdk: msgpackr pack + guest decode + guest encode + msgpackr unpack");
}

main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
