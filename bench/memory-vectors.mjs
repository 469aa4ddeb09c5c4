#!/usr/bin/env node
// `npm run bench:memory-vectors`: what vector recall over 10,000 notes costs per turn, in process
// (what MemoryService does: a dot product over the readable notebook's Float32Array vectors,
// cosine >= 0.35, best `recall` kept) against SurrealDB's vector index (embedded SurrealDB on
// disk, `surrealkv://`, through exoclaw's own embedded engine, store/surreal/engine.ts): a table
// of notes with their embeddings and an HNSW index (DIST COSINE, TYPE F32), queried by KNN
// (`<|k,ef|>`), with and without the scope filter a recall needs (only the reader's notebook),
// and by an exact `vector::similarity::cosine` over the notebook's rows (index on the notebook
// key). The reader's notebook holds `--notes` notes; another notebook holds `--others` more (so
// the scope filter has something to exclude). Variants alternate in rounds in the same run; each
// round times `--queries` random queries per variant. Also printed: how many of the exact top 5
// each SurrealDB query found (recall@5). MTREE is not offered: SurrealDB 3 no longer parses it.
// Two forms that keep the scopes without a filter inside the KNN: an unscoped KNN asking for
// `--oversample` times K neighbours, filtered by notebook afterwards (falling back to the
// in-process scan when fewer than K survive; the fallbacks are counted), and a table per notebook
// (scope-prefixed, its own HNSW index: no filter at all). And what the store keeps today
// (store/vectors.ts): loading a notebook's 10,000 vectors stored as float32 bytes at start.
// Options: --notes N (10000), --others N (1000), --dims N (768), --rounds N (3), --queries N (40),
// --ef N (40), --oversample N (4).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { importSource, stats } from "./lib.mjs";

const { values: opts } = parseArgs({
  options: {
    notes: { type: "string", default: "10000" },
    others: { type: "string", default: "1000" },
    dims: { type: "string", default: "768" },
    rounds: { type: "string", default: "3" },
    queries: { type: "string", default: "40" },
    ef: { type: "string", default: "40" },
    oversample: { type: "string", default: "4" },
  },
});
const NOTES = Number(opts.notes);
const OTHERS = Number(opts.others);
const D = Number(opts.dims);
const ROUNDS = Number(opts.rounds);
const QUERIES = Number(opts.queries);
const EF = Number(opts.ef);
const K = 5;
const OVER = K * Number(opts.oversample);
const MIN_SIMILARITY = 0.35;

const engine = await importSource("host/src/store/surreal/engine.ts", "memory-vectors-engine");
const { cosine } = await importSource("host/src/agent/memory/embeddings.ts", "memory-vectors-embeddings");

// Deterministic vectors with structure (so similarities spread like real embeddings): each is a
// mix of a few of 64 "topics" plus noise, unit length.
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const topics = Array.from({ length: 64 }, () => Array.from({ length: D }, () => rand() - 0.5));
function vector() {
  const v = new Float32Array(D);
  for (let t = 0; t < 3; t++) {
    const topic = topics[Math.floor(rand() * topics.length)];
    const w = rand();
    for (let i = 0; i < D; i++) v[i] += w * topic[i];
  }
  for (let i = 0; i < D; i++) v[i] += (rand() - 0.5) * 0.6;
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < D; i++) v[i] /= n;
  return v;
}

const READER = "reader";
const own = Array.from({ length: NOTES }, (_, i) => ({ id: i + 1, v: vector() }));
const others = Array.from({ length: OTHERS }, (_, i) => ({ id: NOTES + i + 1, v: vector() }));

// ---- SurrealDB, embedded on disk (the durable default), through exoclaw's engine.
const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-vectors-"));
const target = { engine: "surrealkv", url: `surrealkv://${dir}`, displayUrl: `surrealkv://${dir}`, namespace: "exoclaw", database: "bench" };
const sdk = await engine.loadSdk();
let failure;
const db = new sdk.Surreal({
  engines: {
    surrealkv: engine.embeddedEngineFactory(
      sdk,
      () => engine.acquireEmbedded(target),
      (err) => (failure = err),
    ),
  },
});
await db.connect(target.url, { namespace: target.namespace, database: target.database });
if (failure) throw failure;
await db
  .query(
    `DEFINE TABLE memory_vector SCHEMAFULL;
DEFINE FIELD book ON memory_vector TYPE string;
DEFINE FIELD note ON memory_vector TYPE int;
DEFINE FIELD embedding ON memory_vector TYPE array<float>;
DEFINE INDEX memory_vector_book ON memory_vector FIELDS book;
DEFINE INDEX memory_vector_hnsw ON memory_vector FIELDS embedding HNSW DIMENSION ${D} DIST COSINE TYPE F32;
DEFINE TABLE memory_vector_reader SCHEMAFULL;
DEFINE FIELD note ON memory_vector_reader TYPE int;
DEFINE FIELD embedding ON memory_vector_reader TYPE array<float>;
DEFINE INDEX memory_vector_reader_hnsw ON memory_vector_reader FIELDS embedding HNSW DIMENSION ${D} DIST COSINE TYPE F32;
DEFINE TABLE memory_vector_bytes SCHEMAFULL;
DEFINE FIELD note ON memory_vector_bytes TYPE int;
DEFINE FIELD sum ON memory_vector_bytes TYPE int;
DEFINE FIELD vector ON memory_vector_bytes TYPE bytes;`,
  )
  .collect();
const t0 = performance.now();
for (const [book, list] of [
  [READER, own],
  ["other", others],
]) {
  for (let i = 0; i < list.length; i += 250) {
    const rows = list.slice(i, i + 250).map((n) => ({ book, note: n.id, embedding: Array.from(n.v) }));
    await db.query("INSERT INTO memory_vector $rows RETURN NONE", { rows }).collect();
  }
}
const insertMs = performance.now() - t0;
const t1 = performance.now();
for (let i = 0; i < own.length; i += 250) {
  const rows = own.slice(i, i + 250).map((n) => ({ note: n.id, embedding: Array.from(n.v) }));
  await db.query("INSERT INTO memory_vector_reader $rows RETURN NONE", { rows }).collect();
}
const perBookInsertMs = performance.now() - t1;
// What store/vectors.ts does: one row per (model, note), float32 bytes, read back by id range.
const t2 = performance.now();
for (let i = 0; i < own.length; i += 250) {
  const rows = own
    .slice(i, i + 250)
    .map((n) => ({ id: new sdk.RecordId("memory_vector_bytes", ["m", n.id]), note: n.id, sum: 0, vector: new Uint8Array(n.v.buffer.slice(0)) }));
  await db.query("INSERT INTO memory_vector_bytes $rows RETURN NONE", { rows }).collect();
}
const bytesInsertMs = performance.now() - t2;
const loadMs = [];
for (let i = 0; i < 4; i++) {
  const t = performance.now();
  const [rows] = await db.query("SELECT note, sum, vector FROM memory_vector_bytes:['m', 0]..=['m', 9007199254740991]").collect();
  const loaded = rows.map((r) => new Float32Array(new Uint8Array(r.vector).slice().buffer));
  if (loaded.length !== NOTES || loaded[0].length !== D) throw new Error(`loaded ${loaded.length} vectors of ${loaded[0]?.length}`);
  loadMs.push(performance.now() - t);
}
let fallbacks = 0;

// ---- The variants: each returns the ids of its top K for query q.
function inProcess(q) {
  const hits = [];
  for (const n of own) {
    const s = cosine(q, n.v);
    if (s >= MIN_SIMILARITY) hits.push({ id: n.id, s });
  }
  hits.sort((a, b) => b.s - a.s || b.id - a.id);
  return hits.slice(0, K).map((h) => h.id);
}
const rowsOf = (r) => r[0].map((row) => Number(row.note));
const variants = {
  "in process (dot product, Float32Array)": async (q) => inProcess(q),
  [`SurrealDB HNSW KNN <|${K},${EF}|>, scoped`]: async (q) =>
    rowsOf(
      await db
        .query(`SELECT note, vector::distance::knn() AS d FROM memory_vector WHERE book = $book AND embedding <|${K},${EF}|> $q ORDER BY d`, {
          book: READER,
          q: Array.from(q),
        })
        .collect(),
    ),
  [`SurrealDB HNSW KNN <|${K},${EF}|>, unscoped`]: async (q) =>
    rowsOf(
      await db
        .query(`SELECT note, vector::distance::knn() AS d FROM memory_vector WHERE embedding <|${K},${EF}|> $q ORDER BY d`, { q: Array.from(q) })
        .collect(),
    ),
  [`SurrealDB HNSW KNN <|${OVER},${Math.max(EF, OVER)}|> unscoped, then notebook filter (scan fallback)`]: async (q) => {
    const [rows] = await db
      .query(`SELECT note, book, vector::distance::knn() AS d FROM memory_vector WHERE embedding <|${OVER},${Math.max(EF, OVER)}|> $q ORDER BY d`, {
        q: Array.from(q),
      })
      .collect();
    const mine = rows.filter((r) => r.book === READER && 1 - r.d >= MIN_SIMILARITY).slice(0, K);
    if (mine.length < K && rows.length === OVER) {
      fallbacks++;
      return inProcess(q);
    }
    return mine.map((r) => Number(r.note));
  },
  [`SurrealDB HNSW KNN <|${K},${EF}|> on a table per notebook`]: async (q) =>
    rowsOf(
      await db
        .query(`SELECT note, vector::distance::knn() AS d FROM memory_vector_reader WHERE embedding <|${K},${EF}|> $q ORDER BY d`, { q: Array.from(q) })
        .collect(),
    ),
  "SurrealDB exact cosine over the notebook": async (q) =>
    rowsOf(
      await db
        .query(`SELECT note, vector::similarity::cosine(embedding, $q) AS s FROM memory_vector WHERE book = $book ORDER BY s DESC LIMIT ${K}`, {
          book: READER,
          q: Array.from(q),
        })
        .collect(),
    ),
};

const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const found = Object.fromEntries(Object.keys(variants).map((k) => [k, 0]));
let exactTotal = 0;
for (let round = 0; round < ROUNDS; round++) {
  const queries = Array.from({ length: QUERIES }, vector);
  const exact = queries.map(inProcess);
  if (round > 0) exactTotal += exact.reduce((s, e) => s + e.length, 0);
  for (const [name, run] of Object.entries(variants)) {
    for (let i = 0; i < queries.length; i++) {
      const t = performance.now();
      const ids = await run(queries[i]);
      const ms = performance.now() - t;
      // The first round warms caches (index pages, JIT) and is not counted.
      if (round === 0) continue;
      samples[name].push(ms);
      found[name] += ids.filter((id) => exact[i].includes(id)).length;
    }
  }
}

console.log(`vector recall over ${NOTES} notes (+${OTHERS} in another notebook), ${D} dimensions, top ${K}; load ${loadavg()[0].toFixed(1)} (1 min)`);
console.log(
  `SurrealDB insert of ${NOTES + OTHERS} rows with the HNSW index: ${(insertMs / 1000).toFixed(1)} s; ${NOTES} rows in the per-notebook table: ${(perBookInsertMs / 1000).toFixed(1)} s`,
);
console.log(
  `store/vectors.ts form (float32 bytes, no index): insert ${NOTES} rows ${(bytesInsertMs / 1000).toFixed(1)} s; load all at start p50 ${stats(loadMs).p50.toFixed(0)} ms (4 loads)`,
);
console.log(`oversampled KNN fell back to the scan for ${fallbacks} queries (all rounds)`);
for (const name of Object.keys(variants)) {
  const s = stats(samples[name]);
  const recall = exactTotal > 0 ? `${((100 * found[name]) / exactTotal).toFixed(0)} %` : "n/a";
  console.log(`${name.padEnd(44)} p50 ${s.p50.toFixed(2).padStart(8)} ms  p99 ${s.p99.toFixed(2).padStart(8)} ms  recall@${K} vs exact ${recall}`);
}
await db.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
