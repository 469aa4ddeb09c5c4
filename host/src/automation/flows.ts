/**
 * Durable flows (docs/automation.md, "Durable flows"): multi-step work an agent starts in a
 * conversation and comes back to when something happens — a timer, an external event posted to
 * `POST /flows/<id>/events`, or the person answering. Flows live in
 * `<stateDir>/automation/flows.json` (0600, atomic, fsync'd); a wait that resolves runs a turn in
 * the owner's session with the reason and the event's payload (idempotency key
 * `flow:<id>:<resume #>`) and sends its reply to the owner's channel peer. Every flow has a
 * horizon: past it, an unfinished flow fails and the owner is told. Timers and horizons that fell
 * due while the gateway was down fire at the next start.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { errorMessage, writeFileAtomic } from "../util/index.js";
import type { DeliveryTarget } from "./job.js";
import type { ScheduledTurn } from "./scheduler.js";

/** What a flow waits on. `event`: `secretSha256` is the per-flow secret's hash (hex). */
export type FlowWait = { on: "timer"; untilMs: number } | { on: "event"; secretSha256: string } | { on: "person" };

/** Where a flow is. */
export type FlowStatus = "running" | "waiting" | "finished" | "failed" | "cancelled";

/** One flow. Instants in ms since the epoch. */
export interface Flow {
  /** `f-<10 hex>`. */
  id: string;
  agent: string;
  /** The session that started it: only that conversation sees and changes it. */
  owner: string;
  /** Where its resumptions' replies go (absent: the owner's session is not on a messaging channel). */
  deliver?: DeliveryTarget;
  title: string;
  /** The caller's id of what the flow is about (an order number, a ticket): required, shown everywhere. */
  correlationId: string;
  status: FlowStatus;
  /** A label of the current step, set by `advance`. */
  step: string;
  /** The flow's own JSON state (at most {@link MAX_FLOW_STATE_BYTES} serialized). */
  state: unknown;
  wait?: FlowWait;
  horizonAt: number;
  createdAt: number;
  updatedAt: number;
  /** Resumptions so far (names each resumption turn's idempotency key). */
  resumes: number;
  result?: unknown;
  error?: string;
}

/** Largest serialized `state`, `result` or event payload, bytes. */
export const MAX_FLOW_STATE_BYTES = 16 * 1024;
/** Default and largest horizon, ms (7 and 30 days). */
export const DEFAULT_FLOW_HORIZON_MS = 7 * 86_400_000;
export const MAX_FLOW_HORIZON_MS = 30 * 86_400_000;
/** Flows not yet ended that one conversation may hold. */
export const MAX_ACTIVE_FLOWS_PER_SESSION = 20;

/** A refused flow operation; the message is meant for the model or the operator. */
export class FlowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlowError";
  }
}

/** Options of {@link FlowService}. */
export interface FlowServiceOptions {
  /** `<stateDir>/automation/flows.json`. */
  file: string;
  logger: Logger;
  /** Runs the resumption turn in the owner's session and resolves with its reply text. */
  runTurn(turn: ScheduledTurn): Promise<{ text: string }>;
  /** Sends a text to a flow's owner peer. */
  deliver(flow: Flow & { deliver: DeliveryTarget }, text: string): Promise<void>;
  now?: () => number;
}

const ENDED: ReadonlySet<FlowStatus> = new Set(["finished", "failed", "cancelled"]);
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The flows of one gateway (see the file comment). */
export class FlowService {
  private flows = new Map<string, Flow>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: FlowServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Where the flows of `stateDir` are kept. */
  static pathFor(stateDir: string): string {
    return path.join(stateDir, "automation", "flows.json");
  }

  /** Loads the flows and fires what fell due while down. @throws Error naming the file when it cannot be read */
  async start(): Promise<void> {
    let text: string | undefined;
    try {
      text = await readFile(this.options.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read the flows file ${this.options.file}: ${errorMessage(err)}`);
    }
    if (text !== undefined) {
      let parsed: { version?: number; flows?: Flow[] };
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch (err) {
        throw new Error(`the flows file ${this.options.file} is not valid JSON (${errorMessage(err)}); fix or remove it`);
      }
      if (parsed.version !== 1 || !Array.isArray(parsed.flows))
        throw new Error(`the flows file ${this.options.file} is not a version 1 flows file; fix or remove it`);
      this.flows = new Map(parsed.flows.map((f) => [f.id, f]));
    }
    this.arm();
  }

  /** Stops the timer and waits for resumptions in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.running]);
    await this.chain;
  }

  /** Flows, newest first; `owner` limits them to one conversation's. */
  list(owner?: string): Flow[] {
    return [...this.flows.values()].filter((f) => owner === undefined || f.owner === owner).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** One flow, or undefined. */
  get(id: string): Flow | undefined {
    return this.flows.get(id);
  }

  /**
   * Starts a flow owned by `owner`.
   * @throws FlowError for a missing title or correlation id, a bad horizon, state too large, or too many active flows
   */
  async create(o: {
    agent: string;
    owner: string;
    deliver?: DeliveryTarget;
    title: string;
    correlationId: string;
    state?: unknown;
    horizonMs?: number;
  }): Promise<Flow> {
    if (o.title.trim() === "") throw new FlowError("a flow needs a title");
    if (o.correlationId.trim() === "") throw new FlowError("a flow needs a correlation_id (what it is about: an order, a ticket, a request id)");
    const horizonMs = o.horizonMs ?? DEFAULT_FLOW_HORIZON_MS;
    if (!(horizonMs >= 1000 && horizonMs <= MAX_FLOW_HORIZON_MS)) throw new FlowError("horizon_seconds must be between 1 and 2592000 (30 days)");
    checkSize("state", o.state);
    if (this.list(o.owner).filter((f) => !ENDED.has(f.status)).length >= MAX_ACTIVE_FLOWS_PER_SESSION) {
      throw new FlowError(`this conversation already has ${MAX_ACTIVE_FLOWS_PER_SESSION} flows going; finish or cancel one first`);
    }
    const t = this.now();
    const flow: Flow = {
      id: `f-${randomBytes(5).toString("hex")}`,
      agent: o.agent,
      owner: o.owner,
      ...(o.deliver !== undefined ? { deliver: o.deliver } : {}),
      title: o.title,
      correlationId: o.correlationId,
      status: "running",
      step: "started",
      state: o.state ?? null,
      horizonAt: t + horizonMs,
      createdAt: t,
      updatedAt: t,
      resumes: 0,
    };
    this.flows.set(flow.id, flow);
    await this.persist();
    this.arm();
    return flow;
  }

  /**
   * Changes a flow of `owner` (`null` owner: the operator, any flow).
   * @throws FlowError for an unknown flow (or another conversation's), an ended one, or a bad change
   */
  async update(
    id: string,
    owner: string | null,
    change: { step?: string; state?: unknown; wait?: FlowWait | null; status?: FlowStatus; result?: unknown; error?: string },
  ): Promise<Flow> {
    const flow = this.flows.get(id);
    if (flow === undefined || (owner !== null && flow.owner !== owner)) throw new FlowError(`no flow ${JSON.stringify(id)} in this conversation`);
    if (ENDED.has(flow.status)) throw new FlowError(`flow ${id} has ended (${flow.status})`);
    if (change.state !== undefined) checkSize("state", change.state);
    if (change.result !== undefined) checkSize("result", change.result);
    if (change.wait?.on === "timer" && change.wait.untilMs > flow.horizonAt) {
      throw new FlowError(`the wait ends after the flow's horizon (${new Date(flow.horizonAt).toISOString()})`);
    }
    if (change.step !== undefined) flow.step = change.step;
    if (change.state !== undefined) flow.state = change.state;
    if (change.result !== undefined) flow.result = change.result;
    if (change.error !== undefined) flow.error = change.error;
    if (change.wait === null) delete flow.wait;
    else if (change.wait !== undefined) flow.wait = change.wait;
    if (change.status !== undefined) flow.status = change.status;
    if (ENDED.has(flow.status)) delete flow.wait;
    flow.updatedAt = this.now();
    await this.persist();
    this.arm();
    return flow;
  }

  /** Makes `id` wait for an external event; returns the per-flow secret (shown once, stored hashed). */
  async waitForEvent(id: string, owner: string): Promise<{ flow: Flow; secret: string }> {
    const secret = randomBytes(24).toString("hex");
    const flow = await this.update(id, owner, { status: "waiting", wait: { on: "event", secretSha256: sha256(secret) } });
    return { flow, secret };
  }

  /**
   * Whether `secret` is the per-flow secret of a flow waiting for an event (constant-time compare).
   */
  secretMatches(id: string, secret: string): boolean {
    const wait = this.flows.get(id)?.wait;
    if (wait?.on !== "event") return false;
    const a = Buffer.from(sha256(secret), "hex");
    const b = Buffer.from(wait.secretSha256, "hex");
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * Delivers an external event: the flow must be waiting for one; it resumes (a turn with the
   * payload) in the background.
   * @throws FlowError when no such flow waits for an event, or the payload is too large
   */
  async postEvent(id: string, payload: unknown): Promise<Flow> {
    const flow = this.flows.get(id);
    if (flow === undefined || flow.wait?.on !== "event") throw new FlowError(`flow ${id} is not waiting for an event`);
    checkSize("payload", payload);
    await this.update(id, null, { status: "running", wait: null });
    this.resume(flow, "an external event", payload);
    return flow;
  }

  /** Resumes a waiting flow now (operator: `exoclaw flow resume`). @throws FlowError when it is not waiting */
  async resumeNow(id: string): Promise<Flow> {
    const flow = this.flows.get(id);
    if (flow === undefined || flow.status !== "waiting") throw new FlowError(`flow ${id} is not waiting`);
    await this.update(id, null, { status: "running", wait: null });
    this.resume(flow, "the operator", null);
    return flow;
  }

  private resume(flow: Flow, reason: string, payload: unknown): void {
    const n = ++flow.resumes;
    const content =
      `[flow ${flow.id} "${flow.title}" (correlation id ${flow.correlationId}, step ${flow.step}) resumed by ${reason}]` +
      (payload === null || payload === undefined ? "" : `\nEvent payload: ${JSON.stringify(payload)}`);
    const run = (async () => {
      await this.persist();
      const result = await this.options.runTurn({
        agentId: flow.agent,
        sessionKey: flow.owner,
        content,
        idempotencyKey: `flow:${flow.id}:${n}`,
        channel: "flow",
        account: "default",
        peer: flow.id,
      });
      if (flow.deliver !== undefined && result.text.trim() !== "") await this.options.deliver(flow as Flow & { deliver: DeliveryTarget }, result.text);
    })()
      .catch((err: unknown) => this.options.logger.warn({ flow: flow.id, error: errorMessage(err) }, "flow resumption failed"))
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    let earliest = Infinity;
    for (const f of this.flows.values()) {
      if (ENDED.has(f.status)) continue;
      earliest = Math.min(earliest, f.horizonAt, f.wait?.on === "timer" ? f.wait.untilMs : Infinity);
    }
    if (earliest === Infinity) return;
    this.timer = setTimeout(() => void this.tick(), Math.min(Math.max(0, earliest - this.now()), 2_147_000_000));
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    const t = this.now();
    for (const f of [...this.flows.values()]) {
      if (ENDED.has(f.status)) continue;
      if (f.horizonAt <= t) {
        await this.update(f.id, null, { status: "failed", error: `past its horizon (${new Date(f.horizonAt).toISOString()}) without finishing` }).catch(
          () => {},
        );
        this.options.logger.warn({ flow: f.id, correlationId: f.correlationId }, "flow failed: past its horizon");
        if (f.deliver !== undefined) {
          const text = `Flow "${f.title}" (${f.correlationId}) failed: it did not finish before its horizon, ${new Date(f.horizonAt).toISOString()}.`;
          await this.options
            .deliver(f as Flow & { deliver: DeliveryTarget }, text)
            .catch((err: unknown) => this.options.logger.warn({ flow: f.id, error: errorMessage(err) }, "cannot tell the owner a flow failed"));
        }
      } else if (f.wait?.on === "timer" && f.wait.untilMs <= t) {
        await this.update(f.id, null, { status: "running", wait: null });
        this.resume(f, "its timer", null);
      }
    }
    this.arm();
  }

  private persist(): Promise<void> {
    const text = `${JSON.stringify({ version: 1, flows: [...this.flows.values()] }, null, 1)}\n`;
    const next = this.chain.then(() => writeFileAtomic(this.options.file, text));
    this.chain = next.catch(() => {});
    return next;
  }
}

function checkSize(what: string, value: unknown): void {
  if (value === undefined) return;
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
  if (bytes > MAX_FLOW_STATE_BYTES) throw new FlowError(`${what} is ${bytes} bytes serialized; at most ${MAX_FLOW_STATE_BYTES}`);
}
