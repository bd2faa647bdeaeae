import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { seal, TAG_BYTES } from '../src/crypto/primitives.js';
import { blobsNative } from '../src/native/blobs.js';

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

test('native HMAC-SHA-256 agrees with node:crypto for short, block-sized and long keys', () => {
  for (const keyLength of [16, 32, 64, 65, 200]) {
    const key = randomBytes(keyLength);
    for (const size of [0, 55, 64, 1000, 70_001]) {
      const data = randomBytes(size);
      const mac = createHmac('sha256', key).update(data).digest();
      assert.equal(blobsNative.hmacSha256Equals(key, data, mac), true, `key ${keyLength}, data ${size}`);
      mac[31]! ^= 1;
      assert.equal(blobsNative.hmacSha256Equals(key, data, mac), false);
      assert.equal(blobsNative.hmacSha256Equals(key, data, mac.subarray(0, 16)), false);
    }
  }
});
