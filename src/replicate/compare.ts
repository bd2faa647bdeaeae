import { createHash } from 'node:crypto';
import { checkAborted } from '../errors.js';
import { isDamage } from '../checker/damage.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import { readContent } from '../restorer/content.js';
import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';
import type { Node } from '../tree/node.js';
import { sameBlockMap } from '../tree/unchanged.js';
import { joinPath, loadTree } from '../tree/walk.js';
import { originOf, similar, targetsByOrigin } from './select.js';

/** A way a copy is not its source: at `path` (absolute in the snapshot; '/' for the snapshot itself). */
export interface Difference {
  source: string;
  target: string;
  path: Buffer;
  what: string;
  /** The difference is that something could not be read (damage), not that it reads otherwise. */
  unreadable: boolean;
}

export interface CompareOptions {
  /** Also compare the bytes of files whose blob IDs say nothing (SHA-256 of both streams). */
  readData?: boolean;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
}

export interface CompareResult {
  /** Source snapshots paired with their copy. */
  pairs: number;
  /** Pairs proven equal by their root tree IDs, without reading anything. */
  sameRoot: number;
  /** Source snapshots with no copy in the target (information: forget policies may differ). */
  uncopied: SnapshotEntry[];
  /** Target snapshots with no source (information). */
  unmatched: SnapshotEntry[];
  differences: Difference[];
  /** Files whose bytes were read from both repositories (--read-data), each pair of contents once. */
  filesRead: number;
}

/** A difference below a directory, relative to it: directories shared by snapshots are compared once. */
interface Found {
  path: Buffer[];
  what: string;
  unreadable: boolean;
}

/**
 * Compares the snapshots of `src` with their copies in `dst` (check --compare). Pairs are made
 * by origin (`original ?? id`) and restic's similarity, the tree aside: a copy that does not
 * keep its source's tree is what this is here to find. When both writers name blobs with the
 * same key (identity copies), equal IDs are equal bytes: equal roots end the comparison, and
 * below differing ones only subtrees and contents with different IDs are looked at. Otherwise
 * (another key, re-chunked copies) both trees are walked in lockstep: names, types, restorable
 * metadata and sizes; with `readData`, the bytes of every file.
 */
export async function compareRepositories(src: Repository, dst: Repository, sources: readonly SnapshotEntry[], targets: readonly SnapshotEntry[], opts: CompareOptions = {}): Promise<CompareResult> {
  const result: CompareResult = { pairs: 0, sameRoot: 0, uncopied: [], unmatched: [], differences: [], filesRead: 0 };
  const byOrigin = targetsByOrigin(targets);
  const paired = new Set<string>();
  const walker = new Walker(opts, result);
  for (const s of sources) {
    checkAborted(opts.signal);
    const candidates = (byOrigin.get(originOf(s)) ?? []).filter((t) => !paired.has(t.id));
    const t = candidates.find((c) => similarBesidesTree(c.snapshot, s.snapshot)) ?? candidates[0];
    if (!t) {
      result.uncopied.push(s);
      continue;
    }
    paired.add(t.id);
    result.pairs++;
    const add = (found: readonly Found[]) => {
      for (const f of found) result.differences.push({ source: s.id, target: t.id, path: f.path.length ? joinPath(f.path) : Buffer.from('/'), what: f.what, unreadable: f.unreadable });
    };
    const fields = differingFields(s.snapshot, t.snapshot);
    if (fields.length) add([{ path: [], what: `snapshot ${fields.join(', ')} differ`, unreadable: false }]);
    const pair = readers(src, dst, s, t);
    if (pair.sameIds && s.snapshot.tree === t.snapshot.tree) {
      result.sameRoot++;
      continue;
    }
    opts.onProgress?.(`snapshot ${s.id.slice(0, 8)}`);
    add(await walker.trees(pair, Buffer.from(s.snapshot.tree, 'hex'), Buffer.from(t.snapshot.tree, 'hex')));
  }
  result.unmatched = targets.filter((t) => !paired.has(t.id));
  return result;
}

interface Pair {
  a: BlobReader;
  b: BlobReader;
  /** Blob IDs mean the same bytes in both: the keyed hash is one. */
  sameIds: boolean;
  /** And the same bytes are cut into the same chunks, so equal contents have equal ID lists. */
  sameChunks: boolean;
}

function readers(src: Repository, dst: Repository, s: SnapshotEntry, t: SnapshotEntry): Pair {
  const [a, b] = [src.reader(s.writer), dst.reader(t.writer)];
  const sameIds = a.chunkIdKey.equals(b.chunkIdKey);
  const [x, y] = [src.chunking, dst.chunking];
  const sameChunker = x.chunker.min === y.chunker.min && x.chunker.avg === y.chunker.avg && x.chunker.max === y.chunker.max && x.roots.chunkerRoot.equals(y.roots.chunkerRoot);
  return { a, b, sameIds, sameChunks: sameIds && sameChunker && s.writer.id.equals(t.writer.id) };
}

function similarBesidesTree(a: Snapshot, b: Snapshot): boolean {
  return similar({ ...a, tree: b.tree }, b);
}

/** Fields of the snapshot itself that a copy keeps (restic's similarity; the tree is compared by walking). */
function differingFields(a: Snapshot, b: Snapshot): string[] {
  if (similarBesidesTree(a, b)) return [];
  const fields = ['time', 'hostname', 'username', 'uid', 'gid', 'paths', 'tags', 'excludes'] as const;
  return fields.filter((f) => !similarBesidesTree(a, { ...a, [f]: b[f] }));
}

/** What restore makes of a node, content aside: ctime, inode and device only describe the disk it was read from. */
function metadataDifferences(a: Node, b: Node): string[] {
  const out: string[] = [];
  const field = (name: string, x: unknown, y: unknown, show: (v: unknown) => string = String) => {
    if (x !== y) out.push(`${name} ${show(x)} ≠ ${show(y)}`);
  };
  const octal = (v: unknown) => (v as number).toString(8).padStart(4, '0');
  field('mode', a.mode, b.mode, octal);
  field('uid', a.uid, b.uid);
  field('gid', a.gid, b.gid);
  field('user', a.user, b.user);
  field('group', a.group, b.group);
  field('mtime', a.mtimeNs, b.mtimeNs);
  field('size', a.size, b.size);
  field('links', a.links, b.links);
  field('rdev', a.rdev, b.rdev);
  field('image block size', a.image?.blockSize, b.image?.blockSize);
  if (!(a.linkTarget ?? Buffer.alloc(0)).equals(b.linkTarget ?? Buffer.alloc(0))) out.push('link target');
  return out;
}

class Walker {
  /** (source tree, target tree) → what differs below. */
  private readonly below = new Map<string, readonly Found[]>();
  /** (source content, target content) → whether their bytes are equal (--read-data). */
  private readonly contents = new Map<string, boolean>();

  constructor(
    private readonly opts: CompareOptions,
    private readonly result: CompareResult,
  ) {}

  async trees(pair: Pair, ta: Buffer, tb: Buffer): Promise<readonly Found[]> {
    checkAborted(this.opts.signal);
    const { a, b } = pair;
    const key = `${a.writer.no}:${ta.toString('hex')}:${b.writer.no}:${tb.toString('hex')}`;
    const known = this.below.get(key);
    if (known) return known;
    const found: Found[] = [];
    const [na, nb] = await Promise.all([loadNodes(a, ta, 'source'), loadNodes(b, tb, 'target')]);
    if (typeof na === 'string' || typeof nb === 'string') {
      for (const why of [na, nb]) if (typeof why === 'string') found.push({ path: [], what: why, unreadable: true });
    } else {
      let i = 0;
      let j = 0;
      while (i < na.length || j < nb.length) {
        const order = i === na.length ? 1 : j === nb.length ? -1 : Buffer.compare(na[i]!.name, nb[j]!.name);
        if (order < 0) found.push({ path: [na[i++]!.name], what: 'only in the source', unreadable: false });
        else if (order > 0) found.push({ path: [nb[j++]!.name], what: 'only in the target', unreadable: false });
        else {
          const [x, y] = [na[i++]!, nb[j++]!];
          for (const f of await this.nodes(pair, x, y)) found.push({ ...f, path: [x.name, ...f.path] });
        }
      }
    }
    this.below.set(key, found);
    return found;
  }

  private async nodes(pair: Pair, x: Node, y: Node): Promise<Found[]> {
    if (x.type !== y.type) return [{ path: [], what: `${x.type} in the source, ${y.type} in the target`, unreadable: false }];
    const meta = metadataDifferences(x, y);
    const out: Found[] = meta.length ? [{ path: [], what: meta.join(', '), unreadable: false }] : [];
    if (x.type === 'dir' && x.subtree && y.subtree) {
      if (!(pair.sameIds && x.subtree.equals(y.subtree))) out.push(...(await this.trees(pair, x.subtree, y.subtree)));
    } else if (x.blockMap || y.blockMap) {
      const why = mapDifference(pair, x, y);
      if (why) out.push(why);
    } else if (x.type === 'file' || x.image) {
      const why = await this.content(pair, x.content ?? [], y.content ?? []);
      if (why) out.push(why);
    }
    return out;
  }

  /** Whether two contents are the same: by their IDs when those mean the same, else by their sizes and (readData) bytes. */
  private async content({ a, b, sameIds, sameChunks }: Pair, ca: Buffer[], cb: Buffer[]): Promise<Found | undefined> {
    const sameList = ca.length === cb.length && ca.every((id, n) => id.equals(cb[n]!));
    if (sameIds && sameList) return undefined;
    if (sameChunks) return { path: [], what: 'content differs', unreadable: false };
    const [la, lb] = [indexedLength(a, ca), indexedLength(b, cb)];
    if (typeof la === 'string' || typeof lb === 'string') return { path: [], what: [la, lb].filter((v) => typeof v === 'string').join('; '), unreadable: true };
    if (la !== lb) return { path: [], what: `content of ${la} bytes in the source, ${lb} in the target`, unreadable: false };
    if (!this.opts.readData) return undefined;
    const key = createHash('sha256').update(Buffer.concat([...ca, Buffer.from([0]), ...cb])).digest('hex');
    let same = this.contents.get(key);
    if (same === undefined) {
      try {
        const [ha, hb] = await Promise.all([contentHash(a, ca), contentHash(b, cb)]);
        same = ha.equals(hb);
      } catch (err) {
        if (!isDamage(err)) throw err;
        return { path: [], what: `content unreadable: ${err.message}`, unreadable: true };
      }
      this.contents.set(key, same);
      this.result.filesRead++;
    }
    return same ? undefined : { path: [], what: 'content differs (read)', unreadable: false };
  }
}

async function loadNodes(r: BlobReader, id: Buffer, side: string): Promise<Node[] | string> {
  try {
    return await loadTree(r, id);
  } catch (err) {
    if (!isDamage(err)) throw err;
    return `${side} directory unreadable: ${err.message}`;
  }
}

/** The length of a content by the index (no reads), or why it has none. */
function indexedLength(r: BlobReader, ids: readonly Buffer[]): number | string {
  let n = 0;
  for (const id of ids) {
    const loc = r.find(BlobType.data, id);
    if (!loc) return `blob ${id.toString('hex').slice(0, 12)} is not in the index`;
    n += loc.rawLength;
  }
  return n;
}

async function contentHash(r: BlobReader, ids: readonly Buffer[]): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const piece of readContent(r, ids)) hash.update(piece.data);
  return hash.digest();
}

/**
 * Whether two volume images are the same: by their maps' roots, which name every block, when the
 * IDs mean the same; across keys they are not compared (a copy does not translate them).
 */
function mapDifference(pair: Pair, x: Node, y: Node): Found | undefined {
  if (!x.blockMap || !y.blockMap) return { path: [], what: `${x.blockMap ? 'a volume image' : 'a list of blobs'} in the source, ${y.blockMap ? 'a volume image' : 'a list of blobs'} in the target`, unreadable: false };
  if (!pair.sameIds) return { path: [], what: 'volume images are compared only between repositories of the same keys', unreadable: true };
  return sameBlockMap(x.blockMap, y.blockMap) ? undefined : { path: [], what: 'content differs', unreadable: false };
}
