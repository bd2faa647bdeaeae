import { IntegrityError } from '../errors.js';
import { BlobCache } from '../mount/blob-cache.js';
import { BlobType } from '../repository/pack.js';
import type { BlobLocation } from '../repository/blob-index.js';
import { decodeSealedBlob, type BlobReader } from '../repository/repository.js';
import type { ReadPiece } from './nbd/export.js';

/** What a version of the block map answers: the data blob of a block, or null for zeros. */
export interface BlockLookup {
  get(block: number): Promise<Buffer | null>;
}

/** Blocks a sequential reader is read ahead of, at most (4 MiB of 64 KiB blocks). */
const MAX_AHEAD = 64;
/**
 * One ranged read spans at most this much of a pack and skips gaps of at most MAX_GAP: the
 * uploader packs neighbouring blocks together, so a forward reader's next blocks are mostly one
 * dense stretch, and a random reader's neighbours are not read for nothing.
 */
const MAX_RANGE = 8 * 1024 * 1024;
const MAX_GAP = 256 * 1024;

/**
 * Block contents as the repository holds them, under whichever version of the map is asked
 * (the live one, or a commit's fork): decrypted blocks are kept in a bounded cache, so the
 * kernel's small reads of one block cost one load. A block not cached is read together with
 * its neighbours in the same pack — blocks written together sit together — and a reader going
 * forward has the next blocks (up to 4 MiB, doubling) read ahead: one GET for many blocks.
 */
export class StoredBlocks {
  private readonly cache: BlobCache;
  private lastBlock = -2;
  private ahead = 1;
  /** Blocks a ranged read under way covers, and that read. */
  private readonly fetching = new Map<number, Promise<void>>();

  constructor(
    private readonly reader: BlobReader,
    private readonly size: number,
    private readonly blockSize: number,
    cacheBytes: number,
  ) {
    this.cache = new BlobCache(cacheBytes, (r, id) => r.loadBlob(BlobType.data, id));
  }

  /** The block's bytes, null when the map has none (zeros). */
  async read(map: BlockLookup, block: number): Promise<Buffer | null> {
    const id = await map.get(block);
    if (!id) return null;
    const loc = this.locate(block, id);
    const sequential = block === this.lastBlock + 1 || block === this.lastBlock;
    this.ahead = sequential ? Math.min(MAX_AHEAD, this.ahead * 2) : 1;
    this.lastBlock = block;
    // A read of a block another read is fetching with its neighbours waits for that one GET.
    await this.fetching.get(block);
    if (!this.cache.has(this.reader, id)) {
      const last = Math.min(Math.ceil(this.size / this.blockSize) - 1, block + this.ahead);
      const fetch = this.loadAround(map, block, last, id, loc);
      for (let b = block; b <= last; b++) this.fetching.set(b, fetch);
      await fetch;
      for (let b = block; b <= last; b++) if (this.fetching.get(b) === fetch) this.fetching.delete(b);
    }
    try {
      return await this.cache.get(this.reader, id, loc.rawLength);
    } catch {
      // Read with its neighbours and found damaged: once more alone, through the verified path.
      return this.reader.loadBlob(BlobType.data, id);
    }
  }

  private locate(block: number, id: Buffer): BlobLocation {
    const what = `volume block ${block}`;
    const loc = this.reader.find(BlobType.data, id);
    if (!loc) throw new IntegrityError(what, `its blob ${id.toString('hex').slice(0, 12)} is not in the index (missing pack or index)`);
    // A map from a hostile writer may name a blob of any length: the block is refused, not served short or long.
    const expected = Math.min(this.blockSize, this.size - block * this.blockSize);
    if (loc.rawLength !== expected) throw new IntegrityError(what, `its blob holds ${loc.rawLength} bytes, not ${expected}`);
    return loc;
  }

  /**
   * Reads `id` and the blocks after it (as far as the read-ahead goes) that lie in the same pack
   * near it, in one ranged read, each decoded into the cache. Whatever goes wrong here leaves
   * the block to the cache's own load (one blob, verified, read again on damage).
   */
  private async loadAround(map: BlockLookup, block: number, last: number, id: Buffer, loc: BlobLocation): Promise<void> {
    const wanted: { id: Buffer; loc: BlobLocation }[] = [{ id, loc }];
    try {
      for (let b = block + 1; b <= last; b++) {
        const next = await map.get(b);
        if (!next) continue;
        const l = this.locate(b, next);
        // Identical blocks are one blob: read once.
        if (l.pack === loc.pack && !wanted.some((w) => w.id.equals(next))) wanted.push({ id: next, loc: l });
      }
    } catch {
      // A damaged neighbour is its own read's error, not this one's.
    }
    // Decided from here on without a pause: what another read began to fetch meanwhile is left to it.
    if (this.cache.has(this.reader, id)) return;
    for (let k = wanted.length - 1; k > 0; k--) if (this.cache.has(this.reader, wanted[k]!.id)) wanted.splice(k, 1);
    wanted.sort((a, b) => a.loc.offset - b.loc.offset);
    const start = wanted.findIndex((w) => w.loc === loc);
    let from = start;
    let to = start;
    const end = (k: number) => wanted[k]!.loc.offset + wanted[k]!.loc.length;
    while (from > 0 && loc.offset - end(from - 1) <= MAX_GAP && end(start) - wanted[from - 1]!.loc.offset <= MAX_RANGE) from--;
    while (to + 1 < wanted.length && wanted[to + 1]!.loc.offset - end(to) <= MAX_GAP && end(to + 1) - wanted[from]!.loc.offset <= MAX_RANGE) to++;
    if (from === to) return;
    const group = wanted.slice(from, to + 1);
    const offset = group[0]!.loc.offset;
    const packId = loc.pack.id.toString('hex');
    const bytes = this.reader.backend.load('data', packId, { range: { offset, length: end(to) - offset } });
    const packKey = this.reader.packKey(packId, loc.pack.envelope);
    for (const w of group) {
      const sealed = (b: Buffer) => b.subarray(w.loc.offset - offset, w.loc.offset - offset + w.loc.length);
      this.cache.put(this.reader, w.id, () => bytes.then((b) => decodeSealedBlob(packKey, this.reader.chunkIdKey, w.id, w.loc, sealed(b), packId)), w.loc.rawLength);
    }
    await bytes.catch(() => undefined);
  }
}

/**
 * The pieces of a read of [offset, offset + length) over blocks of `blockSize`, each block's
 * bytes from `block` (null: zeros), all fetched at once; runs of zeros become one piece.
 */
export async function readBlocks(offset: number, length: number, blockSize: number, block: (n: number) => Promise<Buffer | null>): Promise<ReadPiece[]> {
  const spans: { n: number; from: number; len: number }[] = [];
  for (let at = offset; at < offset + length; ) {
    const n = Math.floor(at / blockSize);
    const from = at - n * blockSize;
    const len = Math.min(blockSize - from, offset + length - at);
    spans.push({ n, from, len });
    at += len;
  }
  const data = await Promise.all(spans.map((s) => block(s.n)));
  const pieces: ReadPiece[] = [];
  spans.forEach((s, k) => {
    const d = data[k];
    const last = pieces[pieces.length - 1];
    if (d) pieces.push(d.subarray(s.from, s.from + s.len));
    else if (last && !Buffer.isBuffer(last)) last.zeros += s.len;
    else pieces.push({ zeros: s.len });
  });
  return pieces;
}
