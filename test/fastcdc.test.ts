import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { FastCDC, chunkBuffer, type ChunkerParams, type ChunkerSizes } from '../src/chunker/fastcdc.js';
import { gear } from '../src/native/gear.js';

interface VectorChunk { offset: number; length: number; gear_hash: string; sha256?: string }
interface VectorCase {
  min: number; avg: number; max: number; normalization_level: number; seed: number | string; input?: string;
  chunks: VectorChunk[];
}
interface Vectors {
  fixture: string; fixture_sha256: string; fixture_bytes: number;
  cases: VectorCase[];
  zeros_case: VectorCase;
  gear_table: Record<string, string>;
}

/** A copy of ../shared/fastcdc (the reference vectors) is kept in test/fixtures so a clone is self-contained. */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'fastcdc');

function loadVectors(): { vectors: Vectors; fixture: Buffer } {
  const dir = FIXTURES;
  const vectors = JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8')) as Vectors;
  const fixture = readFileSync(join(dir, vectors.fixture));
  assert.equal(fixture.length, vectors.fixture_bytes, 'fixture size');
  assert.equal(sha256(fixture), vectors.fixture_sha256, 'fixture sha256');
  return { vectors, fixture };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The cases without a seed: the chunker has none (the seeded case checks the BigInt reference only). */
const unseeded = (cases: VectorCase[]): VectorCase[] => cases.filter((c) => BigInt(c.seed) === 0n);

function chunkerFor(c: VectorCase): FastCDC {
  return new FastCDC({ min: c.min, avg: c.avg, max: c.max, normalization: c.normalization_level });
}

function checkCase(c: VectorCase, data: Uint8Array): void {
  const chunker = chunkerFor(c);
  let offset = 0;
  for (const [i, want] of c.chunks.entries()) {
    const what = `chunk ${i}`;
    assert.equal(offset, want.offset, `${what} offset`);
    const length = chunker.cut(data, offset, data.length);
    assert.equal(length, want.length, `${what} length`);
    if (want.sha256 !== undefined) {
      assert.equal(sha256(data.subarray(offset, offset + length)), want.sha256, `${what} sha256`);
    }
    offset += length;
  }
  assert.equal(offset, data.length, 'chunks cover the whole input');
  assert.deepEqual([...chunkBuffer(chunker, data)], c.chunks.map((k) => [k.offset, k.length]), 'chunkBuffer');
}

function randomBytes(n: number): Uint8Array {
  const buf = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) randomFillSync(buf, off, Math.min(65536, n - off));
  return buf;
}

// A literal BigInt transcription of the README's algorithm, independent of the fast code path,
// to compare against on inputs and parameters the vectors do not cover.
const U64 = (1n << 64n) - 1n;
const REF_MASKS = [
  0x1804110n, 0x1803110n, 0x18035100n, 0x1800035300n, 0x19000353000n, 0x590003530000n,
  0xd90003530000n, 0xd90103530000n, 0xd90303530000n, 0xd90313530000n, 0xd90f03530000n,
  0xd90303537000n, 0xd90703537000n, 0xd90707537000n, 0xd91707537000n, 0xd91747537000n,
  0xd91767537000n, 0xd93767537000n, 0xd93777537000n, 0xd93777577000n, 0xdb3777577000n,
];
const REF_GEAR = Array.from({ length: 256 }, (_, i) =>
  createHash('md5').update(Buffer.alloc(64, i)).digest().readBigUInt64BE(0),
);

type ReferenceParams = ChunkerSizes & { seed: bigint };

function referenceCut(p: ReferenceParams, src: Uint8Array, start: number, end: number): { length: number; hash: bigint } {
  const gear = REF_GEAR.map((g) => g ^ p.seed);
  const gearLs = REF_GEAR.map((g) => ((g << 1n) & U64) ^ ((p.seed << 1n) & U64));
  const bits = Math.round(Math.log2(p.avg));
  const maskS = REF_MASKS[bits + p.normalization - 5];
  const maskL = REF_MASKS[bits - p.normalization - 5];
  let remaining = end - start;
  if (remaining <= p.min) return { length: remaining, hash: 0n };
  let center = p.avg;
  if (remaining > p.max) remaining = p.max;
  else if (remaining < center) center = remaining;
  let index = Math.floor(p.min / 2);
  let hash = 0n;
  for (const [limit, mask] of [[Math.floor(center / 2), maskS], [Math.floor(remaining / 2), maskL]] as const) {
    for (; index < limit; index++) {
      const a = index * 2;
      hash = ((hash << 2n) + gearLs[src[start + a]]) & U64;
      if ((hash & (mask << 1n)) === 0n) return { length: a, hash };
      hash = (hash + gear[src[start + a + 1]]) & U64;
      if ((hash & mask) === 0n) return { length: a + 1, hash };
    }
  }
  return { length: remaining, hash };
}

// The keyed chunker as docs/FORMAT.md §9 specifies it, transcribed literally with BigInt:
// SipHash-2-4 from the paper, the gear table and the two-stage cut test, per byte.
const rotl = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & U64;

function sipHash24(key: Uint8Array, message: Uint8Array): bigint {
  const k = Buffer.from(key);
  const [k0, k1] = [k.readBigUInt64LE(0), k.readBigUInt64LE(8)];
  let [v0, v1, v2, v3] = [k0 ^ 0x736f6d6570736575n, k1 ^ 0x646f72616e646f6dn, k0 ^ 0x6c7967656e657261n, k1 ^ 0x7465646279746573n];
  const round = (): void => {
    v0 = (v0 + v1) & U64; v1 = rotl(v1, 13n) ^ v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & U64; v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & U64; v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & U64; v1 = rotl(v1, 17n) ^ v2; v2 = rotl(v2, 32n);
  };
  // Whole 8-byte words, the last one padded with zeros and topped with the length's low byte.
  const words = Buffer.alloc((message.length & ~7) + 8);
  words.set(message);
  words[words.length - 1] = message.length & 0xff;
  for (let i = 0; i < words.length; i += 8) {
    const m = words.readBigUInt64LE(i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  v2 ^= 0xffn;
  for (let r = 0; r < 4; r++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

function keyedReference(p: ChunkerSizes, key: Uint8Array): (src: Uint8Array, start: number, end: number) => number {
  const g = Array.from({ length: 256 }, (_, i) => sipHash24(key.subarray(0, 16), Uint8Array.of(i)));
  const bits = Math.round(Math.log2(p.avg));
  const [bitsS, bitsL] = [bits + p.normalization, bits - p.normalization];
  const pre = Math.min(10, bitsL - 4);
  const even = (n: number): number => n - (n % 2);
  return (src, start, end) => {
    const remaining = end - start;
    if (remaining <= p.min) return remaining;
    const window = Math.min(remaining, p.max);
    const center = Math.min(window, p.avg);
    let h = 0n;
    for (let i = even(p.min); i < even(window); i++) {
      h = ((h << 1n) + g[src[start + i]!]!) & U64;
      const prfBits = i < even(center) ? bitsS - pre : bitsL - pre;
      const le = Buffer.alloc(8);
      le.writeBigUInt64LE(h);
      if (h >> BigInt(64 - pre) === 0n && (sipHash24(key.subarray(16, 32), le) & ((1n << BigInt(prfBits)) - 1n)) === 0n) return i;
    }
    return window;
  };
}

/**
 * Mean, variance and P(length = max) of a chunk cut from endless input when each hashed byte
 * cuts with probability 2^-bits of its stage, independently: what the parameters promise.
 */
function promisedSizes(p: ChunkerSizes): { mean: number; variance: number; atMax: number } {
  const bits = Math.round(Math.log2(p.avg));
  const even = (n: number): number => n - (n % 2);
  let longer = 1; // P(length > k)
  let mean = 0;
  let square = 0;
  for (let k = 0; k < p.max; k++) {
    if (k >= even(p.min) && k < even(p.max)) longer *= 1 - 2 ** -(k < even(p.avg) ? bits + p.normalization : bits - p.normalization);
    mean += longer;
    square += (2 * k + 1) * longer;
  }
  return { mean, variance: square - mean * mean, atMax: longer };
}

/** SipHash-2-4 with key 00 01 .. 0f of the messages 00, 00 01, .., 00 .. 3e: the paper's vectors (output bytes in order). */
const SIPHASH_VECTORS = [
  '310e0edd47db6f72', 'fd67dc93c539f874', '5a4fa9d909806c0d', '2d7efbd796666785',
  'b7877127e09427cf', '8da699cd64557618', 'cee3fe586e46c9cb', '37d1018bf50002ab',
  '6224939a79f5f593', 'b0e4a90bdf82009e', 'f3b9dd94c5bb5d7a', 'a7ad6b22462fb3f4',
  'fbe50e86bc8f1e75', '903d84c02756ea14', 'eef27a8e90ca23f7', 'e545be4961ca29a1',
  'db9bc2577fcc2a3f', '9447be2cf5e99a69', '9cd38d96f0b3c14b', 'bd6179a71dc96dbb',
  '98eea21af25cd6be', 'c7673b2eb0cbf2d0', '883ea3e395675393', 'c8ce5ccd8c030ca8',
  '94af49f6c650adb8', 'eab8858ade92e1bc', 'f315bb5bb835d817', 'adcf6b0763612e2f',
  'a5c91da7acaa4dde', '716595876650a2a6', '28ef495c53a387ad', '42c341d8fa92d832',
  'ce7cf2722f512771', 'e37859f94623f3a7', '381205bb1ab0e012', 'ae97a10fd434e015',
  'b4a31508beff4d31', '81396229f0907902', '4d0cf49ee5d4dcca', '5c73336a76d8bf9a',
  'd0a704536ba93e0e', '925958fcd6420cad', 'a915c29bc8067318', '952b79f3bc0aa6d4',
  'f21df2e41d4535f9', '87577519048f53a9', '10a56cf5dfcd9adb', 'eb75095ccd986cd0',
  '51a9cb9ecba312e6', '96afadfc2ce666c7', '72fe52975a4364ee', '5a1645b276d592a1',
  'b274cb8ebf87870a', '6f9bb4203de7b381', 'eaecb2a30b22a87f', '9924a43cc1315724',
  'bd838d3aafbf8db7', '0b1a2a3265d51aea', '135079a3231ce660', '932b2846e4d70666',
  'e1915f5cb1eca46c', 'f325965ca16d629f', '575ff28e60381be5', '724506eb4c328a95',
];

/** Cut positions of a whole buffer (the ends of its chunks but the last). */
const cuts = (chunker: FastCDC, data: Uint8Array): number[] => [...chunkBuffer(chunker, data)].slice(0, -1).map(([offset, length]) => offset + length);

function overlap(a: number[], b: number[]): number {
  const set = new Set(a);
  return b.filter((x) => set.has(x)).length;
}

/** Two 32-byte keys that share their first half (the gear table's key) and differ in the PRF's. */
function keysSharingTable(): [Uint8Array, Uint8Array] {
  const a = randomBytes(32);
  const b = Uint8Array.from(a);
  b.set(randomBytes(16), 16);
  return [a, b];
}

test('FastCDC without a key reproduces every unseeded reference vector case on SekienAkashita.jpg', async (t) => {
  const { vectors, fixture } = loadVectors();
  assert.ok(unseeded(vectors.cases).length >= 5, 'vectors.json has unseeded cases');
  for (const c of unseeded(vectors.cases)) {
    const name = `min=${c.min} avg=${c.avg} max=${c.max} level=${c.normalization_level} seed=${c.seed}`;
    await t.test(name, () => checkCase(c, fixture));
  }
});

test('FastCDC reproduces the zeros case', () => {
  const { vectors } = loadVectors();
  const z = vectors.zeros_case;
  assert.equal(z.input, '10240 zero bytes');
  assert.equal(z.chunks.length, 10);
  checkCase(z, new Uint8Array(10240));
});

test('the BigInt reference transcription matches the published gear table and vectors', () => {
  const { vectors, fixture } = loadVectors();
  assert.equal(REF_GEAR[0], BigInt(vectors.gear_table['GEAR[0]']));
  assert.equal(REF_GEAR[255], BigInt(vectors.gear_table['GEAR[255]']));
  assert.ok(vectors.cases.some((c) => BigInt(c.seed) !== 0n), 'a seeded case checks the transcription of the seed');
  for (const c of vectors.cases) {
    const params = { ...chunkerFor(c).params, seed: BigInt(c.seed) };
    let offset = 0;
    for (const want of c.chunks) {
      const got = referenceCut(params, fixture, offset, fixture.length);
      assert.deepEqual(got, { length: want.length, hash: BigInt(want.gear_hash) });
      offset += got.length;
    }
  }
});

test('without a key the table is the reference\'s: the MD5 gear table, its masks as candidates, PRF masks of 0', () => {
  const c = new FastCDC({ min: 4096, avg: 16384, max: 65536 });
  assert.deepEqual([...c.table.subarray(0, 256)], REF_GEAR);
  assert.deepEqual([...c.table.subarray(256)], [REF_MASKS[15 - 5], REF_MASKS[13 - 5], 0n, 0n, 0n, 0n]);
});

test('cut without a key matches the BigInt reference at every offset, including tails and odd sizes', () => {
  const data = randomBytes(24 * 1024);
  const sets: ChunkerParams[] = [
    { min: 64, avg: 256, max: 1024 },
    { min: 65, avg: 300, max: 1023, normalization: 2 },
    { min: 100, avg: 512, max: 777, normalization: 0 },
    { min: 64, avg: 128, max: 4096, normalization: 0 },
    { min: 256, avg: 2048, max: 8191, normalization: 3 },
  ];
  for (const params of sets) {
    const chunker = new FastCDC(params);
    for (let start = 0; start < data.length; start += 97) {
      for (const end of [data.length, Math.min(data.length, start + params.max), Math.min(data.length, start + params.min + 1)]) {
        const want = referenceCut({ ...chunker.params, seed: 0n }, data, start, end);
        assert.equal(chunker.cut(data, start, end), want.length, `params ${JSON.stringify(params)} start=${start} end=${end}`);
      }
    }
  }
});

test('cut on windows of exactly max bytes matches chunkBuffer over the whole buffer', () => {
  const data = randomBytes(20 * 1024 * 1024);
  const sets: ChunkerParams[] = [
    { min: 2048, avg: 8192, max: 65536, key: randomBytes(32) },
    { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024, normalization: 2, key: randomBytes(32) },
    { min: 2048, avg: 8192, max: 65536 },
  ];
  for (const params of sets) {
    const chunker = new FastCDC(params);
    const whole = [...chunkBuffer(chunker, data)];

    // A reader that holds exactly `max` bytes: bytes past `filled` are stale leftovers, so
    // reading past `end` would change the answer.
    const windowed: [number, number][] = [];
    const win = new Uint8Array(params.max);
    let filled = 0;
    let read = 0;
    let offset = 0;
    for (;;) {
      const n = Math.min(params.max - filled, data.length - read);
      win.set(data.subarray(read, read + n), filled);
      filled += n;
      read += n;
      if (filled === 0) break;
      const length = chunker.cut(win, 0, filled);
      windowed.push([offset, length]);
      offset += length;
      win.copyWithin(0, length, filled);
      filled -= length;
    }
    assert.deepEqual(windowed, whole);

    const bounded: [number, number][] = [];
    for (let off = 0; off < data.length; ) {
      const length = chunker.cut(data, off, Math.min(off + params.max, data.length));
      bounded.push([off, length]);
      off += length;
    }
    assert.deepEqual(bounded, whole);

    assert.equal(whole.reduce((s, [, l]) => s + l, 0), data.length);
    for (const [off, l] of whole.slice(0, -1)) {
      assert.ok(l >= params.min && l <= params.max, `chunk at ${off} has length ${l} outside [min, max]`);
    }
    const mean = data.length / whole.length;
    assert.ok(mean > params.avg / 2 && mean < params.avg * 2, `mean chunk ${mean} far from avg ${params.avg}`);
  }
});

test('params are validated and defaulted', () => {
  const c = new FastCDC({ min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 });
  assert.deepEqual(c.params, { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024, normalization: 1 });
  assert.ok(!('key' in new FastCDC({ ...c.params, key: randomBytes(32) }).params), 'the key stays out of params');
  assert.ok(Object.isFrozen(c.params));

  const ok = { min: 4096, avg: 16384, max: 65536 };
  const bad: [Partial<ChunkerParams>, RegExp][] = [
    [{ min: 16384 }, /min < avg < max/],
    [{ avg: 65536 }, /min < avg < max/],
    [{ max: 16384 }, /min < avg < max/],
    [{ min: 32, avg: 256, max: 1024 }, /min must be at least 64/],
    [{ min: 4096.5 }, /min must be an integer/],
    [{ avg: NaN }, /avg must be an integer/],
    [{ max: Infinity }, /max must be an integer/],
    [{ max: 2 ** 30 + 1 }, /max must be at most/],
    [{ normalization: 4 }, /normalization must be an integer 0\.\.3/],
    [{ normalization: -1 }, /normalization/],
    [{ normalization: 1.5 }, /normalization/],
    [{ min: 64, avg: 128, max: 1024, normalization: 3 }, /masks of 4\.\.10 bits/],
    [{ min: 1 << 20, avg: 1 << 25, max: 1 << 26 }, /masks of 24\.\.26 bits/],
    [{ key: new Uint8Array(31) }, /key must be 32 bytes/],
    [{ key: new Uint8Array(33) }, /key must be 32 bytes/],
    [{ key: 'k'.repeat(32) as unknown as Uint8Array }, /key must be 32 bytes/],
  ];
  for (const [change, message] of bad) {
    assert.throws(() => new FastCDC({ ...ok, ...change }), (e: unknown) => e instanceof RangeError && message.test(e.message), JSON.stringify(change));
  }
  assert.doesNotThrow(() => new FastCDC({ ...ok, key: new Uint8Array(32), normalization: 3 }));
  assert.doesNotThrow(() => new FastCDC({ min: 64, avg: 256, max: 1024, normalization: 3 }));
});

test('cut rejects ranges outside the buffer', () => {
  const c = new FastCDC({ min: 64, avg: 256, max: 1024 });
  const buf = new Uint8Array(100);
  for (const [start, end] of [[-1, 10], [10, 5], [0, 101], [0.5, 10]]) {
    assert.throws(() => c.cut(buf, start, end), RangeError, `start=${start} end=${end}`);
  }
  assert.equal(c.cut(buf, 100, 100), 0);
  assert.equal(c.cut(buf, 40, 100), 60);
});

const sizes16k: ChunkerSizes = { min: 4096, avg: 16384, max: 65536, normalization: 1 };
const popcount = (x: bigint): number => [...x.toString(2)].filter((b) => b === '1').length;

test('SipHash-2-4, native and transcribed, gives the paper\'s 64 vectors', () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  assert.equal(SIPHASH_VECTORS.length, 64);
  SIPHASH_VECTORS.forEach((hex, n) => {
    const message = Uint8Array.from({ length: n }, (_, i) => i);
    const want = Buffer.from(hex, 'hex').readBigUInt64LE(0);
    assert.equal(gear.sipHash24(key, message), want, `native, ${n} bytes`);
    assert.equal(sipHash24(key, message), want, `BigInt, ${n} bytes`);
  });
});

test('keyed masks: prefilter and PRF bits add up to FastCDC\'s per stage, the prefilter of at most 10 bits, the PRF of at least 4', () => {
  let smallest = Infinity;
  for (let bits = 7; bits <= 25; bits++) {
    for (let normalization = 0; normalization <= 3; normalization++) {
      if (bits - normalization < 5 || bits + normalization > 25) continue;
      const key = randomBytes(32);
      const t = new FastCDC({ min: 64, avg: 2 ** bits, max: 2 ** (bits + 1), normalization, key }).table;
      const what = `avg 2^${bits}, normalization ${normalization}`;
      const pre = popcount(t[256]!);
      assert.equal(t[257], t[256], what);
      assert.equal(t[256], ((1n << BigInt(pre)) - 1n) << BigInt(64 - pre), `${what}: the prefilter is the top bits`);
      assert.ok(pre >= 1 && pre <= 10 && pre <= bits - normalization - 4, `${what}: ${pre} prefilter bits`);
      for (const [word, stageBits] of [[t[258]!, bits + normalization], [t[259]!, bits - normalization]] as const) {
        assert.equal(word & (word + 1n), 0n, `${what}: PRF mask ${word} is low bits`);
        assert.equal(pre + popcount(word), stageBits, `${what}: the stage's bits`);
        assert.ok(popcount(word) >= 4, what);
      }
      assert.deepEqual([t[260], t[261]], [Buffer.from(key).readBigUInt64LE(16), Buffer.from(key).readBigUInt64LE(24)], `${what}: PRF key`);
      smallest = Math.min(smallest, pre);
    }
  }
  assert.equal(smallest, 1, 'masks of 5 bits are covered');
});

test('a keyed chunker cuts as docs/FORMAT.md §9 specifies, at every offset, tiny and max-bound sizes included', () => {
  const data = randomBytes(12 * 1024);
  const sets: [ChunkerSizes, boolean][] = [
    [{ min: 64, avg: 256, max: 1024, normalization: 3 }, false], // masks of 11 and 5 bits
    [{ min: 64, avg: 128, max: 300, normalization: 0 }, false],
    [{ min: 65, avg: 1000, max: 1999, normalization: 1 }, false],
    [{ min: 64, avg: 4096, max: 4100, normalization: 3 }, true], // masks of 15 and 9 bits: most chunks end at max
  ];
  for (const [sizes, maxBound] of sets) {
    const key = randomBytes(32);
    const chunker = new FastCDC({ ...sizes, key });
    const reference = keyedReference(chunker.params, key);
    let atMax = 0;
    for (let start = 0; start < data.length; start += 211) {
      for (const end of [data.length, start + sizes.max, start + sizes.min + 2, start + sizes.min]) {
        const bounded = Math.min(end, data.length);
        const length = chunker.cut(data, start, bounded);
        assert.equal(length, reference(data, start, bounded), `${JSON.stringify(sizes)} start=${start} end=${bounded}`);
        if (length === sizes.max) atMax++;
      }
    }
    if (maxBound) assert.ok(atMax > 10, `${atMax} chunks of max bytes`);
  }
});

test('a keyed chunker is deterministic for its key, and cuts elsewhere than the unkeyed one', () => {
  const data = randomBytes(4 * 1024 * 1024);
  const key = randomBytes(32);
  const keyed = cuts(new FastCDC({ ...sizes16k, key }), data);
  assert.ok(keyed.length > 100);
  assert.deepEqual(cuts(new FastCDC({ ...sizes16k, key: Uint8Array.from(key) }), data), keyed);
  assert.ok(overlap(keyed, cuts(new FastCDC(sizes16k), data)) < keyed.length / 10);
});

test('keyed chunk sizes on random data are what the parameters promise', () => {
  const data = randomBytes(64 * 1024 * 1024);
  const sets: [ChunkerSizes, number][] = [
    [sizes16k, data.length],
    [{ min: 64, avg: 256, max: 1024, normalization: 3 }, 4 * 1024 * 1024],
    [{ min: 64, avg: 4096, max: 4100, normalization: 0 }, 16 * 1024 * 1024],
  ];
  for (const [sizes, bytes] of sets) {
    const lengths = [...chunkBuffer(new FastCDC({ ...sizes, key: randomBytes(32) }), data.subarray(0, bytes))].slice(0, -1).map(([, l]) => l);
    const { mean, variance, atMax } = promisedSizes(sizes);
    const got = lengths.reduce((sum, l) => sum + l, 0) / lengths.length;
    const what = `${JSON.stringify(sizes)}: ${lengths.length} chunks, mean ${got.toFixed(0)}, promised ${mean.toFixed(0)}`;
    assert.ok(Math.abs(got - mean) < 5 * Math.sqrt(variance / lengths.length), what);
    assert.ok(lengths.every((l) => l >= sizes.min && l <= sizes.max), what);
    const maxed = lengths.filter((l) => l === sizes.max).length;
    const expected = atMax * lengths.length;
    assert.ok(Math.abs(maxed - expected) <= 5 * Math.sqrt(expected) + 3, `${what}: ${maxed} of max bytes, ${expected.toFixed(1)} expected`);
  }
});

test('different keys give unrelated boundaries: their cuts coincide about as often as chance has it', () => {
  const data = randomBytes(16 * 1024 * 1024);
  const a = cuts(new FastCDC({ ...sizes16k, key: randomBytes(32) }), data);
  const b = cuts(new FastCDC({ ...sizes16k, key: randomBytes(32) }), data);
  const chance = (a.length * b.length) / data.length;
  assert.ok(a.length > 500 && b.length > 500);
  assert.ok(overlap(a, b) <= 4 * chance + 5, `${overlap(a, b)} cuts shared, ${chance.toFixed(2)} by chance`);
});

test('the PRF decides: the same gear table (and so candidates) with another PRF key cuts elsewhere', () => {
  const data = randomBytes(16 * 1024 * 1024);
  const [keyA, keyB] = keysSharingTable();
  const [chunkerA, chunkerB] = [new FastCDC({ ...sizes16k, key: keyA }), new FastCDC({ ...sizes16k, key: keyB })];
  assert.deepEqual(chunkerA.table.subarray(0, 260), chunkerB.table.subarray(0, 260), 'same table and masks');
  assert.notDeepEqual(chunkerA.table.subarray(260), chunkerB.table.subarray(260), 'other PRF keys');
  const [a, b] = [cuts(chunkerA, data), cuts(chunkerB, data)];
  // Both cut only where the shared table makes candidates, which one who knew it could list...
  for (const [chunker, at] of [[chunkerA, a], [chunkerB, b]] as const) {
    at.forEach((end, i) => {
      const start = at[i - 1] ?? 0;
      if (end - start === chunker.params.max) return; // no cut in sight: the window's end
      let h = 0n;
      for (let j = Math.max(start + chunker.params.min, end - 63); j <= end; j++) h = ((h << 1n) + chunker.table[data[j]!]!) & U64;
      assert.equal(h & chunker.table[256]!, 0n, `cut at ${end} is a candidate`);
    });
  }
  // ...but among candidates each PRF picks its own: a skipped PRF, or one deaf to its key, would cut alike.
  assert.ok(a.length > 500 && b.length > 500);
  assert.ok(overlap(a, b) < a.length / 10, `${overlap(a, b)} of ${a.length} cuts shared`);
});

test('a keyed chunker: input up to min is one chunk, a run of one byte cuts alike each time, no chunk exceeds max', () => {
  const sizes = { min: 64, avg: 256, max: 1024, normalization: 3 };
  const chunker = new FastCDC({ ...sizes, key: randomBytes(32) });
  const data = randomBytes(2000);
  for (let n = 0; n <= sizes.min; n++) assert.equal(chunker.cut(data, 7, 7 + n), n);
  assert.equal(chunker.cut(data, 7, 7 + sizes.min + 1), sizes.min + 1, 'no whole byte pair to hash: the window');
  const zeros = [...chunkBuffer(chunker, new Uint8Array(1 << 20))].map(([, l]) => l);
  assert.equal(new Set(zeros.slice(0, -1)).size, 1, 'every chunk of zeros alike');
  assert.ok(zeros[0]! > sizes.min && zeros[0]! <= sizes.max);
});
