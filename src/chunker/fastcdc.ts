import { createHash } from 'node:crypto';
import { gear } from '../native/gear.js';

/**
 * FastCDC 2020 ("rolling two bytes each time"). Without a key it is bit-exact with the
 * `fastcdc` crate's `v2020` module: same gear table, masks and cut positions, so chunk
 * boundaries agree with that reference (and its vectors) for any parameters it accepts. With a
 * key (a repository's chunker) the gear table is keyed and each cut passes a keyed PRF as well
 * (docs/FORMAT.md §9), so that boundaries seen, even with the table, predict no others.
 */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
  /** Normalization level 0..3: how strongly chunk sizes are pulled towards `avg`. Default 1. */
  normalization?: number;
  /** 32 secret bytes: the first 16 key the gear table, the last 16 the PRF of the cut test. */
  key?: Uint8Array;
}

export type ChunkerSizes = Readonly<Required<Omit<ChunkerParams, 'key'>>>;

/** Mask per bit count, index 0 = 5 bits. */
const MASKS = [
  0x1804110, 0x1803110, 0x18035100, 0x1800035300, 0x19000353000, 0x590003530000,
  0xd90003530000, 0xd90103530000, 0xd90303530000, 0xd90313530000, 0xd90f03530000,
  0xd90303537000, 0xd90703537000, 0xd90707537000, 0xd91707537000, 0xd91747537000,
  0xd91767537000, 0xd93767537000, 0xd93777537000, 0xd93777577000, 0xdb3777577000,
];
const MASK_BITS_MIN = 5;
const MASK_BITS_MAX = MASK_BITS_MIN + MASKS.length - 1;

const KEY_BYTES = 32;
const SIP_KEY_BYTES = 16;
/**
 * A keyed chunker's candidates pass a prefilter of at most 10 bits and the PRF decides the rest
 * of each mask's bits, at least 4 of them, so that even one who knows the gear table (and so the
 * candidates) cannot tell which candidate cuts. Each candidate costs ~50 cycles, mostly its
 * mispredicted branch (a multiply in SipHash's place cost nearly as much): with 8 bits the
 * search ran ~20% slower than without a key, with 10 bits ~3% (C microbenchmark, 2^20 avg).
 */
const PREFILTER_BITS_MAX = 10;
const PRF_BITS_MIN = 4;

const MIN_MIN = 64;
// Keeps every in-chunk offset a non-negative int32, which the `>>> 1` arithmetic in cut and
// the native search's uint32 positions rely on.
const MAX_MAX = 2 ** 30;
const LEVEL_MAX = 3;

/** GEAR[i] = first 8 bytes (big-endian) of MD5 of 64 bytes all equal to i. */
const GEAR = Array.from({ length: 256 }, (_, i) => createHash('md5').update(Buffer.alloc(64, i)).digest().readBigUInt64BE(0));

function checkParams(p: ChunkerParams): ChunkerSizes {
  const { min, avg, max } = p;
  const normalization = p.normalization ?? 1;
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
  if (p.key !== undefined && !(p.key instanceof Uint8Array && p.key.length === KEY_BYTES)) {
    throw new RangeError(`FastCDC: key must be ${KEY_BYTES} bytes`);
  }
  return Object.freeze({ min, avg, max, normalization });
}

/*
 * The native search's table (gear-search.h): the gear table G, the candidate masks before and
 * after avg, the PRF masks before and after avg, and the PRF key as two little-endian words.
 */

/** The reference's: G from MD5, its masks as candidates, and PRF masks of 0 (every candidate cuts). */
function referenceTable(bitsS: number, bitsL: number): BigUint64Array {
  const mask = (bits: number) => BigInt(MASKS[bits - MASK_BITS_MIN]!);
  return BigUint64Array.from([...GEAR, mask(bitsS), mask(bitsL), 0n, 0n, 0n, 0n]);
}

/**
 * G[i] = SipHash-2-4(key[0..16), the byte i); candidates have the prefilter's top bits of H
 * clear (they depend on the last 57..64 bytes, as the search's window should); a candidate cuts
 * when the low bits left of SipHash-2-4(key[16..32), H as 8 bytes LE) are clear.
 */
function keyedTable(key: Uint8Array, bitsS: number, bitsL: number): BigUint64Array {
  const tableKey = key.subarray(0, SIP_KEY_BYTES);
  const prfKey = new DataView(key.buffer, key.byteOffset + SIP_KEY_BYTES, SIP_KEY_BYTES);
  const g = Array.from({ length: 256 }, (_, i) => gear.sipHash24(tableKey, Uint8Array.of(i)));
  const prefilterBits = Math.min(PREFILTER_BITS_MAX, bitsL - PRF_BITS_MIN);
  const prefilter = ((1n << BigInt(prefilterBits)) - 1n) << BigInt(64 - prefilterBits);
  const prf = (bits: number) => (1n << BigInt(bits - prefilterBits)) - 1n;
  return BigUint64Array.from([...g, prefilter, prefilter, prf(bitsS), prf(bitsL), prfKey.getBigUint64(0, true), prfKey.getBigUint64(8, true)]);
}

export class FastCDC {
  readonly params: ChunkerSizes;
  readonly #table: BigUint64Array;

  constructor(params: ChunkerParams) {
    this.params = checkParams(params);
    const { avg, normalization } = this.params;
    const bits = Math.round(Math.log2(avg));
    const [bitsS, bitsL] = [bits + normalization, bits - normalization];
    this.#table = params.key ? keyedTable(params.key, bitsS, bitsL) : referenceTable(bitsS, bitsL);
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
   * H & mask === 0: the native loop (src/native/gear-search.h) rolls H one byte at a time.
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
}

/** Convenience for tests/small inputs: all [offset, length] pairs of a whole buffer. */
export function* chunkBuffer(chunker: FastCDC, buf: Uint8Array): Generator<[number, number]> {
  for (let offset = 0; offset < buf.length; ) {
    const length = chunker.cut(buf, offset, buf.length);
    yield [offset, length];
    offset += length;
  }
}
