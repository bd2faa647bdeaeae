import { IntegrityError } from '../errors.js';
import { ID_BYTES } from '../repository/ids.js';

/**
 * A volume's content: a copy-on-write radix tree over block numbers (FORMAT §13). Its nodes are
 * tree blobs with a binary plaintext ("SCMN", where JSON trees start with `{`); a leaf maps
 * slots to data blob IDs, an inner node maps slots to child nodes with the number of present
 * blocks below each. An absent slot is all zeros, so an empty 256 TiB volume is one empty node.
 */
export interface BlockMapRef {
  /** The tree blob ID of the root map node, at level depth − 1. */
  root: Buffer;
  blockSize: number;
  depth: number;
}

export const MAP_FANOUT_BITS = 10;
const FANOUT = 1 << MAP_FANOUT_BITS;
export const MAP_MAX_DEPTH = 6;
const MAGIC = Buffer.from('SCMN', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 12;
const LEAF_ENTRY_BYTES = 2 + ID_BYTES;
const INNER_ENTRY_BYTES = 2 + ID_BYTES + 8;

/** The depth of a map over `size` bytes: the fewest levels of 1024 slots that hold every block. */
export function mapDepthFor(size: number, blockSize: number): number {
  const blocks = Math.ceil(size / blockSize);
  let depth = 1;
  while (FANOUT ** depth < blocks) depth++;
  return depth;
}

/** How many blocks the map of a depth can address: 1024^depth, capped where numbers stay exact. */
export function mapCapacity(depth: number): number {
  return Math.min(FANOUT ** depth, Number.MAX_SAFE_INTEGER);
}

/** The blocks below one slot of a node at `level`. */
function slotSpan(level: number): number {
  return FANOUT ** level;
}

function slotOf(block: number, level: number): number {
  return Math.floor(block / slotSpan(level)) % FANOUT;
}

export type LoadMapNode = (id: Buffer) => Promise<Buffer>;
export type SaveMapNode = (plain: Buffer) => Promise<Buffer>;

/**
 * A decoded map node. `ids` holds count × 32 bytes (data blob IDs in a leaf, child node IDs in an
 * inner node); `blocks` (inner nodes only) the present blocks below each child.
 */
export interface MapNode {
  readonly level: number;
  readonly slots: Uint16Array;
  readonly ids: Buffer;
  readonly blocks?: Float64Array;
  /** Present blocks below this node. */
  readonly total: number;
}

export function mapNodeId(node: MapNode, i: number): Buffer {
  return node.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
}

/** The node's bytes; the caller's entries must already be what decodeMapNode accepts. */
export function encodeMapNode(node: Omit<MapNode, 'total'>): Buffer {
  const count = node.slots.length;
  const inner = node.level > 0;
  if (inner !== (node.blocks !== undefined) || node.ids.length !== count * ID_BYTES || count > FANOUT) throw new RangeError('malformed map node');
  const out = Buffer.alloc(HEADER_BYTES + count * (inner ? INNER_ENTRY_BYTES : LEAF_ENTRY_BYTES));
  MAGIC.copy(out, 0);
  out[4] = VERSION;
  out[5] = node.level;
  out[6] = MAP_FANOUT_BITS;
  out.writeUInt32LE(count, 8);
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (i > 0 && node.slots[i]! <= node.slots[i - 1]!) throw new RangeError('map node slots out of order');
    out.writeUInt16LE(node.slots[i]!, at);
    node.ids.copy(out, at + 2, i * ID_BYTES, (i + 1) * ID_BYTES);
    at += 2 + ID_BYTES;
    if (inner) {
      out.writeBigUInt64LE(BigInt(node.blocks![i]!), at);
      at += 8;
    }
  }
  return out;
}

function invalid(detail: string): never {
  throw new IntegrityError('invalid map node', detail);
}

/**
 * A map node from its stored bytes, checked in full: a repository may hold anything, and a node
 * accepted here cannot make a reader loop (levels only go down), index past its arrays or
 * believe a child holds more blocks than its slot can.
 */
export function decodeMapNode(plain: Buffer, expectedLevel: number): MapNode {
  if (plain.length < HEADER_BYTES || !plain.subarray(0, 4).equals(MAGIC)) invalid('not a map node');
  if (plain[4] !== VERSION) invalid(`version ${plain[4]} is not known`);
  const level = plain[5]!;
  if (level !== expectedLevel) invalid(`level ${level} where ${expectedLevel} belongs`);
  if (plain[6] !== MAP_FANOUT_BITS) invalid(`${plain[6]} bits per level`);
  if (plain[7] !== 0) invalid('reserved byte set');
  const count = plain.readUInt32LE(8);
  if (count > FANOUT) invalid(`${count} entries`);
  const inner = level > 0;
  if (plain.length !== HEADER_BYTES + count * (inner ? INNER_ENTRY_BYTES : LEAF_ENTRY_BYTES)) invalid(`${plain.length} bytes for ${count} entries`);
  const slots = new Uint16Array(count);
  const ids = Buffer.allocUnsafe(count * ID_BYTES);
  const blocks = inner ? new Float64Array(count) : undefined;
  const maxBelow = slotSpan(level);
  let total = inner ? 0 : count;
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const slot = plain.readUInt16LE(at);
    if (slot >= FANOUT) invalid(`slot ${slot} out of range`);
    if (i > 0 && slot <= slots[i - 1]!) invalid('slots out of order');
    slots[i] = slot;
    plain.copy(ids, i * ID_BYTES, at + 2, at + 2 + ID_BYTES);
    at += 2 + ID_BYTES;
    if (blocks) {
      const below = plain.readBigUInt64LE(at);
      at += 8;
      if (below === 0n || below > BigInt(maxBelow)) invalid(`a child of ${below} blocks`);
      blocks[i] = Number(below);
      total += blocks[i]!;
    }
  }
  if (total > Number.MAX_SAFE_INTEGER) invalid(`${total} blocks`);
  return { level, slots, ids, blocks, total };
}

/** Index of `slot` in the node's slots, or -(insertion point) - 1. */
function findSlot(slots: ArrayLike<number>, slot: number): number {
  let lo = 0;
  let hi = slots.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = slots[mid]!;
    if (s === slot) return mid;
    if (s < slot) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

function checkDepth(depth: number): void {
  if (!Number.isInteger(depth) || depth < 1 || depth > MAP_MAX_DEPTH) throw new RangeError(`map depth ${depth}`);
}

function checkBlock(block: number, depth: number): void {
  if (!Number.isSafeInteger(block) || block < 0 || block >= mapCapacity(depth)) throw new RangeError(`block ${block} outside a map of depth ${depth}`);
}

/** What a decoded node costs in memory, roughly: its arrays and the objects around them. */
function nodeBytes(node: MapNode): number {
  return 256 + node.slots.length * (2 + ID_BYTES + (node.blocks ? 8 : 0));
}

const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Decoded nodes by ID, least recently used out once past the budget. A load in flight is shared
 * by everyone asking; a failed one is forgotten, to be tried again. Keyed by 48 bits of the ID
 * (a number: string keys cost most of a cached lookup), the whole ID and the level checked: the
 * same bytes asked for at another level must fail, not hit, and a rare collision only misses.
 */
class NodeCache {
  private readonly entries = new Map<number, CacheEntry>();
  private bytes = 0;

  constructor(
    private readonly load: LoadMapNode,
    private readonly budget: number,
  ) {}

  /**
   * The node `id` at `level`, at once when it is cached; `blocks`, when known from its parent,
   * must be its total.
   */
  get(id: Buffer, level: number, blocks?: number): MapNode | Promise<MapNode> {
    const key = id.readUIntLE(0, 6);
    let entry = this.entries.get(key);
    if (entry && entry.level === level && entry.id.equals(id)) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      if (entry.value) return checkTotal(entry.value, id, blocks);
    } else {
      if (entry) this.drop(key, entry);
      entry = this.start(key, Buffer.from(id), level);
    }
    return entry.node.then((node) => checkTotal(node, id, blocks));
  }

  private start(key: number, id: Buffer, level: number): CacheEntry {
    const entry: CacheEntry = { id, level, node: this.load(id).then((plain) => decodeMapNode(plain, level)), bytes: 0 };
    this.entries.set(key, entry);
    entry.node.then(
      (node) => {
        if (this.entries.get(key) !== entry) return;
        entry.value = node;
        entry.bytes = nodeBytes(node);
        this.bytes += entry.bytes;
        this.trim(key);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry;
  }

  private drop(key: number, entry: CacheEntry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  private trim(keep: number): void {
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.budget) break;
      if (k !== keep && e.value) this.drop(k, e);
    }
  }
}

interface CacheEntry {
  id: Buffer;
  level: number;
  node: Promise<MapNode>;
  /** The node once loaded: a hit needs no await. */
  value?: MapNode;
  bytes: number;
}

function checkTotal(node: MapNode, id: Buffer, blocks: number | undefined): MapNode {
  if (blocks !== undefined && node.total !== blocks) invalid(`node ${id.toString('hex').slice(0, 12)} holds ${node.total} blocks, its parent says ${blocks}`);
  return node;
}

/** The block's data blob ID below the stored node `id` at `level` (holding `blocks`, when known). */
async function lookupStored(cache: NodeCache, id: Buffer, level: number, blocks: number | undefined, block: number): Promise<Buffer | null> {
  let got = cache.get(id, level, blocks);
  for (;;) {
    const node = got instanceof Promise ? await got : got;
    const i = findSlot(node.slots, slotOf(block, node.level));
    if (i < 0) return null;
    const child = mapNodeId(node, i);
    if (node.level === 0) return child;
    got = cache.get(child, node.level - 1, node.blocks![i]);
  }
}

export interface MapExtent {
  block: number;
  count: number;
  /** The data blob of the block (count is then 1), or null for a run of zeros. */
  id: Buffer | null;
}

/** Reads a stored map; every node is checked as it is loaded (decodeMapNode, and its parent's count). */
export class BlockMapReader {
  private readonly cache: NodeCache;

  constructor(
    readonly ref: BlockMapRef,
    load: LoadMapNode,
    opts: { cacheBytes?: number } = {},
  ) {
    checkDepth(ref.depth);
    this.cache = new NodeCache(load, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
  }

  private async root(): Promise<MapNode> {
    return this.cache.get(this.ref.root, this.ref.depth - 1);
  }

  lookup(block: number): Promise<Buffer | null> {
    checkBlock(block, this.ref.depth);
    return lookupStored(this.cache, this.ref.root, this.ref.depth - 1, undefined, block);
  }

  /**
   * The map over [fromBlock, toBlock) in order: each present block on its own, and each stretch
   * of absent ones as one run however many subtrees it spans.
   */
  async *extents(fromBlock: number, toBlock: number): AsyncGenerator<MapExtent> {
    if (toBlock <= fromBlock) return;
    checkBlock(fromBlock, this.ref.depth);
    checkBlock(toBlock - 1, this.ref.depth);
    let hole = fromBlock;
    for await (const [block, id] of this.present(await this.root(), 0, fromBlock, toBlock)) {
      if (block > hole) yield { block: hole, count: block - hole, id: null };
      yield { block, count: 1, id };
      hole = block + 1;
    }
    if (toBlock > hole) yield { block: hole, count: toBlock - hole, id: null };
  }

  /** The present blocks of [from, to) below `node`, which starts at block `base`. */
  private async *present(node: MapNode, base: number, from: number, to: number): AsyncGenerator<[number, Buffer]> {
    const span = slotSpan(node.level);
    const first = Math.max(0, Math.floor((from - base) / span));
    let i = findSlot(node.slots, first);
    if (i < 0) i = -i - 1;
    for (; i < node.slots.length; i++) {
      const start = base + node.slots[i]! * span;
      if (start >= to) return;
      if (node.level === 0) yield [start, mapNodeId(node, i)];
      else yield* this.present(await this.cache.get(mapNodeId(node, i), node.level - 1, node.blocks![i]), start, from, to);
    }
  }

  /**
   * Every node depth first, then the blocks below it. `visitNode` returning false skips the
   * node's subtree (not even loaded), as for one already seen through another map.
   */
  async walk(visitNode: (id: Buffer, level: number) => boolean, visitBlock: (id: Buffer, block: number) => void): Promise<void> {
    const rootLevel = this.ref.depth - 1;
    if (!visitNode(this.ref.root, rootLevel)) return;
    await this.walkBelow(await this.root(), 0, visitNode, visitBlock);
  }

  private async walkBelow(node: MapNode, base: number, visitNode: (id: Buffer, level: number) => boolean, visitBlock: (id: Buffer, block: number) => void): Promise<void> {
    const span = slotSpan(node.level);
    for (let i = 0; i < node.slots.length; i++) {
      const id = mapNodeId(node, i);
      const start = base + node.slots[i]! * span;
      if (node.level === 0) visitBlock(id, start);
      else if (visitNode(id, node.level - 1)) await this.walkBelow(await this.cache.get(id, node.level - 1, node.blocks![i]), start, visitNode, visitBlock);
    }
  }

  async allocatedBlocks(): Promise<number> {
    return (await this.root()).total;
  }

  /**
   * What only one of two maps holds, as walk() gives it (side 0: this map, 1: `other`): the two
   * are walked in lockstep and every subtree both hold under the same ID is left out, so the cost
   * follows the change, not the size. Maps of different shapes share nothing.
   */
  async walkDifference(other: BlockMapReader, visitNode: (side: 0 | 1, id: Buffer, level: number) => boolean, visitBlock: (side: 0 | 1, id: Buffer, block: number) => void): Promise<void> {
    const sides = [this, other] as const;
    const whole = (side: 0 | 1) =>
      sides[side].walk(
        (id, level) => visitNode(side, id, level),
        (id, block) => visitBlock(side, id, block),
      );
    if (this.ref.root.equals(other.ref.root) && this.ref.depth === other.ref.depth) return;
    if (this.ref.depth !== other.ref.depth || this.ref.blockSize !== other.ref.blockSize) {
      await whole(0);
      await whole(1);
      return;
    }
    const level = this.ref.depth - 1;
    const [a, b] = [visitNode(0, this.ref.root, level), visitNode(1, other.ref.root, level)];
    if (a && b) await this.differenceBelow(other, await this.root(), await other.root(), 0, visitNode, visitBlock);
    else if (a) await this.walkBelow(await this.root(), 0, (id, l) => visitNode(0, id, l), (id, block) => visitBlock(0, id, block));
    else if (b) await other.walkBelow(await other.root(), 0, (id, l) => visitNode(1, id, l), (id, block) => visitBlock(1, id, block));
  }

  private async differenceBelow(
    other: BlockMapReader,
    na: MapNode,
    nb: MapNode,
    base: number,
    visitNode: (side: 0 | 1, id: Buffer, level: number) => boolean,
    visitBlock: (side: 0 | 1, id: Buffer, block: number) => void,
  ): Promise<void> {
    const sides = [this, other] as const;
    const nodes = [na, nb] as const;
    const span = slotSpan(na.level);
    /** Entry i of side s's node, which the other side lacks or holds under another ID. */
    const only = async (s: 0 | 1, i: number): Promise<MapNode | undefined> => {
      const node = nodes[s];
      const id = mapNodeId(node, i);
      const start = base + node.slots[i]! * span;
      if (node.level === 0) visitBlock(s, id, start);
      else if (visitNode(s, id, node.level - 1)) return sides[s].cache.get(id, node.level - 1, node.blocks![i]);
      return undefined;
    };
    const below = (s: 0 | 1, child: MapNode, start: number) =>
      sides[s].walkBelow(
        child,
        start,
        (id, l) => visitNode(s, id, l),
        (id, block) => visitBlock(s, id, block),
      );
    let i = 0;
    let j = 0;
    while (i < na.slots.length || j < nb.slots.length) {
      const sa = i < na.slots.length ? na.slots[i]! : FANOUT;
      const sb = j < nb.slots.length ? nb.slots[j]! : FANOUT;
      const start = base + Math.min(sa, sb) * span;
      if (sa === sb && mapNodeId(na, i).equals(mapNodeId(nb, j))) {
        i++;
        j++;
        continue;
      }
      const ca = sa <= sb ? await only(0, i++) : undefined;
      const cb = sb <= sa ? await only(1, j++) : undefined;
      if (ca && cb) await this.differenceBelow(other, ca, cb, start, visitNode, visitBlock);
      else if (ca) await below(0, ca, start);
      else if (cb) await below(1, cb, start);
    }
  }
}

/**
 * A map walk's visitNode that enters each node once: a subtree met again holds nothing new, and a
 * map whose nodes a hostile writer shared at every slot is walked in its size, not its claim.
 */
export function firstVisit(): (id: Buffer) => boolean {
  const seen = new Set<string>();
  return (id) => {
    const key = id.toString('latin1');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
}

/**
 * A node of a map being changed. `kids` are data blob IDs in a leaf; in an inner node a stored
 * child's ID or the child itself once loaded. `stored` is the node's ID while its content is
 * what was stored under it; `owner` is the map that may change it in place (a fork shares every
 * node and copies one before changing it).
 */
interface EditNode {
  owner: object;
  level: number;
  slots: number[];
  kids: (Buffer | EditNode)[];
  blocks: number[];
  stored?: Buffer;
}

/**
 * A map being changed: nodes are loaded as a change reaches them, changed in memory, and
 * persist() writes the changed ones. fork() is O(1): the two maps share every node and each
 * copies a shared node before its first change to it (path copying).
 */
export class MutableBlockMap {
  private owner: object = {};
  private dirty = false;

  private constructor(
    private root: Buffer | EditNode,
    readonly depth: number,
    readonly blockSize: number,
    private readonly cache: NodeCache | undefined,
  ) {}

  static create(depth: number, blockSize: number): MutableBlockMap {
    checkDepth(depth);
    return new MutableBlockMap({ owner: {}, level: depth - 1, slots: [], kids: [], blocks: [] }, depth, blockSize, undefined);
  }

  static open(ref: BlockMapRef, load: LoadMapNode): MutableBlockMap {
    checkDepth(ref.depth);
    return new MutableBlockMap(ref.root, ref.depth, ref.blockSize, new NodeCache(load, DEFAULT_CACHE_BYTES / 4));
  }

  private storedNodes(): NodeCache {
    if (!this.cache) throw new Error('a created map has no stored nodes');
    return this.cache;
  }

  get changed(): boolean {
    return this.dirty;
  }

  fork(): MutableBlockMap {
    const other = new MutableBlockMap(this.root, this.depth, this.blockSize, this.cache);
    other.dirty = this.dirty;
    this.owner = {};
    return other;
  }

  async get(block: number): Promise<Buffer | null> {
    checkBlock(block, this.depth);
    let node = this.root;
    let level = this.depth - 1;
    let blocks: number | undefined;
    while (!Buffer.isBuffer(node)) {
      const i = findSlot(node.slots, slotOf(block, level));
      if (i < 0) return null;
      if (level === 0) return node.kids[i] as Buffer;
      blocks = node.blocks[i];
      node = node.kids[i]!;
      level--;
    }
    return lookupStored(this.storedNodes(), node, level, blocks, block);
  }

  async set(block: number, id: Buffer | null): Promise<void> {
    checkBlock(block, this.depth);
    if (id !== null && id.length !== ID_BYTES) throw new RangeError('a block ID is 32 bytes');
    const root = await this.owned(this.root, this.depth - 1);
    this.root = root;
    if ((await this.setIn(root, block, id)) !== undefined) this.dirty = true;
  }

  /** Sets the block below `node` (owned); the change of its count, or undefined if nothing changed. */
  private async setIn(node: EditNode, block: number, id: Buffer | null): Promise<number | undefined> {
    const slot = slotOf(block, node.level);
    let i = findSlot(node.slots, slot);
    if (node.level === 0) {
      if (i >= 0) {
        if (id !== null && id.equals(node.kids[i] as Buffer)) return undefined;
        changedNode(node);
        if (id === null) {
          removeEntry(node, i);
          return -1;
        }
        node.kids[i] = Buffer.from(id);
        return 0;
      }
      if (id === null) return undefined;
      changedNode(node);
      insertEntry(node, -i - 1, slot, Buffer.from(id), 1);
      return 1;
    }
    if (i < 0) {
      if (id === null) return undefined;
      i = -i - 1;
      insertEntry(node, i, slot, { owner: this.owner, level: node.level - 1, slots: [], kids: [], blocks: [] }, 0);
    } else {
      node.kids[i] = await this.owned(node.kids[i]!, node.level - 1, node.blocks[i]);
    }
    const child = node.kids[i] as EditNode;
    const delta = await this.setIn(child, block, id);
    if (delta === undefined) return undefined;
    changedNode(node);
    node.blocks[i]! += delta;
    if (node.blocks[i] === 0) removeEntry(node, i);
    return delta;
  }

  /** `node` as one this map may change: loaded if stored, copied if shared. */
  private async owned(node: Buffer | EditNode, level: number, blocks?: number): Promise<EditNode> {
    if (Buffer.isBuffer(node)) return this.load(node, level, blocks);
    if (node.owner === this.owner) return node;
    return { owner: this.owner, level, slots: [...node.slots], kids: [...node.kids], blocks: [...node.blocks], stored: node.stored };
  }

  private async load(id: Buffer, level: number, blocks: number | undefined): Promise<EditNode> {
    const n = await this.storedNodes().get(id, level, blocks);
    const slots = Array.from(n.slots);
    const kids = slots.map((_, i) => Buffer.from(mapNodeId(n, i)));
    const counts = n.blocks ? Array.from(n.blocks) : [];
    return { owner: this.owner, level, slots, kids, blocks: counts, stored: id };
  }

  /**
   * Saves the changed nodes bottom-up and returns the new root; subtrees nobody changed keep
   * their IDs and are not written again. Not to be called while the map is being set: persist a
   * fork instead.
   */
  async persist(save: SaveMapNode): Promise<BlockMapRef> {
    const root = Buffer.isBuffer(this.root) ? this.root : await persistNode(this.root, save);
    this.dirty = false;
    return { root, blockSize: this.blockSize, depth: this.depth };
  }
}

function changedNode(node: EditNode): void {
  node.stored = undefined;
}

function insertEntry(node: EditNode, i: number, slot: number, kid: Buffer | EditNode, blocks: number): void {
  node.slots.splice(i, 0, slot);
  node.kids.splice(i, 0, kid);
  if (node.level > 0) node.blocks.splice(i, 0, blocks);
}

function removeEntry(node: EditNode, i: number): void {
  node.slots.splice(i, 1);
  node.kids.splice(i, 1);
  if (node.level > 0) node.blocks.splice(i, 1);
}

async function persistNode(node: EditNode, save: SaveMapNode): Promise<Buffer> {
  if (node.stored) return node.stored;
  const ids = Buffer.allocUnsafe(node.kids.length * ID_BYTES);
  for (let i = 0; i < node.kids.length; i++) {
    const kid = node.kids[i]!;
    (Buffer.isBuffer(kid) ? kid : await persistNode(kid, save)).copy(ids, i * ID_BYTES);
  }
  const plain = encodeMapNode({ level: node.level, slots: Uint16Array.from(node.slots), ids, blocks: node.level > 0 ? Float64Array.from(node.blocks) : undefined });
  node.stored = await save(plain);
  return node.stored;
}
