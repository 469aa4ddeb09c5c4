/**
 * `exoclaw store check [--accept-loss]`: verifies the embedded store's write-ahead log, and on
 * request opens a damaged one without the commits after the damage (keeping a copy first).
 *
 * Why a command: a gateway refuses to start on a store whose WAL is damaged in the middle
 * (StoreCorruptError, `host/src/store/surreal/wal-check.ts`), because the engine would cut the
 * log there and silently drop every later commit. The operator either restores a backup, or
 * accepts the loss explicitly here. See docs/reliability.md ("Corrupted store").
 */
import { copyFile, cp, mkdir, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { checkRocksDbWal, checkSurrealKvWal, describeWalDamage, openSessionLog } from "../store/index.js";
import type { SessionsCliIo } from "./sessions.js";

const processIo: SessionsCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/**
 * Registers `exoclaw store check`. Exit code: 0 the WAL is sound (or the loss was accepted and
 * the store opened), 1 damage found (nothing changed) or the check failed.
 */
export function registerStoreCommands(program: Command, io: SessionsCliIo = processIo): void {
  const store = program.command("store").description("Check the embedded session store (rocksdb or surrealkv) for damage");
  store
    .command("check")
    .description("Verify every record of the store's write-ahead log (checksums, framing); the store must not be open in a running gateway for --accept-loss")
    .option("-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)")
    .option("--accept-loss", "if the WAL is damaged: copy the wal directory next to the store, then open the store without the commits after the damage")
    .action(async (opts: { config?: string; acceptLoss?: boolean }) => {
      try {
        process.exitCode = await checkStore(opts, io);
      } catch (err) {
        io.err(`exoclaw: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}

async function checkStore(opts: { config?: string; acceptLoss?: boolean }, io: SessionsCliIo): Promise<number> {
  const config = loadConfig({ config: opts.config }, io.env, [BUILTIN_PLUGINS_DIR]);
  const [, engine, dir] = /^(surrealkv|rocksdb):\/\/([^?]*)/.exec(config.store.url) ?? [];
  if (dir === undefined) {
    io.out("the configured store is not an embedded rocksdb or surrealkv directory: nothing to check here (a SurrealDB server or NATS checks its own files)");
    return 0;
  }
  if (!existsSync(dir)) {
    io.out(`no session store at ${dir} (the gateway creates it when it first starts)`);
    return 0;
  }
  const check = engine === "rocksdb" ? await checkRocksDbWal(dir) : await checkSurrealKvWal(dir);
  io.out(`${dir}: ${check.files.length} WAL file(s), ${check.records} record(s) verified`);
  if (check.tornTail)
    io.out(
      `the last record is torn (${check.tornTail.file}, byte ${check.tornTail.offset}): a write cut short by a crash, never acknowledged; opening drops it`,
    );
  if (!check.damage) {
    io.out("sound: no damaged record");
    return 0;
  }
  io.err(describeWalDamage(dir, check.damage));
  if (!opts.acceptLoss) return 1;
  // Evidence and a salvage source: the damaged files as they are, before the engine cuts them.
  const copy = `${dir}.damaged-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  await mkdir(copy, { recursive: true, mode: 0o700 });
  if (engine === "rocksdb") {
    // RocksDB's WAL files are `<n>.log` in the store directory itself.
    await mkdir(join(copy, "wal"), { mode: 0o700 });
    for (const name of await readdir(dir)) if (/^\d+\.log$/.test(name)) await copyFile(join(dir, name), join(copy, "wal", name));
  } else await cp(join(dir, "wal"), join(copy, "wal"), { recursive: true });
  io.out(`kept a copy of the damaged write-ahead log in ${copy}`);
  const log = await openSessionLog({ ...config.store, acceptWalDamage: true, logger: { info: (m) => io.out(m), warn: (m) => io.err(m) } });
  const sessions = await log.countSessions();
  await log.close();
  io.out(
    `opened the store without the commits after byte ${check.damage.offset} of ${check.damage.file}: ${sessions} session(s) remain; the gateway can start`,
  );
  return 0;
}
