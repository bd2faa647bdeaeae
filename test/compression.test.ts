import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { compress, compressInto, decompress } from '../src/repository/compression.js';
import { FULL_WRITER } from '../src/crypto/access.js';
import { x25519Keys } from '../src/crypto/keybox.js';
import { signingKey } from '../src/crypto/signing.js';
import { decodeObject, encodeObject, ObjectKind } from '../src/repository/sealed-object.js';

const MiB = 1024 * 1024;
const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(n / 44))).subarray(0, n);

test('large incompressible blobs are stored as they are, compressible ones compressed', () => {
  const c = { compress: (data: Uint8Array) => compress(data, 3) };
  assert.equal(c.compress(randomBytes(MiB)), null);
  const plain = text(MiB);
  const packed = c.compress(plain);
  assert.ok(packed && packed.length < plain.length / 10);
  assert.deepEqual(decompress(packed, plain.length), plain);
});

test('a blob with a compressible part anywhere a sample looks is still compressed', () => {
  const c = { compress: (data: Uint8Array) => compress(data, 3) };
  for (const at of [0, MiB / 2 - 64 * 1024, MiB - 128 * 1024]) {
    const mixed = randomBytes(MiB);
    text(128 * 1024).copy(mixed, at);
    const packed = c.compress(mixed);
    assert.ok(packed && packed.length < mixed.length, `compressible region at ${at}`);
    assert.deepEqual(decompress(packed, mixed.length), mixed);
  }
});

test('small blobs are always tried whole; level 0 turns compression off', () => {
  assert.equal(compress(randomBytes(64 * 1024), 3), null);
  assert.ok(compress(text(64 * 1024), 3));
  assert.equal(compress(text(MiB), 0), null);
});

test('objects are sealed from their parts; an index object is never compressed, others are when that helps', () => {
  const seal = x25519Keys(randomBytes(32));
  const signer = { writer: FULL_WRITER, signing: signingKey(randomBytes(32)) };
  const parts = [text(100), Buffer.alloc(0), text(70_000), randomBytes(5000), text(3)];
  const index = encodeObject(ObjectKind.index, parts, seal.public, signer);
  assert.deepEqual(decodeObject(ObjectKind.index, index, seal, 'index').payload, Buffer.concat(parts));
  assert.ok(index.length > Buffer.concat(parts).length, 'stored as it is');
  const snapshot = encodeObject(ObjectKind.snapshot, parts, seal.public, signer);
  assert.deepEqual(decodeObject(ObjectKind.snapshot, snapshot, seal, 'snapshot').payload, Buffer.concat(parts));
  assert.ok(snapshot.length < Buffer.concat(parts).length / 2, 'compressed');
  const out = Buffer.alloc(80_000);
  assert.equal(compressInto(randomBytes(1000), 3, out, 0), 0);
  const length = compressInto(text(70_000), 3, out, 10);
  assert.deepEqual(decompress(out.subarray(10, 10 + length), 70_000), text(70_000));
});
