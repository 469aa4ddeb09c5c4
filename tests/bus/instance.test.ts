/** The bus member id kept in a state directory (host/src/bus/instance.ts). */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { claimBusInstance } from "../../host/src/bus/index.js";

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "exoclaw-bus-instance-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("claimBusInstance", () => {
  it("creates an id on first use and keeps it across claims of the same directory", async () => {
    const dir = fresh();
    const a = await claimBusInstance(dir);
    expect(a.id).toMatch(/^[0-9a-f]{12}$/);
    expect(JSON.parse(readFileSync(join(dir, "bus", "instance.json"), "utf8"))).toEqual({ id: a.id, pid: process.pid });
    await a.release();
    expect(JSON.parse(readFileSync(join(dir, "bus", "instance.json"), "utf8"))).toEqual({ id: a.id, pid: null });
    const b = await claimBusInstance(dir);
    expect(b.id).toBe(a.id);
    // This process claiming again (e.g. a restart that reuses the pid, as pid 1 in a container) is fine.
    expect((await claimBusInstance(dir)).id).toBe(a.id);
    expect((await claimBusInstance(fresh())).id).not.toBe(a.id);
  });

  it("takes over the id of a dead process, and refuses a directory a live process holds", async () => {
    const dir = fresh();
    const first = await claimBusInstance(dir);
    const file = join(dir, "bus", "instance.json");
    // A dead pid (a process that exited): the directory is free.
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.once("exit", r));
    writeFileSync(file, JSON.stringify({ id: first.id, pid: dead.pid }));
    expect((await claimBusInstance(dir)).id).toBe(first.id);
    // A live one: refused, naming the pid and the directory.
    const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
    try {
      writeFileSync(file, JSON.stringify({ id: first.id, pid: live.pid }));
      await expect(claimBusInstance(dir)).rejects.toThrow(new RegExp(`state directory .* is in use by process ${live.pid}.*own EXOCLAW_STATE_DIR`));
    } finally {
      live.kill();
    }
  });

  it("starts afresh from a corrupt file", async () => {
    const dir = fresh();
    await claimBusInstance(dir);
    writeFileSync(join(dir, "bus", "instance.json"), "{not json");
    expect((await claimBusInstance(dir)).id).toMatch(/^[0-9a-f]{12}$/);
  });
});
