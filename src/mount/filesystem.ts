import os from 'node:os';
import { ScrateError } from '../errors.js';
import { ATTR_SIZE, Attr, fuse, FuseOp, type FuseRequest } from '../native/fuse.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import { listSnapshots, type SnapshotEntry } from '../snapshot/snapshot.js';
import type { Node } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';
import { BlobCache } from './blob-cache.js';
import { BlobDecoder } from './blob-decoder.js';
import { FileContent, storedBytes } from './file-content.js';
import { allocatedBytes, MapContent } from './map-content.js';
import { buildLayout, type Layout, type SnapshotNames } from './layout.js';

const { ENOENT, EIO, ENOTDIR, EISDIR, EINVAL } = os.constants.errno;

/** How long the snapshot list is trusted before it is listed again: new snapshots appear this soon. */
const LAYOUT_TTL_MS = 2000;
/** Kernel cache times (s): the directories above the snapshots change, a snapshot's content never. */
const TOP_TIMEOUT = 1;
const CONTENT_TIMEOUT = 24 * 3600;
/** Decrypted blobs kept for reads (see BlobCache). */
const BLOB_CACHE_BYTES = 256 * 1024 * 1024;
/** Decoded trees kept for lookups and listings. */
const TREE_CACHE_ENTRIES = 512;
/** The inode number readdir gives an entry the kernel has not looked up: it has none yet. */
const UNKNOWN_INO = 0xffffffff;
const ROOT_INO = 1;

const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const TYPE_BITS: Record<Node['type'], number> = { file: 0o100000, dir: S_IFDIR, symlink: S_IFLNK, fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000 };
const TOP_DIRS = ['snapshots', 'ids', 'hosts', 'tags'] as const;
type TopDir = (typeof TOP_DIRS)[number];

/** What an inode stands for. */
type Target =
  | { kind: 'root' }
  | { kind: 'top'; dir: TopDir }
  /** hosts/<host> or tags/<tag> */
  | { kind: 'group'; dir: 'hosts' | 'tags'; name: string }
  | { kind: 'link'; target: Buffer }
  /** A snapshot's root directory. */
  | { kind: 'snapshot'; entry: SnapshotEntry; reader: BlobReader }
  /** An entry of a snapshot; `root` is the inode of its snapshot directory (hardlinks are per snapshot). */
  | { kind: 'node'; node: Node; reader: BlobReader; root: number };

interface Inode {
  ino: number;
  /** What the kernel holds: lookups not yet forgotten. At 0 the inode goes. */
  lookups: number;
  /** Finds the inode again for the same name (or hardlinked entry) while it lives. */
  key: string;
  attr: Float64Array;
  target: Target;
  /** The file's content reader, made at its first open. */
  content?: FileContent | MapContent;
}

/** One child of a directory before it has an inode. */
interface Child {
  name: Buffer;
  key: string;
  target: Target;
}

export interface FilesystemOptions {
  /** Something read was damaged or missing: said, and the read fails with EIO. */
  onWarning: (message: string) => void;
}

/**
 * The repository as a read-only filesystem, restic's layout: snapshots/<time>/…,
 * snapshots/latest, ids/<id>/…, hosts/<host>/<time>/…, tags/<tag>/<time>/…. Nothing is read
 * before it is asked for: the snapshot list at the first look at the top, a tree when its
 * directory is looked into, a blob when its bytes are read. Inodes live while the kernel
 * holds them (lookup … forget), so memory follows what the kernel caches.
 */
export class SnapshotFilesystem {
  private readonly inodes = new Map<number, Inode>();
  private readonly byKey = new Map<string, Inode>();
  private nextIno = ROOT_INO + 1;
  private readonly decoder = new BlobDecoder();
  private readonly blobs = new BlobCache(BLOB_CACHE_BYTES, (reader, id) => this.decoder.load(reader, id));
  private readonly trees = new Map<string, Promise<Node[]>>();
  /** One reader per writer: each keeps the IDs of zero blobs it computed. */
  private readonly readers = new Map<number, BlobReader>();
  private layoutAt = 0;
  private layoutNames = '';
  private layoutLoad: Promise<Layout> | undefined;
  private readonly mountTime = BigInt(Date.now()) * 1_000_000n;
  private readonly ahead: number;

  constructor(
    private readonly repo: Repository,
    /** Settles once the index is loaded: nothing of a snapshot's content is read before. */
    private readonly indexReady: Promise<void>,
    private readonly opts: FilesystemOptions,
  ) {
    this.ahead = Math.max(4, repo.backend.connections);
    const root: Inode = { ino: ROOT_INO, lookups: 1, key: '', attr: this.dirAttr(ROOT_INO, this.mountTime), target: { kind: 'root' } };
    this.inodes.set(ROOT_INO, root);
  }

  /** Ends the decoding workers, once unmounted. */
  close(): Promise<void> {
    return this.decoder.close();
  }

  /** fuse.ts's handler: every request is answered, an unexpected failure with EIO. */
  handle(op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, data: Buffer | Float64Array | undefined): void {
    if (op === FuseOp.forget) {
      if (data instanceof Float64Array) for (let i = 0; i < data.length; i += 2) this.forget(data[i]!, data[i + 1]!);
      else this.forget(ino, a);
      return;
    }
    this.answer(op, req, ino, a, b, data as Buffer).catch((err: unknown) => {
      if (err instanceof ScrateError) this.opts.onWarning(err.message);
      else this.opts.onWarning(`internal error: ${(err as Error)?.message ?? String(err)}`);
      fuse.replyErr(req, EIO);
    });
  }

  private async answer(op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, name: Buffer | undefined): Promise<void> {
    const inode = this.inodes.get(ino);
    if (!inode) return fuse.replyErr(req, ENOENT);
    switch (op) {
      case FuseOp.lookup:
        return this.lookup(req, inode, name!);
      case FuseOp.getattr:
        return fuse.replyAttr(req, inode.attr, timeoutOf(inode));
      case FuseOp.readlink:
        if (inode.target.kind === 'link') return fuse.replyLink(req, inode.target.target);
        if (inode.target.kind === 'node' && inode.target.node.linkTarget) return fuse.replyLink(req, inode.target.node.linkTarget);
        return fuse.replyErr(req, EINVAL);
      case FuseOp.open:
        if (inode.target.kind !== 'node') return fuse.replyErr(req, EISDIR);
        // Snapshot content never changes: what the kernel cached stays valid between opens.
        return fuse.replyOpen(req, true);
      case FuseOp.read:
        return fuse.replyData(req, await this.read(inode, a, b));
      case FuseOp.readdir:
        return this.readdir(req, inode, a, b);
      default:
        return fuse.replyErr(req, EINVAL);
    }
  }

  private async lookup(req: FuseRequest, parent: Inode, name: Buffer): Promise<void> {
    const listing = await this.children(parent);
    if (!listing) return fuse.replyErr(req, ENOTDIR);
    const child = listing.find(name);
    if (!child) return fuse.replyErr(req, ENOENT);
    const inode = await this.inodeOf(child);
    inode.lookups++;
    const timeout = timeoutOf(inode);
    fuse.replyEntry(req, inode.attr, timeout, timeout);
  }

  private async read(inode: Inode, offset: number, size: number): Promise<Buffer[]> {
    const t = inode.target;
    if (t.kind !== 'node' || t.node.type !== 'file') throw new ScrateError('read of a non-file');
    await this.indexReady;
    const { node } = t;
    inode.content ??= node.blockMap ? new MapContent(t.reader, node.blockMap, node.size, this.blobs, this.ahead) : new FileContent(t.reader, node.content ?? [], this.blobs, this.ahead);
    return inode.content.read(offset, size);
  }

  private async readdir(req: FuseRequest, dir: Inode, offset: number, size: number): Promise<void> {
    const listing = await this.children(dir);
    if (!listing) return fuse.replyErr(req, ENOTDIR);
    // At least 32 bytes an entry: no more than this many can fit.
    const room = Math.ceil(size / 32);
    const names: Buffer[] = [];
    const inos: number[] = [];
    const modes: number[] = [];
    const push = (name: Buffer, ino: number, mode: number) => {
      names.push(name);
      inos.push(ino);
      modes.push(mode);
    };
    for (let i = offset; i < listing.size + 2 && names.length < room; i++) {
      if (i === 0) push(DOT, dir.ino, S_IFDIR);
      else if (i === 1) push(DOTDOT, UNKNOWN_INO, S_IFDIR);
      else {
        const child = listing.at(i - 2);
        push(child.name, this.byKey.get(child.key)?.ino ?? UNKNOWN_INO, typeOf(child.target));
      }
    }
    const ends = new Uint32Array(names.length);
    let at = 0;
    names.forEach((n, i) => (ends[i] = at += n.length));
    fuse.replyDir(req, size, offset, Buffer.concat(names), ends, Float64Array.from(inos), Uint32Array.from(modes));
  }

  private forget(ino: number, count: number): void {
    const inode = this.inodes.get(ino);
    if (!inode || ino === ROOT_INO) return;
    inode.lookups -= count;
    if (inode.lookups > 0) return;
    this.inodes.delete(ino);
    if (this.byKey.get(inode.key) === inode) this.byKey.delete(inode.key);
  }

  /** The inode of a child: the one the kernel holds already for it, or a new one. */
  private async inodeOf(child: Child): Promise<Inode> {
    const known = this.byKey.get(child.key);
    if (known) return known;
    const ino = this.nextIno++;
    const inode: Inode = { ino, lookups: 0, key: child.key, attr: await this.attrOf(ino, child.target), target: child.target };
    // Another lookup of the same child may have finished while this one awaited.
    const raced = this.byKey.get(child.key);
    if (raced) return raced;
    this.inodes.set(ino, inode);
    this.byKey.set(child.key, inode);
    return inode;
  }

  // --- directories ---

  /** A directory's children, or undefined for what is not a directory. */
  private async children(dir: Inode): Promise<Listing | undefined> {
    const t = dir.target;
    switch (t.kind) {
      case 'root':
        return new ChildList(TOP_DIRS.map((d) => ({ name: Buffer.from(d), key: `${dir.ino}/${d}`, target: { kind: 'top', dir: d } })));
      case 'top': {
        const layout = await this.layout();
        if (t.dir === 'snapshots' || t.dir === 'ids') return this.snapshotListing(dir, layout[t.dir]);
        return new ChildList([...layout[t.dir].keys()].map((name) => ({ name: Buffer.from(name, 'latin1'), key: `${dir.ino}/${name}`, target: { kind: 'group', dir: t.dir as 'hosts' | 'tags', name } })));
      }
      case 'group': {
        const names = (await this.layout())[t.dir].get(t.name);
        return this.snapshotListing(dir, names ?? { byName: new Map() });
      }
      case 'snapshot':
        return this.treeListing(dir, t.reader, Buffer.from(t.entry.snapshot.tree, 'hex'), dir.ino);
      case 'node':
        if (t.node.type !== 'dir') return undefined;
        return this.treeListing(dir, t.reader, t.node.subtree, t.root);
      case 'link':
        return undefined;
    }
  }

  private snapshotListing(dir: Inode, names: SnapshotNames): Listing {
    const children: Child[] = [];
    for (const [name, entry] of names.byName) {
      // The snapshot's ID is part of the key: a name that comes to mean another snapshot is another inode.
      children.push({ name: Buffer.from(name, 'latin1'), key: `${dir.ino}/${name}/${entry.id}`, target: { kind: 'snapshot', entry, reader: this.readerOf(entry) } });
    }
    if (names.latest !== undefined) {
      const target = Buffer.from(names.latest, 'latin1');
      children.push({ name: LATEST, key: `${dir.ino}/latest/${names.latest}`, target: { kind: 'link', target } });
    }
    return new ChildList(children);
  }

  private readerOf(entry: SnapshotEntry): BlobReader {
    let reader = this.readers.get(entry.writer.no);
    if (!reader) this.readers.set(entry.writer.no, (reader = this.repo.reader(entry.writer)));
    return reader;
  }

  private async treeListing(dir: Inode, reader: BlobReader, tree: Buffer | undefined, root: number): Promise<Listing> {
    const nodes = tree ? await this.tree(reader, tree) : [];
    return new NodeList(nodes, (node) => ({
      name: node.name,
      // Hardlinks: one inode for all names of one file of the snapshot, as it was.
      key: node.links > 1 && node.type !== 'dir' ? `${root}:${node.deviceId}:${node.inode}` : `${dir.ino}/${node.name.toString('latin1')}`,
      target: { kind: 'node', node, reader, root },
    }));
  }

  /** A decoded tree, from a cache of the most recently used. */
  private tree(reader: BlobReader, id: Buffer): Promise<Node[]> {
    const key = `${reader.writer.no}:${id.toString('hex')}`;
    let nodes = this.trees.get(key);
    if (nodes) this.trees.delete(key);
    else {
      nodes = this.indexReady.then(() => loadTree(reader, id));
      nodes.catch(() => this.trees.delete(key));
      if (this.trees.size >= TREE_CACHE_ENTRIES) this.trees.delete(this.trees.keys().next().value!);
    }
    this.trees.set(key, nodes);
    return nodes;
  }

  /** The snapshot list, listed again once LAYOUT_TTL_MS passed, and reloaded only when it changed. */
  private layout(): Promise<Layout> {
    if (this.layoutLoad && Date.now() - this.layoutAt < LAYOUT_TTL_MS) return this.layoutLoad;
    const previous = this.layoutLoad;
    this.layoutAt = Date.now();
    const load = (async () => {
      const names = (await this.repo.listNames('snapshots')).sort().join();
      if (previous && names === this.layoutNames) return previous;
      await this.indexReady;
      const entries = await listSnapshots(this.repo, (id, err) => this.opts.onWarning(`snapshot ${id.slice(0, 8)} skipped: ${err.message}`));
      // New snapshots come with new index files: their blobs must be found.
      if (previous) await this.repo.loadNewIndexFiles((m) => this.opts.onWarning(m));
      this.layoutNames = names;
      return buildLayout(entries);
    })();
    this.layoutLoad = load;
    load.catch(() => {
      if (this.layoutLoad === load) this.layoutLoad = previous;
    });
    return load;
  }

  // --- attributes ---

  private async attrOf(ino: number, t: Target): Promise<Float64Array> {
    switch (t.kind) {
      case 'root':
      case 'top':
      case 'group':
        return this.dirAttr(ino, this.mountTime);
      case 'link':
        return attr(ino, S_IFLNK | 0o777, 1, process.getuid?.() ?? 0, process.getgid?.() ?? 0, 0, t.target.length, 0, this.mountTime, this.mountTime);
      case 'snapshot':
        return this.dirAttr(ino, BigInt(Date.parse(t.entry.snapshot.time)) * 1_000_000n);
      case 'node': {
        const n = t.node;
        let size = n.size;
        let blocks = Math.ceil(n.size / 512);
        if (n.type === 'symlink') size = n.linkTarget?.length ?? 0;
        if (n.type === 'file' && (n.sparse || n.image)) {
          await this.indexReady;
          blocks = Math.ceil((n.blockMap ? await allocatedBytes(t.reader, n.blockMap) : storedBytes(t.reader, n.content ?? [])) / 512);
        }
        return attr(ino, TYPE_BITS[n.type] | n.mode, Math.max(1, n.links), n.uid, n.gid, Number(n.rdev ?? 0n), size, blocks, n.mtimeNs, n.ctimeNs);
      }
    }
  }

  private dirAttr(ino: number, timeNs: bigint): Float64Array {
    return attr(ino, S_IFDIR | 0o555, 2, process.getuid?.() ?? 0, process.getgid?.() ?? 0, 0, 0, 0, timeNs, timeNs);
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const LATEST = Buffer.from('latest');

/** A directory's children, by position (readdir's offsets) and by name. */
interface Listing {
  readonly size: number;
  at(i: number): Child;
  find(name: Buffer): Child | undefined;
}

/** The directories above the snapshots: few children, made whole. */
class ChildList implements Listing {
  constructor(private readonly children: Child[]) {}

  get size(): number {
    return this.children.length;
  }

  at(i: number): Child {
    return this.children[i]!;
  }

  find(name: Buffer): Child | undefined {
    return this.children.find((c) => c.name.equals(name));
  }
}

/** A tree's nodes, in name order: a child is made only for the node asked for, found by binary search. */
class NodeList implements Listing {
  constructor(
    private readonly nodes: readonly Node[],
    private readonly child: (node: Node) => Child,
  ) {}

  get size(): number {
    return this.nodes.length;
  }

  at(i: number): Child {
    return this.child(this.nodes[i]!);
  }

  find(name: Buffer): Child | undefined {
    let lo = 0;
    let hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const order = Buffer.compare(this.nodes[mid]!.name, name);
      if (order === 0) return this.child(this.nodes[mid]!);
      if (order < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

function typeOf(t: Target): number {
  if (t.kind === 'link') return S_IFLNK;
  if (t.kind === 'node') return TYPE_BITS[t.node.type];
  return S_IFDIR;
}

function timeoutOf(inode: Inode): number {
  return inode.target.kind === 'node' ? CONTENT_TIMEOUT : TOP_TIMEOUT;
}

const NS = 1_000_000_000n;

function attr(ino: number, mode: number, nlink: number, uid: number, gid: number, rdev: number, size: number, blocks: number, mtimeNs: bigint, ctimeNs: bigint): Float64Array {
  const a = new Float64Array(ATTR_SIZE);
  a[Attr.ino] = ino;
  a[Attr.mode] = mode;
  a[Attr.nlink] = nlink;
  a[Attr.uid] = uid;
  a[Attr.gid] = gid;
  a[Attr.rdev] = rdev;
  a[Attr.size] = size;
  a[Attr.blocks] = blocks;
  [a[Attr.mtimeSec], a[Attr.mtimeNsec]] = split(mtimeNs);
  [a[Attr.ctimeSec], a[Attr.ctimeNsec]] = split(ctimeNs);
  return a;
}

/** Seconds and nanoseconds (0 to 1e9-1), before the epoch too. */
function split(ns: bigint): [number, number] {
  let sec = ns / NS;
  let rest = ns % NS;
  if (rest < 0n) {
    sec -= 1n;
    rest += NS;
  }
  return [Number(sec), Number(rest)];
}
