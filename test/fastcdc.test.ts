import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { FastCDC, chunkBuffer, type ChunkerParams } from '../src/chunker/fastcdc.js';

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

function chunkerFor(c: VectorCase): FastCDC {
  return new FastCDC({ min: c.min, avg: c.avg, max: c.max, normalization: c.normalization_level, seed: BigInt(c.seed) });
}

function checkCase(c: VectorCase, data: Uint8Array): void {
  const chunker = chunkerFor(c);
  let offset = 0;
  for (const [i, want] of c.chunks.entries()) {
    const what = `chunk ${i}`;
    assert.equal(offset, want.offset, `${what} offset`);
    const { length, hash } = chunker.cutWithHash(data, offset, data.length);
    assert.equal(length, want.length, `${what} length`);
    assert.equal(hash, BigInt(want.gear_hash), `${what} gear hash`);
    assert.equal(chunker.cut(data, offset, data.length), length, `${what} cut vs cutWithHash`);
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

function referenceCut(p: Required<ChunkerParams>, src: Uint8Array, start: number, end: number): { length: number; hash: bigint } {
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

test('FastCDC reproduces every reference vector case on SekienAkashita.jpg', async (t) => {
  const { vectors, fixture } = loadVectors();
  assert.ok(vectors.cases.length > 0, 'vectors.json has cases');
  for (const c of vectors.cases) {
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
  for (const c of vectors.cases) {
    const params = chunkerFor(c).params;
    let offset = 0;
    for (const want of c.chunks) {
      const got = referenceCut(params, fixture, offset, fixture.length);
      assert.deepEqual(got, { length: want.length, hash: BigInt(want.gear_hash) });
      offset += got.length;
    }
  }
});

test('cutWithHash matches the BigInt reference at every offset, including tails and odd sizes', () => {
  const data = randomBytes(24 * 1024);
  const sets: ChunkerParams[] = [
    { min: 64, avg: 256, max: 1024 },
    { min: 65, avg: 300, max: 1023, normalization: 2, seed: 0xffffffffffffffffn },
    { min: 100, avg: 512, max: 777, normalization: 0, seed: 0x8000000080000000n },
    { min: 64, avg: 128, max: 4096, normalization: 0, seed: 12345n },
    { min: 256, avg: 2048, max: 8191, normalization: 3, seed: 0x0123456789abcdefn },
  ];
  for (const params of sets) {
    const chunker = new FastCDC(params);
    for (let start = 0; start < data.length; start += 97) {
      for (const end of [data.length, Math.min(data.length, start + params.max), Math.min(data.length, start + params.min + 1)]) {
        const want = referenceCut(chunker.params, data, start, end);
        assert.deepEqual(chunker.cutWithHash(data, start, end), want, `params ${JSON.stringify(params, (_, v) => (typeof v === 'bigint' ? String(v) : v))} start=${start} end=${end}`);
        assert.equal(chunker.cut(data, start, end), want.length);
      }
    }
  }
});

test('cut on windows of exactly max bytes matches chunkBuffer over the whole buffer', () => {
  const data = randomBytes(20 * 1024 * 1024);
  const sets: ChunkerParams[] = [
    { min: 2048, avg: 8192, max: 65536, seed: 0x9e3779b97f4a7c15n },
    { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024, normalization: 2, seed: 0xdeadbeefcafef00dn },
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

test('seed bits 0..47 change boundaries, higher bits cannot (as in the reference)', () => {
  const data = randomBytes(1024 * 1024);
  const base = { min: 2048, avg: 8192, max: 65536 };
  const unseeded = [...chunkBuffer(new FastCDC(base), data)];
  assert.deepEqual([...chunkBuffer(new FastCDC({ ...base, seed: 0n, normalization: 1 }), data)], unseeded);
  assert.deepEqual([...chunkBuffer(new FastCDC({ ...base, seed: (1n << 63n) | (1n << 48n) }), data)], unseeded);
  assert.notDeepEqual([...chunkBuffer(new FastCDC({ ...base, seed: 1n << 47n }), data)], unseeded);
  assert.notDeepEqual([...chunkBuffer(new FastCDC({ ...base, seed: 0x5eedn }), data)], unseeded);
});

test('params are validated and defaulted', () => {
  const c = new FastCDC({ min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 });
  assert.deepEqual(c.params, { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024, normalization: 1, seed: 0n });
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
    [{ seed: -1n }, /seed must be a bigint/],
    [{ seed: 1n << 64n }, /seed must be a bigint/],
    [{ seed: 5 as unknown as bigint }, /seed must be a bigint/],
  ];
  for (const [change, message] of bad) {
    assert.throws(() => new FastCDC({ ...ok, ...change }), (e: unknown) => e instanceof RangeError && message.test(e.message), JSON.stringify(change, (_, v) => (typeof v === 'bigint' ? String(v) : v)));
  }
  assert.doesNotThrow(() => new FastCDC({ ...ok, seed: (1n << 64n) - 1n, normalization: 3 }));
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
