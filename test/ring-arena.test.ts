import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingArena, type Region } from '../src/util/ring-arena.js';

const overlaps = (a: Region, b: Region) => a.bytes.buffer === b.bytes.buffer && a.bytes.byteOffset < b.bytes.byteOffset + b.bytes.length && b.bytes.byteOffset < a.bytes.byteOffset + a.bytes.length;

test('regions given back in order are reused round the ring', () => {
  // At most four regions of up to 280 bytes live, and as much again lost at the wrap.
  const ring = new RingArena(1500);
  const live: Region[] = [];
  for (let i = 0; i < 200; i++) {
    const region = ring.tryTake(100 + (i % 7) * 30);
    assert.ok(region, `region ${i} found no room`);
    for (const other of live) assert.ok(!overlaps(region, other), `region ${i} overlaps a live one`);
    live.push(region);
    if (live.length > 3) ring.release(live.shift()!);
  }
  assert.equal(ring.capacity, 1500);
});

test('a region given back early is reused only once the older ones are back too', () => {
  const ring = new RingArena(300);
  const a = ring.tryTake(100)!;
  const b = ring.tryTake(100)!;
  const c = ring.tryTake(100)!;
  ring.release(b);
  assert.equal(ring.tryTake(100), undefined, 'no room while the oldest is out');
  ring.release(a);
  const d = ring.tryTake(200)!;
  assert.ok(d && !overlaps(d, c));
  assert.equal(ring.capacity, 300);
});

test('take waits for room, and waiters are served in order', async () => {
  const ring = new RingArena(100, (size) => Buffer.from(new SharedArrayBuffer(size)));
  const a = ring.tryTake(60)!;
  assert.ok(a.bytes.buffer instanceof SharedArrayBuffer);
  const order: string[] = [];
  const large = ring.take(90).then((r) => (order.push('large'), r));
  const small = ring.take(10).then((r) => (order.push('small'), r));
  assert.equal(ring.tryTake(10), undefined, 'no taking ahead of a waiter, though 10 bytes would fit');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [], 'the small region waits behind the large one');
  ring.release(a);
  const l = await large;
  ring.release(l);
  const s = await small;
  assert.deepEqual(order, ['large', 'small']);
  assert.equal(s.bytes.length, 10);
  assert.throws(() => ring.take(101), RangeError);
});
