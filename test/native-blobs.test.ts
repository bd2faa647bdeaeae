import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
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

test('native HMAC-SHA-256 agrees with node:crypto for short, block-sized and long keys', () => {
  for (const keyLength of [16, 32, 64, 65, 200]) {
    const key = randomBytes(keyLength);
    for (const size of [0, 55, 64, 1000, 70_001]) {
      const data = randomBytes(size);
      const mac = Buffer.alloc(32);
      blobsNative.hmacSha256(key, data, mac);
      assert.deepEqual(mac, createHmac('sha256', key).update(data).digest());
    }
  }
  assert.throws(() => blobsNative.hmacSha256(randomBytes(32), randomBytes(5), Buffer.alloc(31)), TypeError);
});
