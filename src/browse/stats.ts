import { checkAborted, IntegrityError } from '../errors.js';
import { sha256, TAG_BYTES } from '../crypto/primitives.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import type { SnapshotEntry } from '../snapshot/snapshot.js';
import type { Node } from '../tree/node.js';
import { firstVisit } from '../tree/block-map.js';
import { loadTree, openBlockMap } from '../tree/walk.js';

/** restic's counting modes. */
export const STATS_MODES = ['restore-size', 'files-by-contents', 'raw-data', 'blobs-per-file'] as const;
export type StatsMode = (typeof STATS_MODES)[number];

/** restic's statsContainer: what a mode does not count stays 0. */
export interface Stats {
  snapshotsCount: number;
  totalSize: number;
  totalFileCount: number;
  totalBlobCount: number;
  /** raw-data: the stored size the blobs would have uncompressed. */
  totalUncompressedSize: number;
  /** raw-data, of the compressed blobs: their size uncompressed over their stored size. */
  compressionRatio: number;
  /** raw-data: percent of the uncompressed size in blobs that are stored compressed. */
  compressionProgress: number;
  /** raw-data: percent of the uncompressed size that compression saves. */
  compressionSpaceSaving: number;
}

/**
 * Counts over the snapshots as restic's `stats` in `mode`, from trees and the index alone (no
 * file data is read). Each tree is read once however many snapshots share it.
 *
 * - restore-size: every node below the root (directories too), and the bytes a restore writes:
 *   file sizes, a hard-linked file's (links > 1, same device and inode) once per snapshot.
 * - files-by-contents: nodes by their content (the sequence of its blobs): each content once
 *   over all snapshots, with its size. As restic's, nodes without content (directories,
 *   symlinks, empty files) are one content, of the size of the first met.
 * - blobs-per-file: for each content met the first time, its file (by path) and the plaintext
 *   size of each of its blobs once per path.
 * - raw-data: every blob the snapshots use, trees included, once, with its stored size.
 *
 * Blob IDs are keyed per writer, so the same content written by two writers counts twice: it
 * is stored twice.
 */
export async function collectStats(repo: Repository, snapshots: readonly SnapshotEntry[], mode: StatsMode, signal?: AbortSignal): Promise<Stats> {
  const stats: Stats = { snapshotsCount: snapshots.length, totalSize: 0, totalFileCount: 0, totalBlobCount: 0, totalUncompressedSize: 0, compressionRatio: 0, compressionProgress: 0, compressionSpaceSaving: 0 };
  const counter: Counter = mode === 'restore-size' ? new RestoreSize(stats, signal) : mode === 'raw-data' ? new RawData(stats, signal) : new UniqueContents(stats, mode === 'blobs-per-file', signal);
  for (const e of snapshots) await counter.snapshot(repo.reader(e.writer), Buffer.from(e.snapshot.tree, 'hex'));
  counter.finish?.();
  return stats;
}

/** A blob's key among all writers' blobs: its writer, type and ID (binary, to keep millions small). */
function blobKey(reader: BlobReader, type: BlobType, id: Buffer): string {
  return `${reader.writer.no}:${type}:${id.toString('latin1')}`;
}

interface Counter {
  snapshot(reader: BlobReader, root: Buffer): Promise<void>;
  finish?(): void;
}

/** What a tree adds to a restore: its nodes, the sizes of those counted each time, and the hard-linked files by device:inode. */
interface RestoreTotals {
  nodes: number;
  size: number;
  /** Only when there are any: most trees have none, and a repository may have millions of trees. */
  linked?: Map<string, number>;
}

class RestoreSize implements Counter {
  /** Per tree, once: a snapshot's total is its root's, hard links merged across directories. */
  private readonly trees = new Map<string, RestoreTotals>();

  constructor(
    private readonly stats: Stats,
    private readonly signal?: AbortSignal,
  ) {}

  async snapshot(reader: BlobReader, root: Buffer): Promise<void> {
    const t = await this.tree(reader, root);
    this.stats.totalFileCount += t.nodes;
    this.stats.totalSize += t.size;
    for (const size of t.linked?.values() ?? []) this.stats.totalSize += size;
  }

  private async tree(reader: BlobReader, id: Buffer): Promise<RestoreTotals> {
    const key = blobKey(reader, BlobType.tree, id);
    const known = this.trees.get(key);
    if (known) return known;
    checkAborted(this.signal);
    const totals: RestoreTotals = { nodes: 0, size: 0 };
    for (const node of await loadTree(reader, id)) {
      totals.nodes++;
      // restic's rule: a directory or a file of one link always; others once per device and inode (inode 0: always).
      if (node.links === 1 || node.type === 'dir' || node.inode === 0n) totals.size += node.size;
      else addLinked(totals, `${node.deviceId}:${node.inode}`, node.size);
      if (node.type === 'dir' && node.subtree) {
        const sub = await this.tree(reader, node.subtree);
        totals.nodes += sub.nodes;
        totals.size += sub.size;
        for (const [inode, size] of sub.linked ?? []) addLinked(totals, inode, size);
      }
    }
    this.trees.set(key, totals);
    return totals;
  }
}

/** The first name met of an inode counts, as in restic's walk. */
function addLinked(totals: RestoreTotals, inode: string, size: number): void {
  totals.linked ??= new Map();
  if (!totals.linked.has(inode)) totals.linked.set(inode, size);
}

/** Walks each tree once: all it holds was counted the first time it was met. */
abstract class TreesOnce implements Counter {
  private readonly seen = new Set<string>();

  constructor(protected readonly signal?: AbortSignal) {}

  async snapshot(reader: BlobReader, root: Buffer): Promise<void> {
    await this.walk(reader, root, '');
  }

  private async walk(reader: BlobReader, id: Buffer, dir: string): Promise<void> {
    const key = blobKey(reader, BlobType.tree, id);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    checkAborted(this.signal);
    this.tree(reader, id);
    for (const node of await loadTree(reader, id)) {
      const path = `${dir}/${node.name.toString('latin1')}`;
      await this.node(reader, node, path);
      if (node.type === 'dir' && node.subtree) await this.walk(reader, node.subtree, path);
    }
  }

  /** Called for each tree the first time it is met. */
  protected tree(_reader: BlobReader, _id: Buffer): void {}

  protected abstract node(reader: BlobReader, node: Node, path: string): void | Promise<void>;
}

class UniqueContents extends TreesOnce {
  private readonly contents = new Set<string>();
  /** blobs-per-file: the blobs counted per file path. */
  private readonly fileBlobs = new Map<string, Set<string>>();

  constructor(
    private readonly stats: Stats,
    private readonly perFile: boolean,
    signal?: AbortSignal,
  ) {
    super(signal);
  }

  protected async node(reader: BlobReader, node: Node, path: string): Promise<void> {
    const content = node.content ?? [];
    // As restic's file ID: a hash of the blob IDs in order (a large file has thousands); a volume's map root names all its blocks.
    const key = `${reader.writer.no}:${node.blockMap ? `map:${node.blockMap.root.toString('latin1')}` : sha256(Buffer.concat(content)).toString('latin1')}`;
    if (this.contents.has(key)) return;
    this.contents.add(key);
    if (!this.perFile) {
      this.stats.totalSize += node.size;
      this.stats.totalFileCount++;
      return;
    }
    const add = (id: Buffer) => {
      let blobs = this.fileBlobs.get(path);
      if (!blobs) {
        this.fileBlobs.set(path, (blobs = new Set()));
        this.stats.totalFileCount++;
      }
      const blob = id.toString('latin1');
      if (blobs.has(blob)) return;
      blobs.add(blob);
      this.stats.totalSize += locate(reader, BlobType.data, id).rawLength;
      this.stats.totalBlobCount++;
    };
    for (const id of content) add(id);
    if (node.blockMap) await openBlockMap(reader, node.blockMap, { cacheBytes: 0 }).walk(firstVisit(), add);
  }
}

class RawData extends TreesOnce {
  private readonly blobs = new Set<string>();
  /** Sizes of the blobs stored compressed: as stored, and as they would be stored uncompressed. */
  private compressedSize = 0;
  private compressedUncompressedSize = 0;

  constructor(
    private readonly stats: Stats,
    signal?: AbortSignal,
  ) {
    super(signal);
  }

  protected override tree(reader: BlobReader, id: Buffer): void {
    this.blob(reader, BlobType.tree, id);
  }

  protected async node(reader: BlobReader, node: Node): Promise<void> {
    for (const id of node.content ?? []) this.blob(reader, BlobType.data, id);
    if (node.blockMap) {
      // A map node counted before was counted with everything below it.
      const visitNode = (id: Buffer) => this.blob(reader, BlobType.tree, id);
      await openBlockMap(reader, node.blockMap, { cacheBytes: 0 }).walk(visitNode, (id) => this.blob(reader, BlobType.data, id));
    }
  }

  /** Counts the blob unless it was; whether it was new. */
  private blob(reader: BlobReader, type: BlobType, id: Buffer): boolean {
    const key = blobKey(reader, type, id);
    if (this.blobs.has(key)) return false;
    this.blobs.add(key);
    const loc = locate(reader, type, id);
    // As restic's UncompressedCiphertextLength: the plaintext sealed, with its tag.
    const uncompressed = loc.rawLength + TAG_BYTES;
    this.stats.totalSize += loc.length;
    this.stats.totalUncompressedSize += uncompressed;
    if (loc.compressed) {
      this.compressedSize += loc.length;
      this.compressedUncompressedSize += uncompressed;
    }
    this.stats.totalBlobCount++;
    return true;
  }

  finish(): void {
    const s = this.stats;
    if (this.compressedSize > 0) s.compressionRatio = this.compressedUncompressedSize / this.compressedSize;
    if (s.totalUncompressedSize > 0) {
      s.compressionProgress = (this.compressedUncompressedSize / s.totalUncompressedSize) * 100;
      s.compressionSpaceSaving = (1 - s.totalSize / s.totalUncompressedSize) * 100;
    }
  }
}

function locate(reader: BlobReader, type: BlobType, id: Buffer) {
  const loc = reader.find(type, id);
  if (!loc) throw new IntegrityError(`${type === BlobType.tree ? 'tree' : 'blob'} ${id.toString('hex').slice(0, 12)}`, 'not in the index');
  return loc;
}
