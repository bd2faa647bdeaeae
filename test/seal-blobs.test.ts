import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { counterNonce, open, TAG_BYTES } from '../src/crypto/primitives.js';
import { pipeline } from '../src/native/pipeline.js';
import { decompress } from '../src/repository/compression.js';

const key = randomBytes(32);
const text = (n: number) => Buffer.from('all work and no play makes jack a dull boy\n'.repeat(Math.ceil(n / 43))).subarray(0, n);

test('sealBlobs compresses what shrinks, seals each blob with its offset in the pack as nonce, one after another', async () => {
  const lane = pipeline.newLane(3);
  const blobs = [text(40_000), randomBytes(20_000), text(1), Buffer.alloc(0), text(300_000)];
  const at = 100;
  const offset = 5000;
  const out = Buffer.alloc(at + blobs.reduce((n, b) => n + b.length + TAG_BYTES, 0));
  const fields = new Uint32Array(2 * blobs.length);
  const written = await pipeline.sealBlobs(lane, key, blobs, out, at, offset, fields);
  let pos = 0;
  blobs.forEach((blob, i) => {
    const length = fields[2 * i]!;
    const compressed = fields[2 * i + 1] === 1;
    const plain = open(key, counterNonce(offset + pos), out.subarray(at + pos, at + pos + length));
    assert.ok(plain, `blob ${i} opens with the nonce of its offset`);
    assert.deepEqual(compressed ? decompress(plain, blob.length) : plain, blob);
    pos += length;
  });
  assert.equal(written, pos);
  assert.deepEqual(Array.from({ length: blobs.length }, (_, i) => fields[2 * i + 1]), [1, 0, 0, 0, 1], 'text compressed; random, tiny and empty as they are');
  assert.ok(written < blobs.reduce((n, b) => n + b.length, 0) / 2);
});

test('sealBlobs refuses a pack without room for every blob and its tag, and compressInto a lane with a call under way', async () => {
  const lane = pipeline.newLane(3);
  const blob = text(1000);
  assert.throws(() => pipeline.sealBlobs(lane, key, [blob], Buffer.alloc(blob.length + TAG_BYTES - 1), 0, 0, new Uint32Array(2)), /no room/);
  assert.throws(() => pipeline.sealBlobs(lane, key, [blob], Buffer.alloc(2000), -1, -1, new Uint32Array(2)), /no call before it/);
  const first = pipeline.sealBlobs(lane, key, [text(4 * 1024 * 1024)], Buffer.alloc(4 * 1024 * 1024 + TAG_BYTES), 0, 0, new Uint32Array(2));
  assert.throws(() => pipeline.compressInto(lane, blob, Buffer.alloc(blob.length), 0), /busy/);
  await first;
  assert.ok(pipeline.compressInto(lane, blob, Buffer.alloc(blob.length), 0) > 0, 'free again once the call settles');
});

test('a chained call seals right after the call before it, made while that one is still sealing', async () => {
  const lane = pipeline.newLane(3);
  const groups = [[text(3 * 1024 * 1024), randomBytes(50_000)], [randomBytes(1000), text(70_000)], [text(10)]];
  const at = 64;
  const offset = 1_000_000;
  const out = Buffer.alloc(at + groups.flat().reduce((n, b) => n + b.length + TAG_BYTES, 0));
  const fields = groups.map((g) => new Uint32Array(2 * g.length));
  // All three made at once: the second and third wait on the pool for the one before.
  const written = await Promise.all(groups.map((g, i) => (i === 0 ? pipeline.sealBlobs(lane, key, g, out, at, offset, fields[0]!) : pipeline.sealBlobs(lane, key, g, out, -1, -1, fields[i]!))));
  let pos = 0;
  groups.forEach((g, i) => {
    let own = 0;
    g.forEach((blob, b) => {
      const length = fields[i]![2 * b]!;
      const plain = open(key, counterNonce(offset + pos), out.subarray(at + pos, at + pos + length));
      assert.ok(plain, `group ${i} blob ${b} opens with the nonce of its offset`);
      assert.deepEqual(fields[i]![2 * b + 1] === 1 ? decompress(plain, blob.length) : plain, blob);
      pos += length;
      own += length;
    });
    assert.equal(written[i], own);
  });
  const after = Buffer.alloc(10);
  await assert.rejects(pipeline.sealBlobs(lane, key, [text(10)], after, -1, -1, new Uint32Array(2)), /buffer of the call before/);
  await assert.rejects(pipeline.sealBlobs(lane, key, [text(10)], out, -1, -1, new Uint32Array(2)), /call before it on the lane failed/, 'a lane fails for good: its pack is unknown');
});

test('level 0 stores every blob as it is', async () => {
  const blob = text(100_000);
  const out = Buffer.alloc(blob.length + TAG_BYTES);
  const fields = new Uint32Array(2);
  await pipeline.sealBlobs(pipeline.newLane(0), key, [blob], out, 0, 0, fields);
  assert.deepEqual([fields[0], fields[1]], [blob.length + TAG_BYTES, 0]);
  assert.deepEqual(open(key, counterNonce(0), out), blob);
});

test('a lane compresses blobs of every size after one another, at low and high levels (its zstd workspace is sized once)', async () => {
  // Past the 128 small calls after which zstd would shrink a workspace of its own, then the largest sizes.
  const blobs = [...Array.from({ length: 130 }, (_, i) => text(1000 + i)), text(8 * 1024 * 1024), text(200_000), text(20_000), text(64 * 1024 * 1024 - 7)];
  for (const level of [1, 3, 12]) {
    const lane = pipeline.newLane(level);
    const out = Buffer.alloc(blobs.reduce((n, b) => n + b.length + TAG_BYTES, 0));
    const fields = new Uint32Array(2 * blobs.length);
    await pipeline.sealBlobs(lane, key, blobs, out, 0, 0, fields);
    let pos = 0;
    blobs.forEach((blob, i) => {
      assert.equal(fields[2 * i + 1], 1, `level ${level}: blob ${i} (${blob.length} bytes) compressed`);
      const plain = open(key, counterNonce(pos), out.subarray(pos, pos + fields[2 * i]!));
      assert.deepEqual(decompress(plain!, blob.length), blob);
      pos += fields[2 * i]!;
    });
  }
});

test('with a sink, sealed bytes are written to its file at their offsets and hashed in the order of the calls', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-sink-'));
  try {
    const lane = pipeline.newLane(3);
    const file = path.join(dir, 'pack');
    const fd = fs.openSync(file, 'wx');
    const sink = pipeline.newPackSink(fd);
    const head = Buffer.from('head of the pack');
    pipeline.packSinkWrite(sink, head, 0);
    // The window starts over at 0 for the second group: its bytes still go after the first's in the file.
    const window = Buffer.alloc(4 * 1024 * 1024);
    const groups = [[text(3 * 1024 * 1024), randomBytes(50_000)], [randomBytes(1000), text(70_000)], [text(10)]];
    const fields = groups.map((g) => new Uint32Array(2 * g.length));
    const first = await pipeline.sealBlobs(lane, key, groups[0]!, window, 0, head.length, fields[0]!, sink);
    const expected = [head, Buffer.from(window.subarray(0, first))];
    const rest = await Promise.all([
      pipeline.sealBlobs(lane, key, groups[1]!, window, 0, head.length + first, fields[1]!, sink),
      pipeline.sealBlobs(lane, key, groups[2]!, window, -1, -1, fields[2]!, sink),
    ]);
    expected.push(Buffer.from(window.subarray(0, rest[0]! + rest[1]!)));
    const tail = Buffer.from('tail');
    const size = expected.reduce((n, b) => n + b.length, 0);
    pipeline.packSinkWrite(sink, tail, size);
    expected.push(tail);
    fs.closeSync(fd);
    const whole = Buffer.concat(expected);
    assert.deepEqual(fs.readFileSync(file), whole);
    assert.deepEqual(pipeline.packSinkDigest(sink), createHash('sha256').update(whole).digest());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a sink that cannot write fails the call with the reason, and the calls after it on the lane', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-sink-'));
  try {
    const lane = pipeline.newLane(3);
    fs.writeFileSync(path.join(dir, 'pack'), '');
    const fd = fs.openSync(path.join(dir, 'pack'), 'r');
    const sink = pipeline.newPackSink(fd);
    assert.throws(() => pipeline.packSinkWrite(sink, text(10), 0), /^Error: cannot write the staged pack: Bad file descriptor$/);
    const out = Buffer.alloc(1024 * 1024);
    const sealing = pipeline.sealBlobs(lane, key, [text(1000)], out, 0, 0, new Uint32Array(2), sink);
    const after = pipeline.sealBlobs(lane, key, [text(1000)], out, -1, -1, new Uint32Array(2), sink);
    await assert.rejects(sealing, /^Error: cannot write the staged pack: Bad file descriptor$/);
    await assert.rejects(after, /a call before it on the lane failed/);
    assert.throws(() => pipeline.sealBlobs(lane, key, [text(1)], out, 0, 0, new Uint32Array(2), lane as never), /sealBlobs\(lane/, 'a lane is not a sink');
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
