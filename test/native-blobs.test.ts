import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { TAG_BYTES } from '../src/crypto/primitives.js';
import { blobsNative } from '../src/native/blobs.js';

/** The reference: node:crypto's AES-256-GCM, ciphertext then tag. */
function seal(key: Buffer, nonce: Buffer, plain: Buffer, aad?: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

test('native AES-GCM open agrees with node:crypto and refuses any flipped bit', () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  for (const size of [0, 1, 15, 16, 17, 4096, 100_003]) {
    const plain = randomBytes(size);
    const sealed = seal(key, nonce, plain);
    const out = Buffer.alloc(size);
    assert.equal(blobsNative.gcmOpen(key, nonce, sealed, out), true);
    assert.deepEqual(out, plain);
    for (const at of [0, Math.floor(sealed.length / 2), sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x10;
      assert.equal(blobsNative.gcmOpen(key, nonce, bad, Buffer.alloc(size)), false, `size ${size}, byte ${at}`);
    }
    assert.equal(blobsNative.gcmOpen(randomBytes(32), nonce, sealed, Buffer.alloc(size)), false);
  }
  // A view into a larger buffer (a blob inside a pack) is read at its own offset.
  const plain = randomBytes(5000);
  const pack = Buffer.concat([randomBytes(777), seal(key, nonce, plain), randomBytes(99)]);
  const out = Buffer.alloc(plain.length);
  assert.equal(blobsNative.gcmOpen(key, nonce, pack.subarray(777, 777 + plain.length + TAG_BYTES), out), true);
  assert.deepEqual(out, plain);
  assert.throws(() => blobsNative.gcmOpen(key, nonce, Buffer.alloc(TAG_BYTES - 1), Buffer.alloc(0)), TypeError);
});

test('native AES-GCM seal writes what node:crypto writes, at an offset, with and without associated data', () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const aad = randomBytes(39);
  for (const size of [0, 1, 16, 4097, 100_003]) {
    const plain = randomBytes(size);
    const out = Buffer.alloc(size + TAG_BYTES + 50, 0xaa);
    blobsNative.gcmSeal(key, nonce, plain, out, 20);
    assert.deepEqual(out.subarray(20, 20 + size + TAG_BYTES), seal(key, nonce, plain), `size ${size}`);
    assert.ok(out.subarray(0, 20).every((b) => b === 0xaa) && out.subarray(20 + size + TAG_BYTES).every((b) => b === 0xaa), 'nothing outside its range is written');
    const withAad = Buffer.alloc(size + TAG_BYTES);
    blobsNative.gcmSeal(key, nonce, plain, withAad, 0, aad);
    assert.deepEqual(withAad, seal(key, nonce, plain, aad));
    assert.equal(blobsNative.gcmOpen(key, nonce, withAad, Buffer.alloc(size), aad), true);
    assert.equal(blobsNative.gcmOpen(key, nonce, withAad, Buffer.alloc(size)), false, 'the associated data is authenticated');
  }
  assert.throws(() => blobsNative.gcmSeal(key, nonce, randomBytes(10), Buffer.alloc(10 + TAG_BYTES), 1), TypeError);
});

test('blob IDs are keyed BLAKE3: the official test vectors, across the SIMD paths\' sizes', () => {
  // From BLAKE3's test_vectors.json (input: bytes i % 251), checked with Debian's b3sum --keyed.
  const key = Buffer.from('whats the Elvish word for friend');
  const vectors: [number, string][] = [
    [0, '92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26'],
    [1, '6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b'],
    [1023, 'c951ecdf03288d0fcc96ee3413563d8a6d3589547f2c2fb36d9786470f1b9d6e'],
    [1024, '75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4'],
    [1025, '357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69'],
    [8192, 'dc9637c8845a770b4cbf76b8daec0eebf7dc2eac11498517f08d44c8fc00d58a'],
    [102400, '1c35d1a5811083fd7119f5d5d1ba027b4d01c0c6c49fb6ff2cf75393ea5db4a7'],
  ];
  for (const [length, expected] of vectors) {
    const data = Buffer.from(Array.from({ length }, (_, i) => i % 251));
    const id = Buffer.alloc(32);
    blobsNative.blobId(key, data, id);
    assert.equal(id.toString('hex'), expected, `${length} bytes`);
  }
  assert.throws(() => blobsNative.blobId(randomBytes(32), randomBytes(5), Buffer.alloc(31)), TypeError);
  assert.throws(() => blobsNative.blobId(randomBytes(16), randomBytes(5), Buffer.alloc(32)), TypeError);
});
