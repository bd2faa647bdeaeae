import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import { IntegrityError } from '../src/errors.js';
import { byName, decodeTree, encodeTree, type Node, type NodeType } from '../src/tree/node.js';
import { unchangedTree } from '../src/tree/unchanged.js';

/**
 * The encoder scrate shipped first, kept as the reference: tree IDs are hashes of its bytes,
 * so encodeTree must write exactly what it wrote.
 */
function referenceEncode(nodes: Node[]): Buffer {
  const toJson = (n: Node) => {
    const j: Record<string, unknown> = {
      ...(isUtf8(n.name) ? { name: n.name.toString('utf8') } : { nameRaw: n.name.toString('base64') }),
      type: n.type,
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      mtime: n.mtimeNs.toString(),
      ctime: n.ctimeNs.toString(),
      inode: n.inode.toString(),
      device: n.deviceId.toString(),
      links: n.links,
      size: n.size,
    };
    if (n.user !== undefined) j.user = n.user;
    if (n.group !== undefined) j.group = n.group;
    if (n.content) j.content = n.content.map((id) => id.toString('hex'));
    if (n.blockMap) j.content = { map: n.blockMap.root.toString('hex'), blockSize: n.blockMap.blockSize, depth: n.blockMap.depth };
    if (n.subtree) j.subtree = n.subtree.toString('hex');
    if (n.linkTarget) {
      if (isUtf8(n.linkTarget)) j.linkTarget = n.linkTarget.toString('utf8');
      else j.linkTargetRaw = n.linkTarget.toString('base64');
    }
    if (n.rdev !== undefined) j.rdev = n.rdev.toString();
    if (n.sparse) j.sparse = true;
    if (n.image) j.image = { blockSize: n.image.blockSize };
    return j;
  };
  const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
  return Buffer.from(JSON.stringify({ nodes: sorted.map(toJson) }));
}

/** mulberry32: reproducible cases, so that a failure can be replayed from its seed. */
function generator(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const chance = (p: number) => next() < p;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const u64 = () => (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32));
  return { int, chance, pick, bytes, u64 };
}
type Gen = ReturnType<typeof generator>;

/** Text that exercises JSON escaping: quotes, backslashes, controls, DEL, non-ASCII, astral, U+2028. */
const SPECIAL = ['"', '\\', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', 'ß', '日本', '😀', '\u2028', '\ufffd', '/', ' '];

function text(g: Gen): string {
  let s = '';
  for (let i = 0, n = 1 + g.int(12); i < n; i++) s += g.chance(0.3) ? g.pick(SPECIAL) : String.fromCharCode(0x61 + g.int(26));
  return s;
}

/** Names and link targets: mostly plain, some needing escapes, some not UTF-8 at all. */
function byteString(g: Gen): Buffer {
  const r = g.int(10);
  if (r < 2) return g.bytes(1 + g.int(20));
  if (r < 3) return Buffer.concat([Buffer.from(text(g)), Buffer.from([0xff, 0xc0, 0x80]).subarray(g.int(3))]);
  return Buffer.from(r < 6 ? text(g) : `file-${g.int(100000)}.c`);
}

const TYPES: readonly NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev'];

/** A node as decodeTree would return it: optional fields absent rather than false or undefined. */
function randomNode(g: Gen, name: Buffer): Node {
  const type = g.pick(TYPES);
  const n: Node = {
    name,
    type,
    mode: g.int(0o10000),
    uid: g.chance(0.5) ? 0 : g.int(2 ** 32),
    gid: g.chance(0.5) ? 0 : g.int(2 ** 32),
    mtimeNs: g.chance(0.1) ? -g.u64() : g.u64() >> BigInt(g.int(64)),
    ctimeNs: g.u64(),
    inode: g.u64() >> BigInt(g.int(64)),
    deviceId: g.u64() >> BigInt(g.int(64)),
    links: 1 + g.int(5),
    size: g.chance(0.5) ? g.int(1 << 20) : g.int(2 ** 53),
  };
  if (g.chance(0.7)) n.user = g.chance(0.7) ? 'root' : text(g);
  if (g.chance(0.7)) n.group = g.chance(0.7) ? 'users' : text(g);
  if (type === 'file' && g.chance(0.2)) n.blockMap = { root: g.bytes(32), blockSize: 4096 << g.int(9), depth: 6 };
  else if (type === 'file' || g.chance(0.05)) n.content = Array.from({ length: g.int(5) }, () => g.bytes(32));
  if (type === 'dir' || (!n.blockMap && g.chance(0.05))) n.subtree = g.bytes(32);
  if (type === 'symlink' || g.chance(0.05)) n.linkTarget = g.chance(0.1) ? Buffer.alloc(0) : byteString(g);
  if (type === 'fifo' || type === 'chardev' || type === 'blockdev' || g.chance(0.05)) n.rdev = g.u64() >> BigInt(g.int(64));
  if (g.chance(0.2)) n.sparse = true;
  if (g.chance(0.1)) n.image = { blockSize: g.pick([512, 4096]) };
  return n;
}

/** What decodeTree accepts as a name: one path component. */
function isComponent(name: Buffer): boolean {
  return name.length > 0 && !name.includes(0x2f) && !name.includes(0) && name.toString('latin1') !== '.' && name.toString('latin1') !== '..';
}

function randomTree(g: Gen): Node[] {
  const names = new Map<string, Buffer>();
  for (let i = 0, n = g.int(12); i < n; i++) {
    const name = byteString(g);
    if (isComponent(name)) names.set(name.toString('latin1'), name);
  }
  return [...names.values()].map((name) => randomNode(g, name));
}

const CASES = 3000;

describe('tree encoding', () => {
  test('writes the reference bytes for random trees', () => {
    const g = generator(1);
    for (let i = 0; i < CASES; i++) {
      const nodes = randomTree(g);
      assert.deepEqual(encodeTree(nodes), referenceEncode(nodes), `case ${i}`);
    }
  });

  test('writes the reference bytes for numbers JSON cannot hold and lone surrogates', () => {
    const g = generator(2);
    const node = { ...randomNode(g, Buffer.from('x')), size: Number.NaN, links: Infinity, mode: -0, user: 'a\ud800b', group: '\udc00' };
    assert.deepEqual(encodeTree([node]), referenceEncode([node]));
  });

  test('decodes what it encodes', () => {
    const g = generator(3);
    for (let i = 0; i < CASES; i++) {
      const nodes = randomTree(g);
      const encoded = encodeTree(nodes);
      const decoded = decodeTree(encoded);
      assert.deepEqual(decoded, [...nodes].sort(byName), `case ${i}`);
      assert.deepEqual(encodeTree(decoded), encoded, `case ${i}`);
    }
  });
});

describe('unchangedTree', () => {
  test('holds exactly when the fresh nodes encode to the stored tree', () => {
    const g = generator(4);
    let same = 0;
    for (let i = 0; i < CASES; i++) {
      const stored = decodeTree(encodeTree(randomTree(g)));
      const fresh = stored.map((n) => mutate(g, n)).reverse();
      const unchanged = unchangedTree(fresh, stored);
      assert.equal(unchanged, encodeTree(fresh).equals(encodeTree(stored)), `case ${i}`);
      if (unchanged) same++;
    }
    // Both outcomes must be exercised for the property to mean anything.
    assert.ok(same > CASES / 10 && same < CASES - CASES / 10, `${same} of ${CASES} unchanged`);
  });

  test('a different number of entries is a change', () => {
    const g = generator(5);
    const stored = decodeTree(encodeTree([randomNode(g, Buffer.from('a')), randomNode(g, Buffer.from('b'))]));
    assert.equal(unchangedTree(stored.slice(1), stored), false);
    assert.equal(unchangedTree([], []), true);
  });
});

/**
 * A copy of the node as the archiver would build it afresh (new objects, the parent's content
 * list reused as is), usually with one field changed.
 */
function mutate(g: Gen, n: Node): Node {
  const c: Node = { ...n, name: Buffer.from(n.name) };
  if (n.subtree) c.subtree = Buffer.from(n.subtree);
  if (n.linkTarget) c.linkTarget = Buffer.from(n.linkTarget);
  if (n.image) c.image = { ...n.image };
  if (n.content && g.chance(0.5)) c.content = n.content.map((id) => Buffer.from(id));
  if (n.blockMap) c.blockMap = { ...n.blockMap, root: Buffer.from(n.blockMap.root) };
  if (g.chance(0.8)) return c;
  const bump = (x: bigint) => x + 1n;
  const changes: Array<() => void> = [
    () => (c.name = Buffer.concat([c.name, Buffer.from('~')])),
    () => (c.type = c.type === 'file' ? 'dir' : 'file'),
    () => (c.mode ^= 1),
    () => (c.uid += 1),
    () => (c.gid += 1),
    () => (c.user = c.user === undefined ? 'root' : undefined),
    () => (c.group = c.group === undefined ? 'users' : c.group + 'x'),
    () => (c.mtimeNs = bump(c.mtimeNs)),
    () => (c.ctimeNs = bump(c.ctimeNs)),
    () => (c.inode = bump(c.inode)),
    () => (c.deviceId = bump(c.deviceId)),
    () => (c.links += 1),
    () => (c.size += 1),
    () => (c.content = c.content ? c.content.slice(1) : [g.bytes(32)]),
    () => (c.content = c.content?.length ? [g.bytes(32), ...c.content.slice(1)] : undefined),
    () => (c.subtree = c.subtree ? undefined : g.bytes(32)),
    () => (c.subtree = g.bytes(32)),
    () => (c.linkTarget = c.linkTarget ? Buffer.concat([c.linkTarget, Buffer.from('x')]) : Buffer.alloc(0)),
    () => (c.rdev = c.rdev === undefined ? 0n : undefined),
    () => (c.sparse = !c.sparse),
    () => (c.image = c.image ? undefined : { blockSize: 512 }),
    () => (c.image = c.image ? { blockSize: c.image.blockSize * 2 } : undefined),
    () => (c.blockMap = c.blockMap ? { ...c.blockMap, root: g.bytes(32) } : undefined),
    () => (c.blockMap = c.blockMap ? { ...c.blockMap, blockSize: c.blockMap.blockSize * 2 } : undefined),
    () => (c.blockMap = c.blockMap ? { ...c.blockMap, depth: 5 } : undefined),
  ];
  g.pick(changes)();
  return c;
}

describe('decodeTree refuses what encodeTree never writes', () => {
  /** A valid node's JSON form, with fields replaced or (as undefined) removed. */
  const node = (name: string, fields: Record<string, unknown> = {}): Record<string, unknown> => {
    const base = { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', ctime: '1', inode: '1', device: '1', links: 1, size: 0, content: [] };
    return { ...base, ...fields };
  };
  const tree = (...nodes: unknown[]) => Buffer.from(JSON.stringify({ nodes }));
  const refused = (data: Buffer, message: RegExp) =>
    assert.throws(() => decodeTree(data), (err: unknown) => err instanceof IntegrityError && message.test(err.message) && !err.message.includes('\n'), `${data.toString()} refused with ${message}`);

  test('a valid tree decodes', () => {
    assert.deepEqual(decodeTree(tree(node('a'), node('b'))).map((n) => n.name.toString()), ['a', 'b']);
  });

  test('names: duplicates, out of byte order, not one path component', () => {
    refused(tree(node('x'), node('x', { type: 'dir', subtree: 'ab'.repeat(32) })), /^invalid tree: duplicate name "x"$/);
    refused(tree(node('b'), node('a')), /^invalid tree: names out of order: "a" after "b"$/);
    // By bytes: 'B' (0x42) before 'a' (0x61).
    refused(tree(node('a'), node('B')), /out of order/);
    for (const name of ['', '.', '..', 'a/b', '/', 'a\u0000b']) refused(tree(node(name)), /is not a single path component/);
    for (const raw of ['Li4=', 'YS9i', 'AA==']) refused(tree({ ...node('', { nameRaw: raw }), name: undefined }), /is not a single path component/); // "..", "a/b", NUL
    for (const name of [123, null, ['/'], { toString: 'x' }]) refused(tree(node('', { name })), /without a name/);
  });

  test('fields of the wrong type or out of range', () => {
    const cases: [string, unknown][] = [
      ['type', 'socket'], ['type', 7], ['type', undefined],
      ['mode', -1], ['mode', 0o10000], ['mode', 1.5], ['mode', '644'],
      ['uid', -1], ['uid', 2 ** 32], ['gid', null],
      ['links', -1], ['size', -1], ['size', 1e300], ['size', '10'],
      ['mtime', 'yesterday'], ['mtime', 12], ['ctime', undefined], ['inode', {}], ['device', '1.5'],
      ['user', 0], ['group', ['x']],
      ['content', 'ab'.repeat(32)], ['content', ['zz'.repeat(32)]], ['content', ['ab']], ['content', [null]],
      ['subtree', 'xyz'], ['subtree', 5],
      ['linkTarget', 5], ['linkTargetRaw', false], ['rdev', 'x'], ['sparse', 'yes'],
      ['image', null], ['image', { blockSize: 0 }], ['image', { blockSize: '512' }],
    ];
    for (const [field, value] of cases) {
      const what = field === 'linkTargetRaw' ? 'linkTarget' : field;
      refused(tree(node('f', { [field]: value })), new RegExp(`^invalid tree: "f": bad ${what}$`));
    }
  });

  test('not a tree at all', () => {
    refused(Buffer.from('{"nodes":['), /not JSON/);
    for (const text of ['null', '{}', '[]', '{"nodes":{}}', '"nodes"']) refused(Buffer.from(text), /no list of nodes/);
    for (const item of [null, 1, 'x', []]) refused(tree(item), /not an object|without a name/);
  });
});
