import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { isZeroBlob, locate } from '../restorer/content.js';
import type { BlobCache } from './blob-cache.js';

/** The pieces fuse.replyData takes. */
const MAX_PIECES = 64;

/** One shared all-zero buffer, grown to the largest zero blob read: zero regions are never loaded. */
let zeros = Buffer.alloc(0);

export function zeroBytes(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

/** Small blobs (a repository may have any) or blocks: joined, as a reply takes at most MAX_PIECES. */
export function joinPieces(pieces: Buffer[]): Buffer[] {
  return pieces.length > MAX_PIECES ? [Buffer.concat(pieces)] : pieces;
}

/**
 * The content of one file of a snapshot as random access: an offset maps to its blob by the
 * blobs' plaintext lengths from the index, and each read takes its bytes from the blob cache.
 * A read that continues where the last one ended (the kernel's read-ahead, a copy, a hash)
 * starts loading the next blobs, several at once, as `scrate dump` does.
 */
export class FileContent {
  /** Where each blob ends in the file; computed on the first read. */
  private ends: Float64Array | undefined;
  private zero: Uint8Array | undefined;
  private lengths: Uint32Array | undefined;
  /** The blob the last read ended in, for telling sequential reads from random ones. */
  private lastBlob = -2;

  constructor(
    private readonly reader: BlobReader,
    private readonly ids: readonly Buffer[],
    private readonly cache: BlobCache,
    /** Blobs loaded ahead of a sequential reader. */
    private readonly ahead: number,
  ) {}

  /** Up to `size` bytes from `offset`, as slices of blobs in order; fewer only at the end of the content. */
  async read(offset: number, size: number): Promise<Buffer[]> {
    const ends = this.layout();
    const total = ends.length ? ends[ends.length - 1]! : 0;
    if (offset >= total || size === 0) return [];
    const end = Math.min(total, offset + size);
    const first = this.blobAt(offset);
    let last = first;
    while (ends[last]! < end) last++;
    if (first === this.lastBlob || first === this.lastBlob + 1) this.readAhead(last + 1);
    this.lastBlob = last;
    const pieces: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const start = i === 0 ? 0 : ends[i - 1]!;
      const blob = await this.blob(i);
      pieces.push(blob.subarray(Math.max(0, offset - start), Math.min(blob.length, end - start)));
    }
    return joinPieces(pieces);
  }

  private blob(i: number): Promise<Buffer> {
    if (this.zero![i]) return Promise.resolve(zeroBytes(this.lengths![i]!));
    return this.cache.get(this.reader, this.ids[i]!, this.lengths![i]!);
  }

  private readAhead(from: number): void {
    for (let i = from; i < Math.min(this.ids.length, from + this.ahead); i++) {
      if (this.zero![i] || this.cache.has(this.reader, this.ids[i]!)) continue;
      // Observed when read; a failure here is only a read-ahead that did not happen.
      this.blob(i).catch(() => undefined);
    }
  }

  /** The first blob that ends after `offset`. */
  private blobAt(offset: number): number {
    const ends = this.ends!;
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private layout(): Float64Array {
    if (this.ends) return this.ends;
    const n = this.ids.length;
    const ends = new Float64Array(n);
    this.zero = new Uint8Array(n);
    this.lengths = new Uint32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const loc = locate(this.reader, this.ids[i]!);
      this.lengths[i] = loc.rawLength;
      this.zero[i] = isZeroBlob(this.reader, this.ids[i]!, loc) ? 1 : 0;
      ends[i] = at += loc.rawLength;
    }
    this.ends = ends;
    return ends;
  }
}

/**
 * Bytes of a file's blobs that are not zero blobs: what a sparse file allocates. A blob missing
 * from the index counts as nothing here: it fails the file's reads, not its listing.
 */
export function storedBytes(reader: BlobReader, ids: readonly Buffer[]): number {
  let bytes = 0;
  for (const id of ids) {
    const loc = reader.find(BlobType.data, id);
    if (loc && !isZeroBlob(reader, id, loc)) bytes += loc.rawLength;
  }
  return bytes;
}
