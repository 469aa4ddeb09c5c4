/**
 * The bus's NATS connection: connects (retrying with backoff while the server is unreachable),
 * reconnects after drops, sets up the JetStream objects after every (re)connection (infra.ts)
 * and says when the bus is *ready* (connected and set up). Nothing here publishes or consumes:
 * the bus facade (bus.ts) reacts to {@link ConnectionOptions.onReady}.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BusError } from "../errors.js";
import { sleep } from "../../util/index.js";
import { ensureInfra, type Infra, type InfraOptions } from "./infra.js";
import { DEFAULT_RECONNECT_WAIT_MS } from "./options.js";

/** Options of {@link Connection}. */
export interface ConnectionOptions {
  /** NATS server URL(s). */
  servers: string | string[];
  /** Connection name shown by the server. */
  name: string;
  /** Wait between the client's reconnect attempts, ms (it adds jitter); default 1,000. */
  reconnectWaitMs?: number;
  /** Stream and bucket settings, set up on every (re)connection. */
  infra: Omit<InfraOptions, "nc">;
  /** Called each time the bus becomes ready; `reconnect`: it was ready before (an outage ended). */
  onReady: (reconnect: boolean) => void;
  /** Connection loss, set-up failures. */
  warn: (message: string, error?: unknown) => void;
}

/** One logical connection for the life of the bus; see the module comment. */
export class Connection {
  /** The current client connection (may be disconnected; check {@link ready}). */
  nc: NatsConnection | undefined;
  /** Clients and buckets of the last set-up; use only while {@link ready}. */
  infra: Infra | undefined;
  /** Connected and streams/buckets ensured. */
  ready = false;
  private closed = false;
  /** Counts connections, so that a set-up still retrying for an older one gives up. */
  private connGen = 0;
  /** Ready at least once: a later ready is a reconnect after an outage. */
  private wasReady = false;
  private readyWaiters: Array<() => void> = [];
  private readonly loopDone: Promise<void>;

  constructor(private readonly opts: ConnectionOptions) {
    this.loopDone = this.connectLoop();
  }

  /** Resolves when connected and ready (or closed). */
  whenReady(): Promise<void> {
    if (this.ready || this.closed) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  private async connectLoop(): Promise<void> {
    const reconnectWaitMs = this.opts.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS;
    let delay = 250;
    while (!this.closed) {
      let nc: NatsConnection;
      try {
        nc = await connect({
          servers: this.opts.servers,
          name: this.opts.name,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: reconnectWaitMs,
          reconnectJitter: 250,
          timeout: 2_000,
          pingInterval: 5_000,
          maxPingOut: 2,
          waitOnFirstConnect: false,
        });
      } catch (err) {
        this.opts.warn("NATS unreachable; publishing to the spool", err);
        await sleep(delay);
        delay = Math.min(delay * 2, reconnectWaitMs * 5);
        continue;
      }
      delay = 250;
      if (this.closed) {
        await nc.close().catch(() => {});
        return;
      }
      this.nc = nc;
      void this.watchStatus(nc);
      void this.onConnected();
      const err = await nc.closed();
      this.ready = false;
      if (this.closed) return;
      this.opts.warn("NATS connection closed; reconnecting", err);
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.ready = false;
        this.opts.warn("NATS disconnected; publishing to the spool");
      } else if (s.type === "reconnect") {
        void this.onConnected();
      }
    }
  }

  private async onConnected(): Promise<void> {
    const gen = ++this.connGen;
    let delay = 100;
    while (!this.closed && this.nc && !this.nc.isClosed() && gen === this.connGen) {
      try {
        this.infra = await ensureInfra({ ...this.opts.infra, nc: this.nc });
        break;
      } catch (err) {
        this.opts.warn("JetStream not ready", err);
        if (err instanceof BusError && err.code === "invalid_argument") return; // configuration mismatch: stays down
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
    if (this.closed || gen !== this.connGen || !this.nc || this.nc.isClosed()) return;
    const reconnect = this.wasReady;
    this.wasReady = true;
    this.ready = true;
    for (const w of this.readyWaiters.splice(0)) w();
    this.opts.onReady(reconnect);
  }

  /** Closes the connection and ends the reconnect loop; releases every {@link whenReady} waiter. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.readyWaiters.splice(0)) w();
    const nc = this.nc;
    this.ready = false;
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    await this.loopDone;
  }
}
