import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireEmbedded, embeddedEngineFactory, loadSdk } from "./host/src/store/surreal/engine.js";
const sdk = await loadSdk();
const url = `rocksdb://${mkdtempSync(join(tmpdir(), "er-probe-"))}`;
const target = { engine: "rocksdb" as const, url, displayUrl: url, namespace: "exoclaw", database: "sessions" };
const engine = embeddedEngineFactory(sdk, () => acquireEmbedded(target), (err) => { throw err; });
const db = new sdk.Surreal({ engines: { rocksdb: engine } });
await db.connect(url, { namespace: target.namespace, database: target.database });
const q = async (sql: string, vars: Record<string, unknown> = {}) => {
  const r = await db.query(sql, vars).responses();
  console.log(sql.slice(0, 90).replace(/\n/g, " "), "=>", JSON.stringify(r.map((x: any) => (x.success ? x.result : "ERR " + x.error.message)), (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
};
await q(process.argv[2] ?? "RETURN 1;");
const sqls = JSON.parse(process.env.SQLS ?? "[]");
for (const s of sqls) await q(s, { k: "x", key: "s1", rows: [{ id: ["pm", "a"], session: "s1", seq: 1 }] });
await db.close();
