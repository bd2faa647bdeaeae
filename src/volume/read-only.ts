import { BlobCache } from '../mount/blob-cache.js';
import { FileContent } from '../mount/file-content.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { BlockMapReader } from '../tree/block-map.js';
import type { Node } from '../tree/node.js';
import { NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';
import { Errno, STATE_HOLE, STATE_ZERO, type Extent } from './nbd/protocol.js';
import { StoredBlocks } from './stored-blocks.js';

/** How many map runs one BLOCK_STATUS answer gives, at most. */
const MAX_EXTENTS = 1024;

/**
 * A committed version of a volume, or any device snapshot, served read-only: a volume commit
 * through its block map, a device backup through its list of chunks. Needs no cache and no
 * volume lock: what it serves never changes.
 */
export function snapshotExport(reader: BlobReader, name: string, description: string, node: Node, readCacheBytes: number): BlockExport {
  return node.blockMap ? new MapExport(reader, name, description, node, readCacheBytes) : new ListExport(reader, name, description, node, readCacheBytes);
}

abstract class ReadOnlyExport {
  readonly readOnly = true;
  readonly size: number;

  constructor(
    readonly name: string,
    readonly description: string,
    node: Node,
  ) {
    this.size = node.size;
  }

  async write(): Promise<void> {
    throw new NbdError(Errno.EPERM, 'a committed version is read-only');
  }

  async zero(): Promise<void> {
    throw new NbdError(Errno.EPERM, 'a committed version is read-only');
  }

  async flush(): Promise<void> {}
}

class MapExport extends ReadOnlyExport implements BlockExport {
  readonly preferredBlock: number;
  private readonly map: BlockMapReader;
  private readonly blocks: StoredBlocks;

  constructor(reader: BlobReader, name: string, description: string, node: Node, readCacheBytes: number) {
    super(name, description, node);
    const ref = node.blockMap!;
    this.preferredBlock = ref.blockSize;
    this.map = new BlockMapReader(ref, (id) => reader.loadBlob(BlobType.tree, id));
    this.blocks = new StoredBlocks(reader, node.size, ref.blockSize, readCacheBytes);
  }

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    const B = this.preferredBlock;
    const lookup = { get: (block: number) => this.map.lookup(block) };
    const pieces: ReadPiece[] = [];
    const spans: { block: number; from: number; n: number }[] = [];
    for (let at = offset; at < offset + length; ) {
      const block = Math.floor(at / B);
      const from = at - block * B;
      const n = Math.min(B - from, offset + length - at);
      spans.push({ block, from, n });
      at += n;
    }
    const data = await Promise.all(spans.map((s) => this.blocks.read(lookup, s.block)));
    spans.forEach((s, k) => {
      const d = data[k];
      const last = pieces[pieces.length - 1];
      if (d) pieces.push(d.subarray(s.from, s.from + s.n));
      else if (last && !Buffer.isBuffer(last)) last.zeros += s.n;
      else pieces.push({ zeros: s.n });
    });
    return pieces;
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    const B = this.preferredBlock;
    const out: Extent[] = [];
    const end = Math.min(this.size, offset + length);
    for await (const run of this.map.extents(Math.floor(offset / B), Math.ceil(end / B))) {
      const from = Math.max(offset, run.block * B);
      const to = Math.min(end, (run.block + run.count) * B);
      const flags = run.id ? 0 : STATE_HOLE | STATE_ZERO;
      const last = out[out.length - 1];
      if (last && last.flags === flags) last.length += to - from;
      else if (out.length === MAX_EXTENTS) break;
      else out.push({ length: to - from, flags });
    }
    return out;
  }
}

/** A device backup: its chunks as mount reads them; the whole range is data. */
class ListExport extends ReadOnlyExport implements BlockExport {
  readonly preferredBlock = 64 * 1024;
  private readonly content: FileContent;

  constructor(reader: BlobReader, name: string, description: string, node: Node, readCacheBytes: number) {
    super(name, description, node);
    const cache = new BlobCache(readCacheBytes, (r, id) => r.loadBlob(BlobType.data, id));
    this.content = new FileContent(reader, node.content ?? [], cache, 8);
  }

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    const pieces: ReadPiece[] = await this.content.read(offset, length);
    const got = pieces.reduce((n, p) => n + (p as Buffer).length, 0);
    // Content shorter than the node's size (a damaged or planted snapshot) reads as zeros past its end.
    if (got < length) pieces.push({ zeros: length - got });
    return pieces;
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    return [{ length: Math.min(length, this.size - offset), flags: 0 }];
  }
}
