/**
 * Which member consumes which partition: {@link assignPartitions}, a pure function every process
 * evaluates over the same member set (the live member keys of the lease bucket, see
 * subscription.ts) and so agrees on without talking to the others.
 */

/** FNV-1a-32 with a murmur3 finaliser, so that similar `member/partition` strings spread. */
function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix) so similar inputs spread
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Owners of partitions `0..partitions-1` among `members`: rendezvous hashing with bounded loads,
 * so every member computes the same answer from the same member set and loads differ by at most
 * one (each member gets floor or ceil of partitions / members; the ceil quotas go to the members
 * first in id order). Plain rendezvous hashing can leave a member with nothing (12 partitions over
 * 3 members: about 2% of member sets), which is a gateway doing no inbound work.
 * @returns one member id per partition; empty with no members
 */
export function assignPartitions(partitions: number, members: readonly string[]): string[] {
  if (members.length === 0) return [];
  const sorted = [...members].sort();
  const base = Math.floor(partitions / sorted.length);
  const extra = partitions % sorted.length;
  const room = new Map(sorted.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const owners: string[] = [];
  for (let k = 0; k < partitions; k++) {
    const ranked = sorted.map((m) => ({ m, score: fnv(`${m}/${k}`) })).sort((a, b) => b.score - a.score || (a.m < b.m ? -1 : 1));
    const owner = ranked.find((r) => room.get(r.m)! > 0)!.m;
    room.set(owner, room.get(owner)! - 1);
    owners.push(owner);
  }
  return owners;
}
