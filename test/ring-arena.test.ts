import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingArena, type Region } from '../src/util/ring-arena.js';

const overlaps = (a: Region, b: Region) => a.bytes.buffer === b.bytes.buffer && a.bytes.byteOffset < b.bytes.byteOffset + b.bytes.length && b.bytes.byteOffset < a.bytes.byteOffset + a.bytes.length;

test('regions given back in order are reused round the ring without growing it', () => {
  // At most four regions of up to 280 bytes live, and as much again lost at the wrap.
  const ring = new RingArena(1500);
  const live: Region[] = [];
  for (let i = 0; i < 200; i++) {
    const region = ring.take(100 + (i % 7) * 30);
    for (const other of live) assert.ok(!overlaps(region, other), `region ${i} overlaps a live one`);
    live.push(region);
    if (live.length > 3) ring.release(live.shift()!);
  }
  assert.equal(ring.capacity, 1500);
});

test('a region given back early is reused only once the older ones are back too', () => {
  const ring = new RingArena(300);
  const a = ring.take(100);
  const b = ring.take(100);
  const c = ring.take(100);
  ring.release(b);
  const d = ring.take(100);
  assert.ok(![a, c].some((r) => overlaps(d, r)));
  assert.ok(ring.capacity > 300, 'no room while the oldest is out: the ring grew');
  ring.release(a);
  ring.release(c);
  ring.release(d);
  const e = ring.take(ring.capacity);
  assert.equal(e.bytes.length, ring.capacity);
});

test('a ring too small for the load grows and leaves the regions it lent intact', () => {
  const ring = new RingArena(64);
  const held = Array.from({ length: 10 }, (_, i) => {
    const region = ring.take(50);
    region.bytes.fill(i);
    return region;
  });
  held.forEach((r, i) => assert.ok(r.bytes.every((b) => b === i), `region ${i} was overwritten`));
  assert.ok(ring.capacity >= 100);
  for (const r of held) ring.release(r);
});

test('a ring of shared memory stays shared when it grows (the chunk ring that workers read)', () => {
  const ring = new RingArena(64, (size) => Buffer.from(new SharedArrayBuffer(size)));
  const first = ring.take(40);
  const second = ring.take(100);
  assert.ok(first.bytes.buffer instanceof SharedArrayBuffer);
  assert.ok(second.bytes.buffer instanceof SharedArrayBuffer);
  assert.notEqual(first.bytes.buffer, second.bytes.buffer, 'the second region came from a grown ring');
  assert.ok(ring.capacity >= 128);
});

test('tryTake lends only what fits now, and never grows the ring', () => {
  const ring = new RingArena(100);
  const a = ring.tryTake(60)!;
  assert.equal(ring.tryTake(60), undefined, 'no room while the first region is out');
  assert.equal(ring.capacity, 100);
  ring.release(a);
  assert.ok(ring.tryTake(60), 'room again once it is back');
});
