import { createHash } from 'node:crypto';
import { gear } from '../native/gear.js';

/**
 * FastCDC 2020 ("rolling two bytes each time"), bit-exact with the `fastcdc` crate's `v2020`
 * module: same gear table, masks, seeding and cut positions, so chunk boundaries (and hence
 * deduplication) agree with that reference for any parameters it accepts.
 */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
  /** Normalization level 0..3: how strongly chunk sizes are pulled towards `avg`. Default 1. */
  normalization?: number;
  /** 64-bit unsigned seed XORed into the gear table, so that boundaries are hard to predict
   *  without it. Only bits 0..47 can matter: no mask has a bit above 47, and carries only move
   *  upwards (the reference behaves the same). Default 0n (the unseeded reference table). */
  seed?: bigint;
}

/** Mask per bit count, index 0 = 5 bits (none has a bit above 47, see the seed). */
const MASKS = [
  0x1804110, 0x1803110, 0x18035100, 0x1800035300, 0x19000353000, 0x590003530000,
  0xd90003530000, 0xd90103530000, 0xd90303530000, 0xd90313530000, 0xd90f03530000,
  0xd90303537000, 0xd90703537000, 0xd90707537000, 0xd91707537000, 0xd91747537000,
  0xd91767537000, 0xd93767537000, 0xd93777537000, 0xd93777577000, 0xdb3777577000,
];
const MASK_BITS_MIN = 5;
const MASK_BITS_MAX = MASK_BITS_MIN + MASKS.length - 1;

const MIN_MIN = 64;
// Keeps every in-chunk offset a non-negative int32, which the `>>> 1` arithmetic in cut and
// the native search's uint32 positions rely on.
const MAX_MAX = 2 ** 30;
const LEVEL_MAX = 3;
const U64_LIMIT = 1n << 64n;

/** GEAR[i] = first 8 bytes (big-endian) of MD5 of 64 bytes all equal to i. */
const GEAR = Array.from({ length: 256 }, (_, i) => createHash('md5').update(Buffer.alloc(64, i)).digest().readBigUInt64BE(0));
const U64_MASK = U64_LIMIT - 1n;

function checkParams(p: ChunkerParams): Required<ChunkerParams> {
  const { min, avg, max } = p;
  const normalization = p.normalization ?? 1;
  const seed = p.seed ?? 0n;
  for (const [name, v] of [['min', min], ['avg', avg], ['max', max]] as const) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`FastCDC: ${name} must be an integer, got ${v}`);
  }
  if (!(min < avg && avg < max)) {
    throw new RangeError(`FastCDC: need min < avg < max, got min=${min} avg=${avg} max=${max}`);
  }
  if (min < MIN_MIN) throw new RangeError(`FastCDC: min must be at least ${MIN_MIN}, got ${min}`);
  if (max > MAX_MAX) throw new RangeError(`FastCDC: max must be at most ${MAX_MAX}, got ${max}`);
  if (!Number.isInteger(normalization) || normalization < 0 || normalization > LEVEL_MAX) {
    throw new RangeError(`FastCDC: normalization must be an integer 0..${LEVEL_MAX}, got ${normalization}`);
  }
  const bits = Math.round(Math.log2(avg));
  if (bits - normalization < MASK_BITS_MIN || bits + normalization > MASK_BITS_MAX) {
    throw new RangeError(
      `FastCDC: avg=${avg} with normalization ${normalization} needs masks of ` +
        `${bits - normalization}..${bits + normalization} bits; only ${MASK_BITS_MIN}..${MASK_BITS_MAX} exist`,
    );
  }
  if (typeof seed !== 'bigint' || seed < 0n || seed >= U64_LIMIT) {
    throw new RangeError(`FastCDC: seed must be a bigint in [0, 2^64), got ${String(seed)}`);
  }
  return Object.freeze({ min, avg, max, normalization, seed });
}

export class FastCDC {
  readonly params: Required<ChunkerParams>;
  /** The seeded gear table G, then the masks before and after avg: what the native search needs. */
  readonly #table = new BigUint64Array(258);

  constructor(params: ChunkerParams) {
    this.params = checkParams(params);
    const { avg, normalization, seed } = this.params;
    for (let i = 0; i < 256; i++) this.#table[i] = GEAR[i]! ^ seed;
    const bits = Math.round(Math.log2(avg));
    this.#table[256] = BigInt(MASKS[bits + normalization - MASK_BITS_MIN]!);
    this.#table[257] = BigInt(MASKS[bits - normalization - MASK_BITS_MIN]!);
  }

  /** The table the native search takes (gear.c, pipeline.c): read-only by contract. */
  get table(): BigUint64Array {
    return this.#table;
  }

  /**
   * Length of the chunk that starts at buf[start], looking at no byte at or past `end`.
   * The caller guarantees end - start >= max unless the input ends at `end`.
   *
   * The reference alternates `hash = (hash << 2) + (G[b] << 1)`, testing `mask << 1`, with
   * `hash = hash + G[b]`, testing `mask`. After an odd step its state is the per-byte gear hash
   * H = sum G[buf[j]] << (p - j) (mod 2^64) and after an even step 2H, so every step tests
   * H & mask === 0: the native loop (src/native/gear.c) rolls H one byte at a time.
   */
  cut(buf: Uint8Array, start: number, end: number): number {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= buf.length)) {
      throw new RangeError(`FastCDC.cut: need 0 <= start <= end <= ${buf.length}, got start=${start} end=${end}`);
    }
    const { min, avg, max } = this.params;
    const remaining = end - start;
    if (remaining <= min) return remaining;
    const window = remaining > max ? max : remaining;
    const center = window < avg ? window : avg;
    // The reference hashes whole byte pairs: from min, to center (then window) rounded down to even.
    const p = gear.gearCut(this.#table, buf, start, (min >>> 1) << 1, (center >>> 1) << 1, (window >>> 1) << 1);
    return p < 0 ? window : p;
  }

  /** Same search as cut, also returning the 64-bit gear hash at the cut as the reference does. */
  cutWithHash(buf: Uint8Array, start: number, end: number): { length: number; hash: bigint } {
    const length = this.cut(buf, start, end);
    const { min, max } = this.params;
    const window = Math.min(end - start, max);
    if (window <= min) return { length, hash: 0n };
    const hashStart = start + ((min >>> 1) << 1);
    // At a cut the reference state is H, or 2H after an even step (see cut); without one it is
    // the state after the last byte hashed, which for an odd window is not the last byte.
    const last = length < window ? start + length : start + ((window >>> 1) << 1) - 1;
    let h = 0n;
    for (let j = Math.max(hashStart, last - 63); j <= last; j++) h = ((h << 1n) + this.#table[buf[j]!]!) & U64_MASK;
    if (((last - start) & 1) === 0) h = (h << 1n) & U64_MASK;
    return { length, hash: h };
  }
}

/** Convenience for tests/small inputs: all [offset, length] pairs of a whole buffer. */
export function* chunkBuffer(chunker: FastCDC, buf: Uint8Array): Generator<[number, number]> {
  for (let offset = 0; offset < buf.length; ) {
    const length = chunker.cut(buf, offset, buf.length);
    yield [offset, length];
    offset += length;
  }
}
