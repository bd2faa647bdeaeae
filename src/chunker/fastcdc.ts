import { createHash } from 'node:crypto';

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

/** Mask per bit count, index 0 = 5 bits; none has a bit above 47 (cut relies on it). */
const MASKS = [
  0x1804110, 0x1803110, 0x18035100, 0x1800035300, 0x19000353000, 0x590003530000,
  0xd90003530000, 0xd90103530000, 0xd90303530000, 0xd90313530000, 0xd90f03530000,
  0xd90303537000, 0xd90703537000, 0xd90707537000, 0xd91707537000, 0xd91747537000,
  0xd91767537000, 0xd93767537000, 0xd93777537000, 0xd93777577000, 0xdb3777577000,
];
const MASK_BITS_MIN = 5;
const MASK_BITS_MAX = MASK_BITS_MIN + MASKS.length - 1;

const MIN_MIN = 64;
// Keeps every in-chunk offset a non-negative int32 with room to spare, which the `>>> 1`
// arithmetic in cut and the `| 0` index arithmetic in scan rely on.
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

/**
 * Bits 16..47 of the per-byte gear hash H after buf[p] (see FastCDC.cut), given `lo` = H mod 2^32
 * from the rolling loop. No mask has a bit above 47, so together with `lo` this decides a cut.
 * Bits 32..47 depend on the last 48 bytes and on carries out of the low word, which the rolling
 * loop does not track. Rebuilding H in two words with carries over the last 64 bytes took
 * ~460 ns a candidate, and avg 64K meets a candidate every ~190 bytes; this needs one
 * single-word roll (shift, add) per byte over 48 bytes, ~50 ns:
 *
 *   H = 2^16 H' + 2^16 W + V, where H' is H sixteen bytes earlier, W = sum over the last 16 bytes
 *   of (G >> 16) << k and V = sum of (G mod 2^16) << k (k = distance from p, so V < 2^32).
 *
 * Mod 2^48 that is 2^16 s + V with s = (H' + W) mod 2^32, so bits 16..47 of H are s + (V >>> 16).
 * H' mod 2^32 and W mod 2^32 are plain 32-bit rolls (which depend only on their last 32 bytes),
 * and V >>> 16 (< 2^16) need not be computed: the low 16 bits of the sum are bits 16..31 of H,
 * which `lo` gives, so V >>> 16 = ((lo >>> 16) - s) mod 2^16.
 *
 * Positions are int32 (see scan), so `(j + k) | 0` is exact; it spares V8 an overflow check.
 */
function midWord(buf: Uint8Array, hashStart: number, p: number, lo: number, gLo: Int32Array, gMid: Int32Array): number {
  let older = 0;
  let w = 0;
  const q = p - 47;
  if (q >= hashStart) {
    // The usual case, as three independent 16-byte rolls, four bytes a step: two plain loops
    // cost about twice as much, which shows when a mask's low word has few bits (a candidate
    // every 64 bytes). The 32-byte roll H' is split into halves a and b, H' = (a << 16) + b.
    let a = 0;
    for (let j = q; j < q + 16; j = (j + 4) | 0) {
      a = ((a << 4) + (gLo[buf[j]] << 3) + (gLo[buf[(j + 1) | 0]] << 2) + (gLo[buf[(j + 2) | 0]] << 1) + gLo[buf[(j + 3) | 0]]) | 0;
      older = ((older << 4) + (gLo[buf[(j + 16) | 0]] << 3) + (gLo[buf[(j + 17) | 0]] << 2) + (gLo[buf[(j + 18) | 0]] << 1) + gLo[buf[(j + 19) | 0]]) | 0;
      w = ((w << 4) + (gMid[buf[(j + 32) | 0]] << 3) + (gMid[buf[(j + 33) | 0]] << 2) + (gMid[buf[(j + 34) | 0]] << 1) + gMid[buf[(j + 35) | 0]]) | 0;
    }
    older = ((a << 16) + older) | 0;
  } else {
    // Near the start of the hashed range, where H covers fewer than 48 bytes.
    for (let j = hashStart; j <= p - 16; j++) older = ((older << 1) + gLo[buf[j]]) | 0;
    for (let j = p - 15 > hashStart ? p - 15 : hashStart; j <= p; j++) w = ((w << 1) + gMid[buf[j]]) | 0;
  }
  const s = (older + w) | 0;
  return (s + (((lo >>> 16) - s) & 0xffff)) | 0;
}

/**
 * The search loop of FastCDC.cut over buf[p..stop) with mask low word `m` and bits 16..47
 * `mMid`, continuing from hash word `rolled[0]`; returns the position of the cut byte, or -1
 * with the hash word left in `rolled[0]` for the next phase. `buf` is always a plain Uint8Array
 * (never a Buffer), so that V8 sees one receiver class here, and positions are below 2^30 + 4,
 * so `(p + k) | 0` cannot wrap; without the `| 0` every index needs an overflow check, which
 * costs ~10%.
 */
function scan(
  buf: Uint8Array, hashStart: number, p: number, stop: number, m: number, mMid: number,
  gLo: Int32Array, gMid: Int32Array, rolled: Int32Array,
): number {
  let h = rolled[0];
  for (;;) {
    // The inner loop only finds candidates (low word passes) and breaks out to check them, so
    // that it stays small: with midWord inlined at each of its tests it ran at half the speed.
    // Unrolled four times: fewer loop-condition checks, measurably faster in V8.
    let c = -1;
    for (const stop4 = stop - 3; p < stop4; p = (p + 4) | 0) {
      h = ((h << 1) + gLo[buf[p]]) | 0;
      if ((h & m) === 0) { c = p; break; }
      h = ((h << 1) + gLo[buf[(p + 1) | 0]]) | 0;
      if ((h & m) === 0) { c = p + 1; break; }
      h = ((h << 1) + gLo[buf[(p + 2) | 0]]) | 0;
      if ((h & m) === 0) { c = p + 2; break; }
      h = ((h << 1) + gLo[buf[(p + 3) | 0]]) | 0;
      if ((h & m) === 0) { c = p + 3; break; }
    }
    if (c < 0) {
      for (; p < stop; p++) {
        h = ((h << 1) + gLo[buf[p]]) | 0;
        if ((h & m) === 0) { c = p; break; }
      }
      if (c < 0) {
        rolled[0] = h;
        return -1;
      }
    }
    if ((midWord(buf, hashStart, c, h, gLo, gMid) & mMid) === 0) return c;
    p = c + 1;
  }
}

export class FastCDC {
  readonly params: Required<ChunkerParams>;
  /** Seeded gear table G, for cutWithHash. */
  readonly #gear = new BigUint64Array(256);
  /** G mod 2^32 and bits 16..47 of G, as int32: what cut's rolling loop and midWord need. */
  readonly #gLo = new Int32Array(256);
  readonly #gMid = new Int32Array(256);
  readonly #maskSLo: number;
  readonly #maskSMid: number;
  readonly #maskLLo: number;
  readonly #maskLMid: number;
  /** Carries the hash word between the two phases of cut without allocating. */
  readonly #rolled = new Int32Array(1);

  constructor(params: ChunkerParams) {
    this.params = checkParams(params);
    const { avg, normalization, seed } = this.params;
    for (let i = 0; i < 256; i++) {
      const g = GEAR[i] ^ seed;
      this.#gear[i] = g;
      this.#gLo[i] = Number(BigInt.asIntN(32, g));
      this.#gMid[i] = Number(BigInt.asIntN(32, g >> 16n));
    }
    const bits = Math.round(Math.log2(avg));
    const maskS = MASKS[bits + normalization - MASK_BITS_MIN];
    const maskL = MASKS[bits - normalization - MASK_BITS_MIN];
    this.#maskSLo = maskS | 0;
    this.#maskSMid = Math.floor(maskS / 2 ** 16) | 0;
    this.#maskLLo = maskL | 0;
    this.#maskLMid = Math.floor(maskL / 2 ** 16) | 0;
  }

  /**
   * Length of the chunk that starts at buf[start], looking at no byte at or past `end`.
   * The caller guarantees end - start >= max unless the input ends at `end`.
   *
   * The reference alternates `hash = (hash << 2) + (G[b] << 1)`, testing `mask << 1`, with
   * `hash = hash + G[b]`, testing `mask`. After an odd step its state is the per-byte gear hash
   * H = sum G[buf[j]] << (p - j) (mod 2^64) and after an even step 2H, so every step tests
   * H & mask === 0; this rolls H, one byte at a time. Only H mod 2^32 is rolled: it does not
   * depend on higher bits, and its masked bits being zero rules out all but 1/2^(bits of the
   * mask below 32) of positions (from 1/64 past avg for avg 64K to 1/4096 before avg for avg
   * 1M). midWord settles those.
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
    // A fresh view from the chunk start: the search sees one class of array whether the caller
    // passes a Buffer (the archiver) or a Uint8Array, and positions stay below max <= 2^30.
    const view = new Uint8Array(buf.buffer, buf.byteOffset + start, window);
    // The reference hashes whole byte pairs: from min, to center (then window) rounded down to even.
    const hashStart = (min >>> 1) << 1;
    const gLo = this.#gLo;
    const gMid = this.#gMid;
    const rolled = this.#rolled;
    rolled[0] = 0;
    let p = scan(view, hashStart, hashStart, (center >>> 1) << 1, this.#maskSLo, this.#maskSMid, gLo, gMid, rolled);
    if (p < 0) p = scan(view, hashStart, (center >>> 1) << 1, (window >>> 1) << 1, this.#maskLLo, this.#maskLMid, gLo, gMid, rolled);
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
    for (let j = Math.max(hashStart, last - 63); j <= last; j++) h = ((h << 1n) + this.#gear[buf[j]]) & U64_MASK;
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
