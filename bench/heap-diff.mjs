#!/usr/bin/env node
// `node bench/heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [--top N]`
//
// Constructor diff of two V8 heap snapshots (e.g. from bench/rss-breakdown.mjs --snapshots): for
// each node type and name (a constructor for objects, "(string)", "(compiled code)", ...) the
// count and self size in each, and the difference, largest growth first. Self sizes only (no
// retained sizes): what each kind of object costs by itself.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: opts, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" } } });

/** Map "type:name" -> {count, bytes} of one snapshot file. */
export function summarize(file) {
  const snap = JSON.parse(readFileSync(file, "utf8"));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const out = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    // Strings, code, arrays: grouped by type (their names are their contents); objects by constructor.
    const name = type === "object" || type === "closure" || type === "native" ? `${type}: ${snap.strings[nodes[i + iName]]}` : `(${type})`;
    const e = out.get(name) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + iSize];
    out.set(name, e);
  }
  return out;
}

if (positionals.length === 2) {
  const [a, b] = positionals.map(summarize);
  const total = (m) => [...m.values()].reduce((s, e) => s + e.bytes, 0);
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => {
    const x = a.get(k) ?? { count: 0, bytes: 0 };
    const y = b.get(k) ?? { count: 0, bytes: 0 };
    return { k, x, y, d: y.bytes - x.bytes };
  });
  rows.sort((p, q) => q.d - p.d);
  const kb = (n) => (n / 1024).toFixed(0);
  console.log(`total self size: ${(total(a) / 1048576).toFixed(1)} -> ${(total(b) / 1048576).toFixed(1)} MiB`);
  console.log("| what | count before -> after | KiB before -> after | growth KiB |\n|---|---|---|---|");
  for (const r of rows.slice(0, Number(opts.top)))
    console.log(`| ${r.k.slice(0, 60)} | ${r.x.count} -> ${r.y.count} | ${kb(r.x.bytes)} -> ${kb(r.y.bytes)} | ${kb(r.d)} |`);
}
