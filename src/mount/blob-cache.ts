import type { BlobReader } from '../repository/repository.js';

interface Cached {
  data: Promise<Buffer>;
  bytes: number;
}

/**
 * Decrypted content blobs, least recently used first out once their bytes pass the budget: a
 * mount reads a file in kernel-sized pieces (128 KiB to 1 MiB), each a slice of a blob of about
 * 1 MiB, and a blob is decrypted once for all of them. A load in flight counts as its size, so
 * read-ahead cannot overrun the budget; a failed load is forgotten at once, to be tried again.
 */
export class BlobCache {
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;

  constructor(
    private readonly budget: number,
    private readonly load: (reader: BlobReader, id: Buffer) => Promise<Buffer>,
  ) {}

  get(reader: BlobReader, id: Buffer, rawLength: number): Promise<Buffer> {
    const key = `${reader.writer.no}:${id.toString('hex')}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.data;
    }
    const data = this.load(reader, id);
    this.insert(key, data, rawLength);
    return data;
  }

  /**
   * A blob loaded some other way (several at once from one ranged read), unless it is cached
   * already: kept as if get had loaded it. One that fails is forgotten, so get loads it again
   * on its own.
   */
  put(reader: BlobReader, id: Buffer, data: () => Promise<Buffer>, rawLength: number): void {
    const key = `${reader.writer.no}:${id.toString('hex')}`;
    if (!this.entries.has(key)) this.insert(key, data(), rawLength);
  }

  private insert(key: string, data: Promise<Buffer>, rawLength: number): void {
    const entry = { data, bytes: rawLength };
    data.catch(() => {
      if (this.entries.get(key) === entry) this.drop(key, entry);
    });
    this.entries.set(key, entry);
    this.bytes += rawLength;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.budget || e === entry) break;
      this.drop(k, e);
    }
  }

  /** Whether the blob is cached or on its way: read-ahead starts only what is not. */
  has(reader: BlobReader, id: Buffer): boolean {
    return this.entries.has(`${reader.writer.no}:${id.toString('hex')}`);
  }

  private drop(key: string, entry: Cached): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
