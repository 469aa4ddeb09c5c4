// Turn claims across gateways (bus/nats/turn-owners.ts) on a real nats-server, with separate bus
// connections standing for separate gateways: a claim is held elsewhere while its claimer is a
// live member of the inbound consumer; a second claim never overwrites the first; a released
// claim, or one whose claimer stopped (member key gone) once a lease TTL has passed since this
// process connected, is not held; the claimer itself never sees its own claim as held elsewhere;
// a claim whose read fails while connected counts as held (wait and ask again, not run twice).
import { describe, expect, it } from "vitest";
import type { NatsBus } from "../../host/src/bus/nats/index.js";
import type { Subscription } from "../../host/src/bus/index.js";
import { natsBuses } from "../support/nats-buses.js";

const nats = natsBuses("exoclaw-owners-");
const scope = { stream: "in" as const, durable: "gateway" };
const bus = (id: string) => nats.bus(id);

/** Joins `b` to the inbound consumer's member set (its member key is renewed each tick). */
async function join_(b: NatsBus): Promise<Subscription> {
  const sub = await b.consume({ ...scope, handler: async () => {} });
  const end = Date.now() + 10_000;
  while ((await b.leases!.get(`in.gateway.m.${b.instanceId}`))?.operation !== "PUT") {
    if (Date.now() > end) throw new Error("member key never written");
    await new Promise((r) => setTimeout(r, 50));
  }
  return sub;
}

describe("turn claims (NATS KV)", () => {
  it("held elsewhere while the claimer is a live member; never overwritten; released or stopped: not held", async () => {
    const a = await bus("owner-a");
    const b = await bus("owner-b");
    const subA = await join_(a);
    const key = "webhook:default:peer1:msg-1";

    expect(await b.turnOwners.heldElsewhere(key)).toBe(false); // nobody claimed it
    expect(await a.turnOwners.claim(scope, key)).toBe(true);
    expect(await b.turnOwners.heldElsewhere(key)).toBe(true);
    expect(await a.turnOwners.heldElsewhere(key)).toBe(false); // its own claim
    expect(await b.turnOwners.claim(scope, key)).toBe(false); // accepting a stored key keeps A's claim
    expect(await b.turnOwners.heldElsewhere(key)).toBe(true);

    await a.turnOwners.release(key);
    expect(await b.turnOwners.heldElsewhere(key)).toBe(false);

    // a claimer that stops (its member key deleted) no longer holds its claim
    const other = "webhook:default:peer2:msg-7";
    expect(await a.turnOwners.claim(scope, other)).toBe(true);
    expect(await b.turnOwners.heldElsewhere(other)).toBe(true);
    await subA.stop();
    // Within a lease TTL of B connecting, an absent member key may be one that expired during an
    // outage and comes back with its member's next tick: still presumed held.
    const sinceReady = Date.now() - b.readySince;
    if (sinceReady < b.leaseTtlMs) {
      expect(await b.turnOwners.heldElsewhere(other)).toBe(true);
      await new Promise((r) => setTimeout(r, b.leaseTtlMs - sinceReady + 50));
    }
    expect(await b.turnOwners.heldElsewhere(other)).toBe(false);
  }, 60_000);

  it("a claim that cannot be read while connected counts as held (the caller waits and asks again), not run a second time", async () => {
    const a = await bus("owner-c");
    const b = await bus("owner-d");
    await join_(a);
    const key = "webhook:default:peer3:msg-2";
    expect(await a.turnOwners.claim(scope, key)).toBe(true);
    expect(await b.turnOwners.heldElsewhere(key)).toBe(true);
    // The dedupe bucket's stream goes away under B (a read then fails on the server, B still
    // connected): before, this answered false and the turn ran again.
    await a.dedupeKv!.destroy();
    expect(await b.turnOwners.heldElsewhere(key)).toBe(true);
  }, 60_000);
});
