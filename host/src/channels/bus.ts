/**
 * Channels over the message bus (docs/bus.md, "Wiring into the gateway"): with `[bus]`
 * configured, a channel message that passed the allowlist and limits is published to
 * `exoclaw.in.<channel>.<account>.<peer>` instead of being run here; every gateway consumes the
 * `in` stream (durable `gateway`, partitioned so that one peer's messages are handled by one
 * process at a time, in order), runs the turn, and publishes the reply to
 * `exoclaw.out.<channel>.<account>.<peer>`; a consumer `out-<channel>` per channel calls the
 * plugin's `send`.
 *
 * Exactly-once, end to end:
 * - publish: the message id `channel:<channel>:<account>:<platformMessageId>` makes JetStream
 *   drop a platform redelivery (duplicate window) and the consumer skip an id it handled;
 * - turn: the message id is the turn's idempotency key, so a redelivery (lost ack, crash) gets
 *   the stored outcome instead of a second model call;
 * - reply: published with id `<message id>:reply`, so re-publishing it (a redelivered message
 *   whose turn had ended) is dropped by the stream / skipped by the `out` consumer. The `out`
 *   stream is the reply outbox here: a reply stays there until `send` succeeded and it is acked.
 *   A crash between the plugin's `send` and the ack redelivers it: the same id goes to the
 *   plugin as `replyId`, for platforms that dedupe on an idempotency key; on the others that
 *   window is at least once (docs/reliability.md, "A crash between answer and reply").
 */
import {
  inboundSubject,
  outboundSubject,
  REPLAY_OF_HEADER,
  type Bus,
  type BusMessage,
  type ConsumerStats,
  type Subscription,
  type TurnOwnerScope,
} from "../bus/index.js";
import type { InboundAddress, Route } from "../router/index.js";
import { failureReason, isInterrupted, isOrphanClaim, isReplay, isSessionBusy, isTransient, isTurnAborted } from "../agent/index.js";
import { errorMessage, sleep } from "../util/index.js";
import type { TurnPresence } from "./bus-presence.js";
import { unpackImages, type MediaObjects } from "./bus-media.js";
import type { ImageInput } from "../agent/index.js";
import { checkInboundPayload, checkOutboundPayload, inboundMsgId, replyMsgId, type InboundPayload, type OutboundPayload } from "./bus-payloads.js";

export { checkInboundPayload, checkOutboundPayload, inboundMsgId, inboundPayload, replyMsgId } from "./bus-payloads.js";
export type { InboundPayload, OutboundPayload } from "./bus-payloads.js";

/** The parts of a turn result the consumer uses (ChannelTurnResult). */
interface TurnResultLike {
  text: string;
  replayed?: true;
  merged?: true;
}

/** What the bus side of the channels service needs from it. */
export interface ChannelBusDeps {
  bus: Bus;
  /** Handler attempts before a message is dead-lettered (`[bus] max_deliver`). */
  maxDeliver: number;
  /** Channel names served by this process (config order). */
  channelNames: string[];
  router: { resolve(address: InboundAddress): Route };
  run(
    request: {
      agentId: string;
      sessionKey: string;
      content: string;
      channel: string;
      account: string;
      peer: string;
      idempotencyKey: string;
      thread?: string;
      platformMessageId?: string;
      images?: ImageInput[];
    },
    hooks: { onAccepted?: (runId: string) => void },
    emit?: (ev: unknown) => void,
  ): Promise<TurnResultLike>;
  /**
   * Typing and the streamed message of a turn this gateway runs (bus-presence.ts); absent = none.
   * `msgId`: the inbound message's bus id, `replyId`: its reply's id.
   */
  presence?(to: { channel: string; account: string; peer: string; thread?: string; replyTo?: string }, msgId: string, replyId: string): Promise<TurnPresence>;
  /** Where images too large to go inline are (NATS Object Store); absent = inline only. */
  mediaObjects?(): Promise<MediaObjects | undefined>;
  /** A reply that edited a streamed message went out: its shared entry can go (stream-kv.ts). */
  delivered?(msgId: string): void;
  /**
   * Closes the open turn of a key whose process died (an `error` event), before the message runs
   * again under the next key; returns whether it wrote one. Absent: the cut turn stays open.
   */
  closeAbandoned?(idempotencyKey: string, message: string): Promise<boolean>;
  /**
   * How long a redelivered message waits for its turn while another live gateway still claims it
   * (bus `turnOwners`), ms; then it runs again. The longest turn deadline of the configured agents
   * plus a minute (a claim outlives its turn only when its release could not reach NATS).
   */
  heldElsewhereMaxWaitMs: number;
  /**
   * Resumes the turn of a key whose process died while it was parked on an approval
   * (agent/approvals/takeover.ts); undefined when it was not parked. Absent: such a turn is
   * closed and run again like any cut turn.
   */
  resumeParked?(idempotencyKey: string): Promise<{ result: Promise<TurnResultLike> } | { heldElsewhere: string } | undefined>;
  /** Calls the channel plugin's `send` once. @throws when the channel or plugin is missing, or the plugin fails */
  send(
    channel: string,
    message: { account: string; peer: string; thread?: string; content: string; replyTo?: string; replyId?: string; editOf?: string },
  ): Promise<void>;
  /** Whether a failed `send` will fail again however often it is retried (outbox.ts `isPermanentSendError`); default never. */
  permanent?(err: unknown): boolean;
  /** Counter hooks (the service's per-channel counters). */
  count(channel: string, what: "accepted" | "refused" | "answered" | "sendFailures"): void;
  failureReply(message: string): string;
  /**
   * Most `send` calls running at once per channel; default 2. The plugin's instances (default
   * 4) also parse the channel's webhooks: a backlog of replies must not take them all, or
   * webhooks would be refused as busy.
   */
  sendConcurrency?: number;
  logger: { debug(o: object, m: string): void; info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

/** The inbound consumer's stream and durable (its members are the gateways that run turns). */
const INBOUND_SCOPE: TurnOwnerScope = { stream: "in", durable: "gateway" };
/** How often a message whose turn runs on another live gateway asks for its outcome, ms. */
const HELD_ELSEWHERE_POLL_MS = 1_000;

/** The `error` event message of a turn a dead gateway left unfinished and another one re-ran. */
export const ABANDONED_MESSAGE = "turn interrupted: the gateway running it stopped; the message was run again by another gateway";

/**
 * The idempotency key of handler attempt `n` (1-based) of a message: the message id itself,
 * then `<id>#<n>` for attempts after one whose turn failed for a retryable reason (a failed turn
 * is stored under its key, and asking again with the same key only replays the failure).
 */
function attemptKey(msgId: string, n: number): string {
  return n === 1 ? msgId : `${msgId}#${n}`;
}

const DEFAULT_SEND_CONCURRENCY = 2;
/** Replies one process holds per channel (sending or waiting for a slot). */
const OUT_MAX_ACK_PENDING = 32;

/** A counting semaphore (FIFO). */
class Semaphore {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** The bus side of the channels service: publishing admitted messages and the two consumers. */
export interface ChannelBus {
  /** Publishes an admitted message; resolves when it is durable (stream or disk spool). @throws BusError */
  publishInbound(payload: InboundPayload): Promise<{ msgId: string; storedIn: "stream" | "spool"; duplicate: boolean }>;
  /** Publishes a reply or failure notice (e.g. of a turn crash recovery settled). @throws BusError */
  publishOutbound(payload: OutboundPayload, msgId: string): Promise<void>;
  /** Starts the `gateway` consumer on `in` and one `out-<channel>` consumer per channel. Idempotent. */
  start(): Promise<void>;
  /** Stops taking inbound messages; waits for the running handlers (their turns). */
  stopInbound(): Promise<void>;
  /** Stops the outbound consumers (after the replies of drained turns went out). */
  stopOutbound(): Promise<void>;
  /** The counters of the consumers started so far, named `<stream>/<durable>` (for metrics). */
  consumerStats(): ({ consumer: string } & ConsumerStats)[];
}

/** Builds the bus side of the channels service. */
export function createChannelBus(deps: ChannelBusDeps): ChannelBus {
  const { bus, logger } = deps;
  const owners = bus.turnOwners;
  const sendSlots = new Map(deps.channelNames.map((c) => [c, new Semaphore(deps.sendConcurrency ?? DEFAULT_SEND_CONCURRENCY)]));
  let inbound: Subscription | undefined;
  const outbound: Subscription[] = [];
  let starting: Promise<void> | undefined;

  async function publishOutbound(payload: OutboundPayload, msgId: string): Promise<void> {
    await bus.publish(outboundSubject({ channel: payload.channel, account: payload.account, peer: payload.peer }), payload, { msgId });
  }

  /** The id a message had before dead-letter replays (`<id>~r<n>`). */
  const originalId = (m: BusMessage<unknown>) => (m.headers[REPLAY_OF_HEADER] ?? m.msgId).replace(/(~r\d+)+$/, "");

  async function reply(m: BusMessage, p: InboundPayload, content: string, what: OutboundPayload["what"], presence?: TurnPresence): Promise<void> {
    const out: OutboundPayload = { v: 1, channel: p.channel, account: p.account, peer: p.peer, content, replyTo: p.platformMessageId, what };
    if (p.thread !== undefined) out.thread = p.thread;
    // The streamed message (if any) gets the final text as an edit.
    const editOf = await presence?.finish();
    if (editOf !== undefined) out.editOf = editOf;
    await publishOutbound(out, replyMsgId(m.msgId));
  }

  /**
   * A turn left open under `key` by a dead process that had parked it on an approval resumes
   * here (agent/approvals/takeover.ts) and its reply (or failure notice) is published; true when
   * so (the message is handled), false when it was not parked (the caller closes and re-runs it).
   */
  async function takeOverParked(m: BusMessage, p: InboundPayload, key: string, where: Record<string, unknown>): Promise<boolean> {
    let parked: { result: Promise<TurnResultLike> } | { heldElsewhere: string } | undefined;
    try {
      parked = await deps.resumeParked?.(key);
    } catch (err) {
      logger.warn({ ...where, key, error: errorMessage(err) }, "cannot check whether a cut turn waits for an approval; running it again");
      return false;
    }
    if (parked === undefined) return false;
    if ("heldElsewhere" in parked) {
      // Its gateway is alive (it lists the approval) and will answer the message itself.
      logger.warn({ ...where, key, approval: parked.heldElsewhere }, "bus message's turn is still parked at another live gateway; leaving it there");
      return true;
    }
    logger.warn({ ...where, key }, "turn of a bus message was left parked on an approval by another process; resuming it here");
    let result: TurnResultLike;
    try {
      result = await parked.result;
    } catch (err) {
      logger.warn({ ...where, key, error: errorMessage(err) }, "resumed turn failed; telling the peer");
      await reply(m, p, deps.failureReply(errorMessage(err)), "failure notice");
      return true;
    }
    if (!result.merged && result.text.length > 0) await reply(m, p, result.text, "reply");
    return true;
  }

  /** Handles one inbound message: returns when its outcome is persisted (the bus then acks). */
  async function handleInbound(m: BusMessage<unknown>): Promise<void> {
    const p = checkInboundPayload(m.data);
    if (typeof p === "string") {
      logger.error({ msgId: m.msgId, subject: m.subject, reason: p }, "malformed inbound message on the bus; dead-lettered");
      m.term(`malformed inbound payload: ${p}`);
      return;
    }
    const where = { channel: p.channel, account: p.account, peer: p.peer, msgId: m.msgId, attempt: m.attempt };
    if (!deps.channelNames.includes(p.channel)) {
      // Every gateway on one bus should serve the same channels; this one cannot answer it.
      logger.error(where, "bus message for a channel this gateway does not serve; dead-lettered");
      m.term(`channel "${p.channel}" is not configured on this gateway`);
      return;
    }
    let route: Route;
    try {
      route = deps.router.resolve({ channel: p.channel, account: p.account, peer: p.peer, guild: p.guild, team: p.team });
    } catch (err) {
      deps.count(p.channel, "refused");
      logger.error({ ...where, error: errorMessage(err) }, "cannot route channel message; dead-lettered");
      m.term(`cannot route: ${errorMessage(err)}`);
      return;
    }
    // A replayed dead letter has its own id (`<id>~r<n>`): a fresh turn, but its platform message
    // id is already stored under the original, so it is not passed again.
    const replay = m.headers[REPLAY_OF_HEADER] !== undefined;
    // The message's images (inline or in the object store); a read failure is retried by the bus.
    const images = p.images !== undefined && p.images.length > 0 ? await unpackImages(p.images, await deps.mediaObjects?.()) : [];
    const presence = await deps
      .presence?.(
        { channel: p.channel, account: p.account, peer: p.peer, ...(p.thread !== undefined ? { thread: p.thread } : {}), replyTo: p.platformMessageId },
        originalId(m),
        replyMsgId(originalId(m)),
      )
      .catch((err: unknown) => {
        logger.warn({ ...where, error: errorMessage(err) }, "no typing indicator or streamed reply for this turn");
        return undefined;
      });
    try {
      await runAttempts(m, p, route, replay, where, presence, images);
    } finally {
      void presence?.finish();
    }
  }

  /** The handler attempts of one routed message (see handleInbound). */
  async function runAttempts(
    m: BusMessage<unknown>,
    p: InboundPayload,
    route: Route,
    replay: boolean,
    where: Record<string, unknown>,
    presence: TurnPresence | undefined,
    images: ImageInput[],
  ): Promise<void> {
    let waitingSince: number | undefined;
    for (let n = 1; ; n++) {
      const key = attemptKey(m.msgId, n);
      let accepted = false;
      // This process's claim on the key's turn (turn-owners.ts), so another gateway that gets the
      // message redelivered while the turn still runs here waits instead of running it again. A
      // claim is only created, never overwritten: accepting a key another process journaled
      // (`onAccepted` fires for a stored message too) leaves that process's claim in place.
      let claim: Promise<boolean> | undefined;
      let result: TurnResultLike;
      try {
        result = await deps.run(
          {
            agentId: route.agentId,
            sessionKey: route.sessionKey,
            content: p.content,
            channel: p.channel,
            account: p.account,
            peer: p.peer,
            idempotencyKey: key,
            ...(p.thread !== undefined ? { thread: p.thread } : {}),
            // A group member's message carries its sender (host-written at intake, as on the direct path).
            ...(p.peerKind !== undefined && p.peerKind !== "direct" && typeof p.sender === "string" && p.sender.length > 0
              ? { sender: typeof p.senderName === "string" && p.senderName.length > 0 ? { id: p.sender, name: p.senderName } : { id: p.sender } }
              : {}),
            ...(n === 1 && !replay ? { platformMessageId: p.platformMessageId } : {}),
            ...(images.length > 0 ? { images } : {}),
          },
          {
            onAccepted: () => {
              accepted = true;
              if (owners !== undefined) claim ??= owners.claim(INBOUND_SCOPE, key);
            },
          },
          presence !== undefined ? (ev) => presence.emit(ev) : undefined,
        );
      } catch (err) {
        if (claim !== undefined) void claim.then((mine) => (mine ? owners!.release(key) : undefined));
        // Classified by the agent's failure vocabulary (agent/errors.ts; docs/reliability.md,
        // "Errors and retries"), never by code or text; `code` is for the log only.
        const raw = (err as { code?: unknown }).code;
        const code = typeof raw === "number" ? raw : undefined;
        const reason = failureReason(err);
        // Stopped by the peer's `/stop` or a client's `chat.abort`: no failure notice (the `/stop`
        // got its answer), as on the direct path (service.ts).
        if (reason === "stopped") {
          logger.info({ ...where, code }, "channel turn stopped on request; no failure notice");
          return;
        }
        if (isReplay(err)) {
          // An earlier attempt's turn failed. Retryable: go on with the next attempt's key.
          if (isTransient(err)) continue;
          // Otherwise the peer was told when it failed (or by crash recovery). Publishing the notice
          // again under the same reply id is a no-op then, and covers a process that died
          // between the failure and its notice.
          logger.info({ ...where, code, reason }, "bus message already handled (its turn had failed)");
          await reply(m, p, deps.failureReply(errorMessage(err)), "failure notice", presence);
          return;
        }
        if (isInterrupted(err)) return; // a newer message of the session took over
        if (isOrphanClaim(err) && (m.deliveryCount > 1 || m.attempt > 1)) {
          // A redelivery (we hold the partition): the process that claimed the key is gone and
          // never journaled the message. The next key (which carries no platform id) is free.
          // (The store takes such a claim over only after its claim timeout.)
          logger.warn({ ...where, key }, "a dead process claimed this message's key without journaling it; running it under the next key");
          continue;
        }
        const parked = isSessionBusy(err) && accepted ? await takeOverParked(m, p, key, where) : false;
        if (parked) return;
        if (isSessionBusy(err) && accepted && owners !== undefined && (await owners.heldElsewhere(key))) {
          // Journaled, not finished, not running here, and claimed by a gateway that is still a
          // live member: its turn is running there (the partition moved while it ran, e.g. after
          // a NATS outage longer than the lease TTL). Wait for it: asking again with the same key
          // then replays its outcome, and the reply goes out under the same reply id.
          waitingSince ??= Date.now();
          if (Date.now() - waitingSince < deps.heldElsewhereMaxWaitMs) {
            if (Date.now() - waitingSince < HELD_ELSEWHERE_POLL_MS)
              logger.info({ ...where, key }, "turn of this bus message is still running on another live gateway; waiting for its outcome");
            await sleep(HELD_ELSEWHERE_POLL_MS);
            n--;
            continue;
          }
          logger.warn(
            { ...where, key, waitedMs: Date.now() - waitingSince },
            "turn of this bus message is still claimed by another gateway past the longest turn deadline; running it again",
          );
        }
        if (isSessionBusy(err) && accepted) {
          // Journaled under this key, not finished, and not running here: the process that ran it
          // died (we hold its partition now). Unless it was parked on an approval (above), the cut turn cannot be resumed from here; the
          // message gets a fresh turn under the next key, so the peer is answered (a tool call
          // the cut turn made may run again: see docs/bus.md, limits).
          logger.warn({ ...where, key }, "turn of a bus message was left unfinished by another process; running it again");
          // Close the cut turn first, so the session log keeps no open turn (and no projection of it).
          await deps
            .closeAbandoned?.(key, ABANDONED_MESSAGE)
            .catch((e2: unknown) => logger.warn({ ...where, key, error: errorMessage(e2) }, "could not close the cut turn in the session log"));
          continue;
        }
        if (isTransient(err)) {
          if (m.attempt >= deps.maxDeliver) {
            logger.error(
              { ...where, code, reason, error: errorMessage(err) },
              "channel turn failed on its last attempt; dead-lettering the message and telling the peer",
            );
            await reply(m, p, deps.failureReply(errorMessage(err)), "failure notice", presence).catch((e2: unknown) =>
              logger.error({ ...where, error: errorMessage(e2) }, "could not publish the failure notice"),
            );
          } else {
            logger.warn({ ...where, code, reason, error: errorMessage(err) }, "channel turn failed; the bus retries it");
          }
          throw err;
        }
        // Not worth retrying (unknown agent, iteration limit, aborted): the peer is told once.
        logger.warn({ ...where, code, reason, error: errorMessage(err) }, "channel turn failed; telling the peer");
        await reply(m, p, deps.failureReply(errorMessage(err)), "failure notice", presence);
        if (!accepted && !isTurnAborted(err)) {
          deps.count(p.channel, "refused");
          m.term(`refused by the runtime (${code}): ${errorMessage(err)}`);
        }
        return;
      }
      if (claim !== undefined) void claim.then((mine) => (mine ? owners!.release(key) : undefined));
      if (result.merged || result.text.length === 0) return;
      // Also for a replayed result: a process that died between the turn's end and this publish
      // left the reply unsent; if it was sent, the id makes this publish a no-op.
      await reply(m, p, result.text, "reply", presence);
      logger.info({ ...where, agent: route.agentId, sessionKey: route.sessionKey, replayed: result.replayed === true }, "bus message handled");
      return;
    }
  }

  async function handleOutbound(m: BusMessage<unknown>): Promise<void> {
    const p = checkOutboundPayload(m.data);
    if (typeof p === "string") {
      logger.error({ msgId: m.msgId, subject: m.subject, reason: p }, "malformed outbound message on the bus; dead-lettered");
      m.term(`malformed outbound payload: ${p}`);
      return;
    }
    const slots = sendSlots.get(p.channel);
    if (slots === undefined) {
      m.term(`channel "${p.channel}" is not configured on this gateway`);
      return;
    }
    // The reply's message id is its reply id: the same on a redelivery after a crash between this
    // send and the ack, and on a replayed dead letter (`<id>~r<n>`, the original in its header).
    const replyId = (m.headers[REPLAY_OF_HEADER] ?? m.msgId).replace(/(~r\d+)+$/, "");
    try {
      await slots.run(() =>
        deps.send(p.channel, {
          account: p.account,
          peer: p.peer,
          thread: p.thread,
          content: p.content,
          replyTo: p.replyTo,
          replyId,
          ...(typeof p.editOf === "string" ? { editOf: p.editOf } : {}),
        }),
      );
    } catch (err) {
      if (deps.permanent?.(err) !== true) throw err;
      deps.count(p.channel, "sendFailures");
      logger.error(
        { channel: p.channel, msgId: m.msgId, subject: m.subject, error: errorMessage(err) },
        "channel send failed permanently; moved to the dead-letter store (not retried)",
      );
      m.term(`send failed permanently: ${errorMessage(err)}`);
      return;
    }
    if (p.what === "reply") deps.count(p.channel, "answered");
    if (typeof p.editOf === "string") deps.delivered?.(replyId.replace(/:reply$/, ""));
    logger.debug({ channel: p.channel, account: p.account, peer: p.peer, what: p.what, msgId: m.msgId }, "channel message sent");
  }

  return {
    async publishInbound(payload) {
      const msgId = inboundMsgId(payload.channel, payload.account, payload.platformMessageId);
      const ack = await bus.publish(inboundSubject({ channel: payload.channel, account: payload.account, peer: payload.peer }), payload, { msgId });
      return { msgId, storedIn: ack.storedIn, duplicate: ack.duplicate };
    },
    publishOutbound,
    consumerStats() {
      return [...(inbound ? [inbound] : []), ...outbound].map((sub) => ({ consumer: `${sub.stream}/${sub.durable}`, ...sub.stats() }));
    },
    start() {
      return (starting ??= (async () => {
        inbound = await bus.consume({
          stream: "in",
          durable: "gateway",
          handler: handleInbound,
          maxDeliver: deps.maxDeliver,
          onError: (err, m) => {
            if (m.attempt >= deps.maxDeliver)
              logger.error(
                { msgId: m.msgId, subject: m.subject, attempts: m.attempt, error: errorMessage(err) },
                "channel message moved to the dead-letter store",
              );
          },
        });
        for (const channel of deps.channelNames) {
          outbound.push(
            await bus.consume({
              stream: "out",
              durable: `out-${channel}`,
              channel,
              handler: handleOutbound,
              // Held replies wait for a send slot; the rest stay in the stream (backpressure).
              maxAckPending: OUT_MAX_ACK_PENDING,
              maxDeliver: deps.maxDeliver,
              onError: (err, m) => {
                const last = m.attempt >= deps.maxDeliver;
                if (last) deps.count(channel, "sendFailures");
                logger[last ? "error" : "warn"](
                  { channel, msgId: m.msgId, subject: m.subject, attempt: m.attempt, error: errorMessage(err) },
                  last ? "channel send failed; moved to the dead-letter store" : "channel send failed; the bus retries it",
                );
              },
            }),
          );
        }
      })());
    },
    async stopInbound() {
      await starting?.catch(() => {});
      await inbound?.stop();
    },
    async stopOutbound() {
      await starting?.catch(() => {});
      await Promise.all(outbound.map((s) => s.stop()));
    },
  };
}
