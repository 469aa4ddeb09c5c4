/**
 * Exactly one run per slot across a cluster. With `[bus]`, every gateway schedules the same
 * config jobs; before running a slot, each publishes a `scheduled_run` event with the message id
 * `<kind>:<job>:<slot>` on the agent's events subject. JetStream keeps one message per id within
 * the stream's duplicate window (10 min, bus/nats/infra.ts), so exactly one publish is stored as
 * new and the others come back `duplicate`: that gateway runs the slot, the others skip it.
 * Gateways' clocks must agree within the window (they agree within seconds under NTP).
 */
import { eventsSubject, type Bus } from "../bus/index.js";
import type { Job } from "./job.js";
import { runKey } from "./job.js";

/** Decides whether this process runs a slot. */
export interface RunClaim {
  /**
   * @returns true when this process owns the slot (and must run it), false when another did
   * @throws Error when ownership cannot be decided (NATS unreachable): the slot is not run here
   */
  claim(job: Job, slot: number): Promise<boolean>;
}

/** A single gateway owns every slot. */
export const LOCAL_CLAIM: RunClaim = { claim: async () => true };

/** The cluster claim over the bus (see the file comment). */
export function busClaim(bus: Bus): RunClaim {
  return {
    async claim(job, slot) {
      // Never spooled: a spooled publish cannot tell whether another gateway claimed the slot.
      const ack = await bus.publish(
        eventsSubject(job.agent),
        { type: "scheduled_run", job: job.id, kind: job.kind, slot, at: Date.now() },
        { msgId: runKey(job, slot), spool: false },
      );
      return !ack.duplicate;
    },
  };
}
