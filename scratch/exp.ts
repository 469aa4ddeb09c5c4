import { acquireEmbedded, embeddedEngineFactory, loadSdk } from "../host/src/store/surreal/engine.js";
export async function open(url: string) {
  const sdk = await loadSdk();
  const engine = url.split(":")[0] as "mem" | "rocksdb";
  const target = { engine, url, displayUrl: url, namespace: "n", database: "d" };
  const db = new sdk.Surreal({ engines: { [engine]: embeddedEngineFactory(sdk, () => acquireEmbedded(target), (e) => { throw e; }) } });
  await db.connect(url, { namespace: "n", database: "d" });
  return async (sql: string, vars: Record<string, unknown> = {}) => {
    const rs = await db.query(sql, vars).responses();
    return rs.map((r) => (r.success ? r.result : { ERROR: String((r.error as Error).message) }));
  };
}
