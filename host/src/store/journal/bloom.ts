import { crc32 } from "node:zlib";

/**
 * A Bloom filter over strings: `mightHave` is false only for a string never added (no false
 * negatives); true may be a false positive (~1 % at 870,000 strings with the default size, more
 * beyond). The journal uses it so an append whose dedupe keys were never stored needs no lookup.
 */
export class BloomFilter {
  private readonly bits: Uint8Array;
  private readonly mask: number;

  /**
   * @param log2Bits the filter holds 2^log2Bits bits (default 23: 1 MiB)
   * @param hashes bit positions per string (default 7)
   */
  constructor(
    log2Bits = 23,
    private readonly hashes = 7,
    bits?: Uint8Array,
  ) {
    if (bits !== undefined && bits.length !== 2 ** log2Bits / 8)
      throw new RangeError(`a Bloom filter of 2^${log2Bits} bits needs ${2 ** log2Bits / 8} bytes, not ${bits.length}`);
    this.bits = bits ?? new Uint8Array(2 ** log2Bits / 8);
    this.mask = 2 ** log2Bits - 1;
  }

  /** The filter's bits (shared, not copied: for writing the journal's checkpoint). */
  bytes(): Uint8Array {
    return this.bits;
  }

  /** Bit positions per string (what a filter read back from {@link bytes} must be built with). */
  get hashCount(): number {
    return this.hashes;
  }

  /** Adds a string. */
  add(s: string): void {
    const [h1, h2] = hashPair(s);
    for (let i = 0; i < this.hashes; i++) {
      const b = (h1 + Math.imul(i, h2)) & this.mask;
      this.bits[b >>> 3]! |= 1 << (b & 7);
    }
  }

  /** False when `s` was certainly never added. */
  mightHave(s: string): boolean {
    const [h1, h2] = hashPair(s);
    for (let i = 0; i < this.hashes; i++) {
      const b = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.bits[b >>> 3]! & (1 << (b & 7))) === 0) return false;
    }
    return true;
  }
}

/** Two independent 32-bit hashes (CRC-32 and FNV-1a) for double hashing. */
function hashPair(s: string): [number, number] {
  let fnv = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    fnv ^= s.charCodeAt(i);
    fnv = Math.imul(fnv, 0x01000193);
  }
  return [crc32(s) >>> 0, (fnv >>> 0) | 1];
}
