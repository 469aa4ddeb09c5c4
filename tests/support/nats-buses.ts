/**
 * The set-up shared by the bus tests that stand several gateways up as bus connections to one
 * real nats-server (tests/bus/nats-server.ts): call {@link natsBuses} at the top of a test file;
 * it starts the server before the file's tests and, after them, closes every bus, destroys the
 * server and removes every temporary directory it made.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { createNatsBus, type NatsBus } from "../../host/src/bus/nats/index.js";
import { NatsServer, TEST_TIMINGS } from "../bus/nats-server.js";

/** What {@link natsBuses} gives a test file. */
export interface NatsBuses {
  /** The file's nats-server (stop/restart it for outages); set once `beforeAll` ran. */
  readonly server: NatsServer;
  /** A new bus connection with instance id `id` and its own state dir (fast {@link TEST_TIMINGS}). */
  bus(id: string): Promise<NatsBus>;
  /** A new temporary directory, removed after the file. */
  tmp(): Promise<string>;
}

/**
 * Registers the `beforeAll`/`afterAll` of a file's NATS tests (see the module comment).
 * @param prefix the temporary directories' name prefix, e.g. "exoclaw-ledger-"
 */
export function natsBuses(prefix: string): NatsBuses {
  let server: NatsServer | undefined;
  const buses: NatsBus[] = [];
  const dirs: string[] = [];
  const tmp = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  beforeAll(async () => {
    server = await NatsServer.start();
  }, 30_000);
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await server?.destroy();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  return {
    get server(): NatsServer {
      if (server === undefined) throw new Error("natsBuses: the nats-server is started in beforeAll");
      return server;
    },
    async bus(id: string): Promise<NatsBus> {
      const b = await createNatsBus({ servers: this.server.url, stateDir: await tmp(), instanceId: id, ...TEST_TIMINGS, connectWaitMs: 10_000 });
      buses.push(b);
      return b;
    },
    tmp,
  };
}
