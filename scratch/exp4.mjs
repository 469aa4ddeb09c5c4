import { importSource } from "../bench/lib.mjs";
const { open } = await importSource("scratch/exp.ts", "exp");
const q = await open("mem://");
const show = async (label, sql, vars) => console.log(label, JSON.stringify(await q(sql, vars), (k, v) => typeof v === "bigint" ? Number(v) : v?.constructor?.name === "RecordId" ? String(v) : v));
await show("seed", "INSERT INTO session $rows;", { rows: [{ id: "agent:main:tg:x:p", last_seq: 5 }, { id: "b", last_seq: 3 }] });
await show("map", "SELECT * FROM array::map($keys, |$k| type::record('session', $k));", { keys: ["agent:main:tg:x:p", "b", "zz"] });
await show("let", "LET $ids = array::map($keys, |$k| type::record('session', $k)); SELECT * FROM $ids;", { keys: ["agent:main:tg:x:p", "b", "zz"] });
await show("paren", "SELECT * FROM (array::map($keys, |$k| type::record('session', $k)));", { keys: ["agent:main:tg:x:p", "b", "zz"] });
