import { readContent } from '../restorer/content.js';
import { nonZeroRuns } from '../restorer/file-io.js';
import type { BlobReader } from '../repository/repository.js';
import type { Node } from '../tree/node.js';
import { archivePath, checkLength, contentLayout, unixSeconds, type ArchiveEntry, type ContentBlob } from './entries.js';
import type { Sink } from './sink.js';

// GNU tar's own format ("ustar  " magic, as `tar --format=gnu` writes): names and link targets
// of 100 bytes or more go in ././@LongLink members before the header, numbers too large for
// octal in base-256, sparse files as 'S' members with the map in the header.

const BLOCK = 512;
/** GNU tar writes whole records of 20 blocks; the last is filled with zeros after the two end blocks. */
const RECORD = 20 * BLOCK;
const NAME_FIELD = 100;
const LONG_LINK_NAME = Buffer.from('././@LongLink');
const OLDGNU_MAGIC = Buffer.from('ustar  \0', 'latin1');
const SPARSES_IN_HEADER = 4;
const SPARSES_IN_EXTENSION = 21;
/**
 * Data of a sparse file is scanned for zero blocks in at most this many regions; past it, whole
 * blobs are data. A file made of alternating blocks cannot grow the map (kept in memory, and
 * written before the content) without bound.
 */
const MAX_SPARSE_REGIONS = 65536;

const TYPE_FLAG: Record<Node['type'], string> = { file: '0', dir: '5', symlink: '2', fifo: '6', chardev: '3', blockdev: '4' };

interface Header {
  name: Buffer;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  linkName?: Buffer;
  user?: string;
  group?: string;
  rdev?: bigint;
  sparse?: SparseMap;
}

/** [offset, length] of each data region of a sparse file, in order; the rest are holes. */
interface SparseMap {
  regions: Array<[number, number]>;
  realSize: number;
}

/** Writes a GNU tar archive of `entries` to `sink`, content blob by blob. */
export class TarWriter {
  constructor(
    private readonly reader: BlobReader,
    private readonly sink: Sink,
  ) {}

  async add({ path, node, linkTo }: ArchiveEntry): Promise<void> {
    const name = node.type === 'dir' ? Buffer.concat([archivePath(path), Buffer.from('/')]) : archivePath(path);
    const header: Header = {
      name,
      type: TYPE_FLAG[node.type],
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      size: 0,
      mtime: unixSeconds(node.mtimeNs),
      user: node.user,
      group: node.group,
    };
    if (linkTo) {
      header.type = '1';
      header.linkName = archivePath(linkTo);
    } else if (node.type === 'symlink') {
      header.linkName = node.linkTarget ?? Buffer.alloc(0);
    } else if (node.type === 'chardev' || node.type === 'blockdev') {
      header.rdev = node.rdev ?? 0n;
    }
    if (node.type !== 'file' || linkTo) return this.writeHeader(header);

    const { blobs, length } = contentLayout(this.reader, node);
    header.size = length;
    const sparse = length > 0 && (node.sparse || (node.image && blobs.some((b) => b.zero))) ? await this.sparseMap(blobs, length) : undefined;
    if (!sparse || sparse.regions[0]![1] === length) {
      await this.writeHeader(header);
      await this.writeContent(blobs);
    } else {
      header.type = 'S';
      header.sparse = sparse;
      header.size = sparse.regions.reduce((sum, [, n]) => sum + n, 0);
      await this.writeHeader(header);
      await this.writeRegions(blobs, sparse.regions);
    }
    await this.pad(header.size);
  }

  /** The end of the archive: two zero blocks, and zeros to the end of the record. */
  async end(): Promise<void> {
    const end = this.sink.written + 2 * BLOCK;
    await this.sink.write(Buffer.alloc(end + ((RECORD - (end % RECORD)) % RECORD) - this.sink.written));
  }

  private async writeHeader(h: Header): Promise<void> {
    if (h.name.length >= NAME_FIELD) await this.writeLongLink('L', h.name);
    if (h.linkName && h.linkName.length >= NAME_FIELD) await this.writeLongLink('K', h.linkName);
    await this.sink.write(encodeHeader(h));
    if (h.sparse && h.sparse.regions.length > SPARSES_IN_HEADER) await this.sink.write(sparseExtensions(h.sparse.regions.slice(SPARSES_IN_HEADER)));
  }

  /** A ././@LongLink member: the whole name (or link target) with a NUL, for the header that follows. */
  private async writeLongLink(type: 'L' | 'K', bytes: Buffer): Promise<void> {
    const data = Buffer.concat([bytes, Buffer.alloc(1)]);
    await this.sink.write(encodeHeader({ name: LONG_LINK_NAME, type, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0n, user: 'root', group: 'root' }));
    await this.sink.write(data);
    await this.pad(data.length);
  }

  private async pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest !== 0) await this.sink.write(Buffer.alloc(BLOCK - rest));
  }

  private async writeContent(blobs: ContentBlob[]): Promise<void> {
    let i = 0;
    for await (const { data } of readContent(this.reader, blobs.map((b) => b.id))) {
      checkLength(blobs[i++]!, data);
      await this.sink.write(data);
    }
  }

  /**
   * The data regions of a sparse file: zero blobs are holes, known by their IDs; the other blobs
   * are read (once before the content is written, as GNU tar reads a sparse file twice) and their
   * zero 4 KiB blocks made holes too, as a restore leaves them. GNU tar reads each region's data
   * from blocks of its own, so every region but the last is a whole number of blocks (taking in
   * up to 511 zero bytes after it); the map ends, as GNU tar's do, with an empty region at the
   * file's end, which makes GNU tar set the length when the file ends in a hole.
   */
  private async sparseMap(blobs: ContentBlob[], realSize: number): Promise<SparseMap> {
    const regions: Array<[number, number]> = [];
    const add = (offset: number, length: number) => {
      const last = regions[regions.length - 1];
      if (last && last[0] + last[1] >= offset) last[1] = Math.max(last[1], offset + length - last[0]);
      else regions.push([offset, length]);
      const current = regions[regions.length - 1]!;
      current[1] = Math.min(Math.ceil(current[1] / BLOCK) * BLOCK, realSize - current[0]);
    };
    const data = blobs.filter((b) => !b.zero);
    let i = 0;
    for await (const { data: bytes } of readContent(this.reader, data.map((b) => b.id))) {
      const blob = data[i++]!;
      checkLength(blob, bytes);
      if (regions.length >= MAX_SPARSE_REGIONS) add(blob.offset, blob.length);
      else for (const [from, to] of nonZeroRuns(bytes, blob.offset)) add(blob.offset + from, to - from);
    }
    regions.push([realSize, 0]);
    return { regions, realSize };
  }

  /** The bytes of a sparse file's data regions, in order: from its blobs that are not zero, zeros from the others. */
  private async writeRegions(blobs: ContentBlob[], regions: Array<[number, number]>): Promise<void> {
    const loaded = readContent(this.reader, blobs.filter((b) => !b.zero).map((b) => b.id));
    let r = 0;
    try {
      for (const blob of blobs) {
        const bytes = blob.zero ? undefined : (await loaded.next()).value!.data;
        if (bytes) checkLength(blob, bytes);
        const end = blob.offset + blob.length;
        for (; r < regions.length && regions[r]![0] < end; r++) {
          const [offset, length] = regions[r]!;
          const from = Math.max(offset, blob.offset) - blob.offset;
          const to = Math.min(offset + length, end) - blob.offset;
          if (to > from) await this.sink.write(bytes ? bytes.subarray(from, to) : Buffer.alloc(to - from));
          if (offset + length > end) break;
        }
      }
    } finally {
      await loaded.return(undefined);
    }
  }
}

/** One 512-byte header block, as GNU tar lays it out (struct posix_header and oldgnu_header). */
function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(BLOCK);
  h.name.copy(b, 0, 0, NAME_FIELD);
  numeric(b, 100, 8, BigInt(h.mode));
  numeric(b, 108, 8, BigInt(h.uid));
  numeric(b, 116, 8, BigInt(h.gid));
  numeric(b, 124, 12, BigInt(h.size));
  numeric(b, 136, 12, h.mtime);
  b.write(h.type, 156, 'latin1');
  h.linkName?.copy(b, 157, 0, NAME_FIELD);
  OLDGNU_MAGIC.copy(b, 257);
  ownerName(b, 265, h.user);
  ownerName(b, 297, h.group);
  if (h.rdev !== undefined) {
    numeric(b, 329, 8, devMajor(h.rdev));
    numeric(b, 337, 8, devMinor(h.rdev));
  }
  if (h.sparse) {
    const { regions, realSize } = h.sparse;
    writeSparses(b, 386, regions.slice(0, SPARSES_IN_HEADER));
    if (regions.length > SPARSES_IN_HEADER) b[482] = 1;
    numeric(b, 483, 12, BigInt(realSize));
  }
  // The checksum is taken with its own field as spaces, and written as six digits, NUL, space.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

/** The map beyond the header's four regions: blocks of 21, each saying whether another follows. */
function sparseExtensions(regions: Array<[number, number]>): Buffer {
  const count = Math.ceil(regions.length / SPARSES_IN_EXTENSION);
  const out = Buffer.alloc(count * BLOCK);
  for (let k = 0; k < count; k++) {
    writeSparses(out, k * BLOCK, regions.slice(k * SPARSES_IN_EXTENSION, (k + 1) * SPARSES_IN_EXTENSION));
    if (k < count - 1) out[k * BLOCK + 504] = 1;
  }
  return out;
}

function writeSparses(b: Buffer, at: number, regions: Array<[number, number]>): void {
  regions.forEach(([offset, length], i) => {
    numeric(b, at + 24 * i, 12, BigInt(offset));
    numeric(b, at + 24 * i + 12, 12, BigInt(length));
  });
}

/**
 * A number field as GNU tar writes it: octal digits and a NUL when they fit, otherwise base-256
 * (two's complement, big-endian, the first byte's top bit set: 0x80 for a positive number).
 */
function numeric(b: Buffer, at: number, size: number, value: bigint): void {
  if (value >= 0n && value < 8n ** BigInt(size - 1)) {
    b.write(value.toString(8).padStart(size - 1, '0') + '\0', at, 'latin1');
    return;
  }
  let v = value < 0n ? (1n << BigInt(8 * size)) + value : value;
  for (let i = size - 1; i >= 0; i--, v >>= 8n) b[at + i] = Number(v & 0xffn);
  if (value >= 0n) b[at] = 0x80;
}

/** A user or group name: up to 32 bytes; a longer one is left out rather than cut to another's. */
function ownerName(b: Buffer, at: number, name: string | undefined): void {
  const bytes = Buffer.from(name ?? '', 'utf8');
  if (bytes.length <= 32) bytes.copy(b, at);
}

/** glibc's major() and minor() of a Linux dev_t. */
function devMajor(dev: bigint): bigint {
  return ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
}

function devMinor(dev: bigint): bigint {
  return (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
}
