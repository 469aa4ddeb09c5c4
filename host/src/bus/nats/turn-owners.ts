/**
 * Which live process is running a bus message's turn ({@link NatsTurnOwners}), so a redelivery
 * that reaches another process while the first one is still running the turn waits for it instead
 * of running the turn a second time (issue 21, finding 6: the lease of a partition can move while
 * its holder is alive, e.g. after a NATS outage longer than the lease TTL during which the member
 * set changed; docs/bus.md, "Through a NATS outage").
 *
 * A claim is one KV entry `turn.<sha256 hex of the key>` in the dedupe bucket (24 h TTL; the
 * dedupe keys are base64url and never hold a dot, so the two cannot collide) whose value names the
 * claimer's member key in the lease bucket (`<stream>.<durable>.m.<instance id>`, renewed by
 * subscription.ts each tick, gone a lease TTL after the process died or was cut off). A claim is
 * held elsewhere while that entry exists, names another instance, and its member key is live —
 * or could still come back: within a lease TTL of this process (re)connecting, an absent member
 * key may have expired during the outage (see `heldElsewhere`).
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { TurnOwnerScope, TurnOwners } from "../types.js";

/** The parts of the NATS bus {@link NatsTurnOwners} reads (valid while connected). */
export interface TurnOwnersBus {
  readonly instanceId: string;
  /** The dedupe bucket (24 h TTL), undefined while NATS is not ready. */
  readonly dedupeKv: KV | undefined;
  /** The lease bucket holding the member keys, undefined while NATS is not ready. */
  readonly leases: KV | undefined;
  /** Member keys live this long after their last renewal, ms. */
  readonly leaseTtlMs: number;
  /** When this process's connection last became ready, ms since the epoch. */
  readonly readySince: number;
}

interface Claim {
  /** The claimer's member key in the lease bucket. */
  m: string;
  /** The claimer's instance id. */
  i: string;
}

/** {@link TurnOwners} over the NATS bus's KV buckets. */
export class NatsTurnOwners implements TurnOwners {
  constructor(private readonly bus: TurnOwnersBus) {}

  private static key(k: string): string {
    return `turn.${createHash("sha256").update(k).digest("hex")}`;
  }

  async claim(scope: TurnOwnerScope, key: string): Promise<boolean> {
    const kv = this.bus.dedupeKv;
    if (kv === undefined) return false;
    const claim: Claim = { m: `${scope.stream}.${scope.durable}.m.${this.bus.instanceId}`, i: this.bus.instanceId };
    try {
      await kv.create(NatsTurnOwners.key(key), JSON.stringify(claim));
      return true;
    } catch {
      return false; // held by another process (or NATS unreachable)
    }
  }

  async release(key: string): Promise<void> {
    const kv = this.bus.dedupeKv;
    if (kv === undefined) return;
    await kv.delete(NatsTurnOwners.key(key)).catch(() => {});
  }

  /**
   * Whether another live process holds `key`'s claim. Not connected (NATS down: a spooled
   * delivery), false, as without a record. Connected but a KV read fails (as right after a
   * restart while JetStream recovers its streams, or a read timing out under load): true, the
   * caller waits a poll and asks again, within its bounded wait, rather than run a turn that may
   * be running elsewhere a second time on an error (docs/bus.md, "Through a NATS outage").
   */
  async heldElsewhere(key: string): Promise<boolean> {
    const kv = this.bus.dedupeKv;
    const leases = this.bus.leases;
    if (kv === undefined || leases === undefined) return false;
    try {
      const e = await kv.get(NatsTurnOwners.key(key));
      if (e === null || e.operation !== "PUT") return false;
      const claim = JSON.parse(e.string()) as Partial<Claim>;
      if (typeof claim.m !== "string" || typeof claim.i !== "string" || claim.i === this.bus.instanceId) return false;
      const member = await leases.get(claim.m);
      if (member !== null && member.operation === "PUT") return true;
      // Absent. After an outage longer than the lease TTL every member key expired, and a live
      // member writes its own again only at its next tick after reconnecting: until a lease TTL
      // has passed since we are connected, absent is not yet proof of a dead claimer.
      return Date.now() - this.bus.readySince < this.bus.leaseTtlMs;
    } catch {
      return true; // cannot tell: ask again after the caller's poll
    }
  }
}
