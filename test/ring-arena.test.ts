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

test('split and grow: a window read into and cut from, as readChunks does, never overlaps what is lent and keeps its bytes', async () => {
  const ring = new RingArena(1000);
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  /** Every region lent and not given back, with the byte it was filled with. */
  const live = new Map<Region, number>();
  const lend = (region: Region, fill: number) => {
    for (const other of live.keys()) assert.ok(!overlaps(region, other), `[${region.start}, +${region.bytes.length}) overlaps [${other.start}, +${other.bytes.length})`);
    region.bytes.fill(fill);
    live.set(region, fill);
  };
  const giveBack = (region: Region) => {
    assert.ok(region.bytes.every((b) => b === live.get(region)), 'a lent region was written by someone else');
    live.delete(region);
    ring.release(region);
  };
  let window = await ring.take(200);
  let kept = 0;
  window.bytes.fill(1);
  for (let step = 0; step < 5000; step++) {
    const op = random(4);
    if (op === 0 && kept > 0) {
      const [chunk, rest] = ring.split(window, 1 + random(kept));
      lend(chunk, 2 + (step % 200));
      kept -= chunk.bytes.length;
      window = rest;
    } else if (op === 1) {
      const size = Math.min(ring.capacity, kept + 1 + random(400));
      const grown = ring.grow(window, kept, size);
      let done: Region | undefined;
      void grown.then((r) => (done = r));
      // Other regions come back (as workers finish) until the window has room.
      while (!done) {
        await new Promise((resolve) => setImmediate(resolve));
        const others = [...live.keys()];
        if (!done && others.length > 0) giveBack(others[random(others.length)]!);
        else if (!done) assert.fail('a window alone in the ring could not grow');
      }
      assert.equal(done.bytes.length, size);
      assert.ok(done.bytes.subarray(0, kept).every((b) => b === 1), 'grow lost the bytes it was to keep');
      for (const other of live.keys()) assert.ok(!overlaps(done, other));
      window = done;
      window.bytes.fill(1, kept);
      kept = size;
    } else if (op === 2 && live.size > 0) {
      const others = [...live.keys()];
      giveBack(others[random(others.length)]!);
    } else if (op === 3) {
      const region = ring.tryTake(1 + random(150));
      if (region) {
        assert.ok(!overlaps(region, window) || window.bytes.length === 0);
        lend(region, 250);
      }
    }
  }
});
