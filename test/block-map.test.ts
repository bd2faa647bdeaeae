import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { IntegrityError } from '../src/errors.js';
import { BlockMapReader, decodeMapNode, encodeMapNode, firstVisit, mapDepthFor, MutableBlockMap, type BlockMapRef, type MapExtent } from '../src/tree/block-map.js';
import { decodeTree, encodeTree, type Node } from '../src/tree/node.js';

/** Map nodes by the hex of their SHA-256, counting saves and loads. */
class MemoryStore {
  readonly nodes = new Map<string, Buffer>();
  saves = 0;
  loads = 0;
  readonly save = async (plain: Buffer): Promise<Buffer> => {
    this.saves++;
    const id = createHash('sha256').update(plain).digest();
    this.nodes.set(id.toString('hex'), Buffer.from(plain));
    return id;
  };
  readonly load = async (id: Buffer): Promise<Buffer> => {
    this.loads++;
    const plain = this.nodes.get(id.toString('hex'));
    if (!plain) throw new IntegrityError(`map node ${id.toString('hex').slice(0, 12)}`, 'missing');
    return plain;
  };
}

/** A data blob ID standing for block content `n`. */
function blob(n: number): Buffer {
  return createHash('sha256').update(`block ${n}`).digest();
}

async function build(store: MemoryStore, depth: number, blocks: Iterable<[number, number]>): Promise<BlockMapRef> {
  const map = MutableBlockMap.create(depth, 65536);
  for (const [block, content] of blocks) await map.set(block, blob(content));
  return map.persist(store.save);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function leaf(entries: [number, Buffer][]): Buffer {
  return encodeMapNode({ level: 0, slots: Uint16Array.from(entries.map((e) => e[0])), ids: Buffer.concat(entries.map((e) => e[1])) });
}

function inner(level: number, entries: [number, Buffer, number][]): Buffer {
  return encodeMapNode({ level, slots: Uint16Array.from(entries.map((e) => e[0])), ids: Buffer.concat(entries.map((e) => e[1])), blocks: Float64Array.from(entries.map((e) => e[2])) });
}

describe('map node codec', () => {
  test('round trip of a leaf and an inner node', () => {
    const l = decodeMapNode(leaf([[0, blob(0)], [5, blob(5)], [1023, blob(9)]]), 0);
    assert.deepEqual([...l.slots], [0, 5, 1023]);
    assert.equal(l.total, 3);
    assert.deepEqual(l.ids.subarray(32, 64), blob(5));
    const i = decodeMapNode(inner(2, [[3, blob(1), 7], [4, blob(2), 1024 * 1024]]), 2);
    assert.deepEqual([...i.blocks!], [7, 1024 * 1024]);
    assert.equal(i.total, 7 + 1024 * 1024);
    assert.equal(leaf([[1, blob(1)]]).length, 12 + 34);
    assert.equal(inner(1, [[1, blob(1), 1]]).length, 12 + 42);
  });

  test('every inconsistency is refused as damage', () => {
    const good = leaf([[1, blob(1)], [2, blob(2)]]);
    const mutate = (base: Buffer, f: (b: Buffer) => void) => {
      const b = Buffer.from(base);
      f(b);
      return b;
    };
    const cases: [string, Buffer, number][] = [
      ['magic', mutate(good, (b) => (b[0] = 0x7b)), 0],
      ['version', mutate(good, (b) => (b[4] = 2)), 0],
      ['level', good, 1],
      ['bits', mutate(good, (b) => (b[6] = 9)), 0],
      ['reserved', mutate(good, (b) => (b[7] = 1)), 0],
      ['count too large', mutate(good, (b) => b.writeUInt32LE(1025, 8)), 0],
      ['count against length', mutate(good, (b) => b.writeUInt32LE(3, 8)), 0],
      ['truncated', good.subarray(0, good.length - 1), 0],
      ['short header', good.subarray(0, 8), 0],
      ['order', mutate(good, (b) => b.writeUInt16LE(2, 12)), 0],
      ['slot range', mutate(good, (b) => b.writeUInt16LE(1024, 12 + 34)), 0],
      ['child of no blocks', mutate(inner(1, [[0, blob(0), 1]]), (b) => b.writeBigUInt64LE(0n, 12 + 34)), 1],
      ['child of more blocks than its slot holds', mutate(inner(1, [[0, blob(0), 1]]), (b) => b.writeBigUInt64LE(1025n, 12 + 34)), 1],
      ['huge count', mutate(inner(3, [[0, blob(0), 1]]), (b) => b.writeBigUInt64LE(2n ** 63n, 12 + 34)), 3],
    ];
    for (const [what, bytes, level] of cases) assert.throws(() => decodeMapNode(bytes, level), IntegrityError, what);
    // A JSON tree is never a map node, nor the other way round.
    assert.throws(() => decodeMapNode(encodeTree([]), 0), IntegrityError);
    assert.throws(() => decodeTree(good), IntegrityError);
  });

  test('depth for a size', () => {
    assert.equal(mapDepthFor(0, 65536), 1);
    assert.equal(mapDepthFor(1024 * 65536, 65536), 1);
    assert.equal(mapDepthFor(1024 * 65536 + 1, 65536), 2);
    assert.equal(mapDepthFor(2 ** 30, 65536), 2);
    assert.equal(mapDepthFor(2 ** 48, 65536), 4);
    assert.equal(mapDepthFor(2 ** 56, 65536), 4);
    assert.equal(mapDepthFor(2 ** 56 + 65536, 65536), 5);
  });
});

describe('block map', () => {
  test('set, persist, read back through lookup, extents and walk', async () => {
    const store = new MemoryStore();
    const blocks: [number, number][] = [[0, 0], [1, 1], [1023, 2], [1024, 3], [5_000_000, 4], [2 ** 32 - 1, 5]];
    const ref = await build(store, 4, blocks);
    const reader = new BlockMapReader(ref, store.load);
    for (const [b, c] of blocks) assert.deepEqual(await reader.lookup(b), blob(c));
    assert.equal(await reader.lookup(2), null);
    assert.equal(await reader.lookup(2 ** 32 - 2), null);
    assert.equal(await reader.allocatedBlocks(), blocks.length);
    const extents = await collect(reader.extents(0, 2 ** 32));
    const expected: MapExtent[] = [
      { block: 0, count: 1, id: blob(0) },
      { block: 1, count: 1, id: blob(1) },
      { block: 2, count: 1021, id: null },
      { block: 1023, count: 1, id: blob(2) },
      { block: 1024, count: 1, id: blob(3) },
      { block: 1025, count: 5_000_000 - 1025, id: null },
      { block: 5_000_000, count: 1, id: blob(4) },
      { block: 5_000_001, count: 2 ** 32 - 1 - 5_000_001, id: null },
      { block: 2 ** 32 - 1, count: 1, id: blob(5) },
    ];
    assert.deepEqual(extents, expected);
    assert.deepEqual(await collect(reader.extents(3, 1024)), [{ block: 3, count: 1020, id: null }, { block: 1023, count: 1, id: blob(2) }]);
    assert.deepEqual(await collect(reader.extents(5_000_000, 5_000_001)), [{ block: 5_000_000, count: 1, id: blob(4) }]);
    const seenBlocks: number[] = [];
    const levels: number[] = [];
    await reader.walk(
      (_id, level) => (levels.push(level), true),
      (id, block) => {
        seenBlocks.push(block);
        assert.deepEqual(id, blob(blocks.find((b) => b[0] === block)![1]));
      },
    );
    assert.deepEqual(seenBlocks, blocks.map((b) => b[0]));
    assert.equal(levels[0], 3);
    assert.equal(levels.length, store.nodes.size);
  });

  test('extents over an empty 2^32-block map and a sparse one are one run per hole', async () => {
    const store = new MemoryStore();
    const empty = await build(store, 4, []);
    assert.equal(store.saves, 1);
    const start = process.hrtime.bigint();
    assert.deepEqual(await collect(new BlockMapReader(empty, store.load).extents(0, 2 ** 40)), [{ block: 0, count: 2 ** 40, id: null }]);
    const sparse = await build(store, 4, [[2 ** 31, 1]]);
    assert.deepEqual(await collect(new BlockMapReader(sparse, store.load).extents(0, 2 ** 40)), [
      { block: 0, count: 2 ** 31, id: null },
      { block: 2 ** 31, count: 1, id: blob(1) },
      { block: 2 ** 31 + 1, count: 2 ** 40 - 2 ** 31 - 1, id: null },
    ]);
    assert.ok(process.hrtime.bigint() - start < 1_000_000_000n, 'extents over holes iterate nodes, not blocks');
  });

  test('a persist writes exactly the nodes on changed paths', async () => {
    const store = new MemoryStore();
    const ref = await build(store, 4, Array.from({ length: 3000 }, (_, i) => [i, i] as [number, number]));
    assert.equal(store.saves, 3 + 1 + 1 + 1, 'three leaves, their parent and its two ancestors');
    store.saves = 0;
    const map = MutableBlockMap.open(ref, store.load);
    assert.equal(map.changed, false);
    assert.deepEqual(await map.persist(store.save), ref);
    assert.equal(store.saves, 0);
    await map.set(5, blob(5));
    assert.equal(map.changed, false, 'setting the same ID changes nothing');
    await map.set(2500, blob(-1));
    await map.set(2501, null);
    assert.equal(map.changed, true);
    const next = await map.persist(store.save);
    assert.equal(map.changed, false);
    assert.equal(store.saves, 4, 'one leaf and its three ancestors');
    const reader = new BlockMapReader(next, store.load);
    assert.deepEqual(await reader.lookup(2500), blob(-1));
    assert.equal(await reader.lookup(2501), null);
    assert.deepEqual(await reader.lookup(2502), blob(2502));
    assert.equal(await reader.allocatedBlocks(), 2999);
    // Unchanged subtrees kept their IDs: the walk of the new map meets the old leaves.
    const oldNodes = new Set<string>();
    await new BlockMapReader(ref, store.load).walk((id) => (oldNodes.add(id.toString('hex')), true), () => undefined);
    let shared = 0;
    let newBlocks = 0;
    await reader.walk(
      (id) => {
        if (!oldNodes.has(id.toString('hex'))) return true;
        shared++;
        return false;
      },
      () => newBlocks++,
    );
    assert.equal(shared, 2, 'the two untouched leaves');
    assert.equal(newBlocks, 2999 - 2048);
  });

  test('emptied nodes disappear; an empty map is an empty root', async () => {
    const store = new MemoryStore();
    const ref = await build(store, 3, [[7, 1], [2 ** 25, 2]]);
    const map = MutableBlockMap.open(ref, store.load);
    await map.set(7, null);
    await map.set(2 ** 25, null);
    await map.set(9, null);
    const empty = await map.persist(store.save);
    const root = decodeMapNode(await store.load(empty.root), 2);
    assert.equal(root.total, 0);
    assert.equal(root.slots.length, 0);
    assert.deepEqual(empty.root, (await build(new MemoryStore(), 3, [])).root);
  });

  test('a fork and its origin change independently', async () => {
    const store = new MemoryStore();
    const a = MutableBlockMap.create(2, 65536);
    for (let i = 0; i < 10; i++) await a.set(i * 1000, blob(i));
    const b = a.fork();
    await a.set(0, blob(100));
    await b.set(0, null);
    await b.set(5000, blob(200));
    await a.set(1, blob(101));
    assert.deepEqual(await a.get(0), blob(100));
    assert.equal(await b.get(0), null);
    assert.deepEqual(await b.get(5000), blob(200));
    assert.deepEqual(await a.get(5000), blob(5));
    assert.equal(await b.get(1), null);
    const ra = new BlockMapReader(await a.persist(store.save), store.load);
    const rb = new BlockMapReader(await b.persist(store.save), store.load);
    assert.equal(await ra.allocatedBlocks(), 11);
    assert.equal(await rb.allocatedBlocks(), 9);
    // Forks of a stored map, too: each loads on demand and copies what it changes.
    const opened = MutableBlockMap.open(await a.persist(store.save), store.load);
    const c = opened.fork();
    await c.set(1, null);
    assert.deepEqual(await opened.get(1), blob(101));
    assert.equal(await c.get(1), null);
    assert.equal(opened.changed, false);
    assert.equal(c.changed, true);
  });

  test('a hostile map gives IntegrityError, never a crash or a wrong answer', async () => {
    const store = new MemoryStore();
    const leafId = await store.save(leaf([[0, blob(0)]]));
    // A root that claims 1024 children of a million blocks each over a leaf of one block.
    const liar = await store.save(inner(1, Array.from({ length: 1024 }, (_, i) => [i, leafId, 1024] as [number, Buffer, number])));
    const reader = new BlockMapReader({ root: liar, blockSize: 65536, depth: 2 }, store.load);
    assert.equal(await reader.allocatedBlocks(), 1024 * 1024);
    await assert.rejects(reader.lookup(0), IntegrityError);
    await assert.rejects(collect(reader.extents(0, 2 ** 20)), IntegrityError);
    await assert.rejects(reader.walk(() => true, () => undefined), IntegrityError);
    // A node stored for one level does not pass at another: levels go down, so no cycles.
    const self = await store.save(inner(1, [[0, leafId, 1]]));
    await assert.rejects(new BlockMapReader({ root: self, blockSize: 65536, depth: 3 }, store.load).lookup(0), IntegrityError);
    const loop = await store.save(inner(1, [[0, self, 1]]));
    await assert.rejects(new BlockMapReader({ root: loop, blockSize: 65536, depth: 2 }, store.load).lookup(0), IntegrityError);
    // An empty node below the root.
    const emptyLeaf = await store.save(leaf([]));
    const overEmpty = await store.save(inner(1, [[0, emptyLeaf, 1]]));
    await assert.rejects(new BlockMapReader({ root: overEmpty, blockSize: 65536, depth: 2 }, store.load).lookup(5), IntegrityError);
    await assert.rejects(MutableBlockMap.open({ root: overEmpty, blockSize: 65536, depth: 2 }, store.load).set(5, blob(1)), IntegrityError);
    // Not a map node at all.
    const tree = await store.save(encodeTree([]));
    await assert.rejects(new BlockMapReader({ root: tree, blockSize: 65536, depth: 1 }, store.load).allocatedBlocks(), IntegrityError);
  });

  test('the node cache stays within its budget and reloads what it dropped', async () => {
    const store = new MemoryStore();
    const ref = await build(store, 2, Array.from({ length: 64 }, (_, i) => [i * 1024, i] as [number, number]));
    const reader = new BlockMapReader(ref, store.load, { cacheBytes: 10_000 });
    store.loads = 0;
    for (let round = 0; round < 2; round++) for (let i = 0; i < 64; i++) assert.deepEqual(await reader.lookup(i * 1024), blob(i));
    assert.ok(store.loads > 64, `evicted leaves are loaded again (${store.loads} loads)`);
    const big = new BlockMapReader(ref, store.load);
    store.loads = 0;
    for (let round = 0; round < 2; round++) for (let i = 0; i < 64; i++) await big.lookup(i * 1024);
    assert.equal(store.loads, 65);
  });
});

describe('content as a block map in a tree', () => {
  const node = (content: unknown, extra: Record<string, unknown> = {}) =>
    Buffer.from(JSON.stringify({ nodes: [{ name: 'vol1', type: 'file', mode: 384, uid: 0, gid: 0, mtime: '1', ctime: '1', inode: '1', device: '1', links: 1, size: 2 ** 48, content, sparse: true, image: { blockSize: 512 }, ...extra }] }));
  const map = { map: 'ab'.repeat(32), blockSize: 65536, depth: 4 };

  test('decodes and encodes back to the same bytes', () => {
    const [n] = decodeTree(node(map));
    assert.deepEqual(n!.blockMap, { root: Buffer.from('ab'.repeat(32), 'hex'), blockSize: 65536, depth: 4 });
    assert.equal(n!.content, undefined);
    const again = encodeTree([n as Node]);
    assert.deepEqual(decodeTree(again), [n]);
    assert.ok(again.includes(`"content":{"map":"${'ab'.repeat(32)}","blockSize":65536,"depth":4}`));
  });

  test('refuses what no writer makes', () => {
    const bad: [string, Buffer][] = [
      ['block size not a power of two', node({ ...map, blockSize: 65535 })],
      ['block size too small', node({ ...map, blockSize: 2048 })],
      ['block size too large', node({ ...map, blockSize: 2 * 1024 * 1024 })],
      ['depth 0', node({ ...map, depth: 0 })],
      ['depth 7', node({ ...map, depth: 7 })],
      ['depth too small for the size', node({ ...map, depth: 3 })],
      ['short ID', node({ ...map, map: 'ab' })],
      ['extra key', node({ ...map, extra: 1 })],
      ['missing key', node({ map: map.map, blockSize: 65536 })],
      ['keys out of order', node({ blockSize: 65536, map: map.map, depth: 4 })],
      ['on a directory', node(map, { type: 'dir' })],
      ['with a subtree', node(map, { subtree: 'cd'.repeat(32) })],
      ['null', node(null)],
      ['a string', node('ab'.repeat(32))],
    ];
    for (const [what, bytes] of bad) assert.throws(() => decodeTree(bytes), IntegrityError, what);
  });
});

describe('a map sharing one subtree everywhere', () => {
  test('is walked in its stored size with firstVisit, and its claim is consistent', async () => {
    const store = new MemoryStore();
    let id = await store.save(leaf(Array.from({ length: 1024 }, (_, i) => [i, blob(i)] as [number, Buffer])));
    let below = 1024;
    for (let level = 1; level <= 3; level++) {
      id = await store.save(inner(level, Array.from({ length: 1024 }, (_, i) => [i, id, below] as [number, Buffer, number])));
      below *= 1024;
    }
    const reader = new BlockMapReader({ root: id, blockSize: 65536, depth: 4 }, store.load);
    assert.equal(await reader.allocatedBlocks(), 2 ** 40);
    let nodes = 0;
    let blocks = 0;
    const first = firstVisit();
    await reader.walk(
      (node) => (nodes++, first(node)),
      () => blocks++,
    );
    assert.equal(nodes, 1 + 3 * 1024, 'each node entered once, each reference seen');
    assert.equal(blocks, 1024);
    assert.deepEqual(await reader.lookup(2 ** 40 - 1), blob(1023));
  });
});
