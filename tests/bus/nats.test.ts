import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createNatsBus } from "../../host/src/bus/nats/index.js";
import { busSuite } from "./bus.suite.js";
import { NatsServer, TEST_TIMINGS } from "./nats-server.js";

let server: NatsServer;

/** Deletes every stream (the bus's and the KV buckets') so each test starts clean. */
async function wipe(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}

busSuite("NATS JetStream", {
  setup: async () => {
    server = await NatsServer.start();
  },
  teardown: async () => {
    await server?.destroy();
  },
  reset: async () => wipe(server.url),
  make: (stateDir) => createNatsBus({ servers: server.url, stateDir, ...TEST_TIMINGS }),
});
