import { isUtf8 } from 'node:buffer';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { ExitCode, ScrateError } from '../errors.js';
import { readContent } from '../restorer/content.js';
import type { BlobReader } from '../repository/repository.js';
import { displayName, type Node } from '../tree/node.js';
import { archivePath, checkLength, contentLayout, unixSeconds, type ArchiveEntry } from './entries.js';
import type { Sink } from './sink.js';

/**
 * fflate writes no zip64: sizes and offsets are 32-bit fields, and the member count 16-bit. An
 * archive that would pass either limit is refused, before the member that would pass it, not
 * written wrong.
 */
const MAX_OFFSET = 0xffffffff;
const MAX_MEMBERS = 0xffff;
const MAX_NAME = 0xffff;

const S_IFMT: Partial<Record<Node['type'], number>> = { file: 0o100000, dir: 0o040000, symlink: 0o120000 };
const MSDOS_DIRECTORY = 0x10;
const UNIX = 3;
/** Info-ZIP's extra fields: modification time as Unix seconds ("UT"), and uid/gid ("ux"). */
const EXTENDED_TIMESTAMP = 0x5455;
const INFOZIP_UNIX = 0x7875;
const LOCAL_HEADER_NAME = 30;
const CENTRAL_HEADER_NAME = 46;
/** Deflate only what the repository's own compression found compressible (stored at most this part of its size). */
const COMPRESSIBLE = 0.9;
/**
 * fflate's deflate runs in JavaScript: a dump of 333 MiB of `seq` output took 16 s at level 1
 * and 36 s at level 6, for the same size (71 MB).
 */
const DEFLATE_LEVEL = 1;

/**
 * Writes a zip archive through fflate's streaming Zip: each member's content goes in blob by
 * blob, and what fflate gives back is written out (with backpressure) before the next blob.
 * Modes, file types and owners go where Info-ZIP puts them, so `unzip` restores symlinks,
 * permissions and (with -X) owners.
 */
export class ZipWriter {
  private readonly zip: Zip;
  private readonly out: Uint8Array[] = [];
  private failure: Error | undefined;
  private members = 0;
  /** Names that are not UTF-8, by member number: fflate takes names as text, so their bytes are put in afterwards. */
  private readonly rawNames = new Map<number, Buffer>();
  /** The name bytes of the member whose local header fflate gives next. */
  private nextRawName: Buffer | undefined;

  constructor(
    private readonly reader: BlobReader,
    private readonly sink: Sink,
  ) {
    this.zip = new Zip((err, data) => {
      if (err) this.failure ??= err;
      else this.out.push(data);
    });
  }

  /** Hard links are not in the zip format: each name gets the content. Fifos and devices are left out, as restic does. */
  async add({ path, node }: ArchiveEntry): Promise<void> {
    if (node.type !== 'file' && node.type !== 'dir' && node.type !== 'symlink') return;
    const name = node.type === 'dir' ? Buffer.concat([archivePath(path), Buffer.from('/')]) : archivePath(path);
    const content = node.type === 'file' ? contentLayout(this.reader, node) : undefined;
    const length = content?.length ?? node.linkTarget?.length ?? 0;
    // Deflate's worst case adds 5 bytes a 16 KiB block; headers and a data descriptor are below 1 KiB.
    if (this.sink.written + length + Math.ceil(length / 16384) * 5 + name.length + 1024 > MAX_OFFSET) {
      throw new ScrateError(`${displayName(archivePath(path))}: the zip archive would pass 4 GiB, which fflate's zip writer cannot address (no zip64)`, ExitCode.fatal, 'use --archive tar');
    }
    if (name.length > MAX_NAME) throw new ScrateError(`${displayName(name)}: a name of more than ${MAX_NAME} bytes does not fit a zip header`, ExitCode.fatal, 'use --archive tar');
    if (this.members === MAX_MEMBERS) throw new ScrateError(`more than ${MAX_MEMBERS} members: fflate's zip writer cannot count them (no zip64)`, ExitCode.fatal, 'use --archive tar');
    const compress = content !== undefined && content.blobs.reduce((sum, b) => sum + b.stored, 0) < COMPRESSIBLE * content.length;
    const raw = !isUtf8(name);
    const text = raw ? 'x'.repeat(name.length) : name.toString('utf8');
    const member = compress ? new ZipDeflate(text, { level: DEFLATE_LEVEL }) : new ZipPassThrough(text);
    if (raw) {
      this.rawNames.set(this.members, name);
      this.nextRawName = name;
    }
    member.os = UNIX;
    member.attrs = (S_IFMT[node.type]! | node.mode) * 0x10000 + (node.type === 'dir' ? MSDOS_DIRECTORY : 0);
    member.mtime = dosTime(node.mtimeNs);
    member.extra = { [EXTENDED_TIMESTAMP]: extendedTimestamp(node.mtimeNs), [INFOZIP_UNIX]: unixOwner(node) };
    this.zip.add(member);
    this.members++;
    if (content) {
      let i = 0;
      for await (const { data } of readContent(this.reader, content.blobs.map((b) => b.id))) {
        checkLength(content.blobs[i++]!, data);
        member.push(data);
        await this.flush();
      }
    } else if (node.type === 'symlink' && node.linkTarget) {
      member.push(node.linkTarget);
    }
    member.push(new Uint8Array(0), true);
    await this.flush();
  }

  async end(): Promise<void> {
    this.zip.end();
    const directory = this.out[this.out.length - 1];
    if (directory) this.putRawNames(directory);
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failure) throw new ScrateError(`zip: ${this.failure.message}`);
    while (this.out.length > 0) {
      const chunk = this.out.shift()!;
      if (this.nextRawName) {
        putName(chunk, LOCAL_HEADER_NAME, 0x04034b50, this.nextRawName);
        this.nextRawName = undefined;
      }
      await this.sink.write(chunk);
    }
  }

  /** The central directory (fflate's last chunk) with the bytes of names that are not UTF-8. */
  private putRawNames(directory: Uint8Array): void {
    const view = Buffer.from(directory.buffer, directory.byteOffset, directory.byteLength);
    let at = 0;
    for (let member = 0; member < this.members; member++) {
      const raw = this.rawNames.get(member);
      if (raw) putName(view.subarray(at), CENTRAL_HEADER_NAME, 0x02014b50, raw);
      at += CENTRAL_HEADER_NAME + view.readUInt16LE(at + 28) + view.readUInt16LE(at + 30) + view.readUInt16LE(at + 32);
    }
  }
}

/** Puts a member's name bytes into a header that fflate wrote with a placeholder of their length. */
function putName(header: Uint8Array, nameAt: number, signature: number, name: Buffer): void {
  const view = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  if (view.length < nameAt + name.length || view.readUInt32LE(0) !== signature || view.readUInt16LE(nameAt - (nameAt === LOCAL_HEADER_NAME ? 4 : 18)) !== name.length) {
    throw new Error('zip: a header is not where fflate was expected to put it');
  }
  name.copy(view, nameAt);
}

/** DOS times (local, two-second steps) span 1980 to 2107, fflate's to 2099: outside, the nearest end; the "UT" field has the time itself. */
function dosTime(mtimeNs: bigint): Date {
  const t = new Date(Number(mtimeNs / 1_000_000n));
  if (t.getFullYear() < 1980) return new Date(1980, 0, 1);
  if (t.getFullYear() > 2099) return new Date(2099, 11, 31, 23, 59, 58);
  return t;
}

/** Info-ZIP's "UT" field with the modification time only (flag bit 0), as signed 32-bit Unix seconds. */
function extendedTimestamp(mtimeNs: bigint): Uint8Array {
  const b = Buffer.alloc(5);
  b[0] = 1;
  const seconds = Number(unixSeconds(mtimeNs));
  b.writeInt32LE(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, seconds)), 1);
  return b;
}

/** Info-ZIP's "ux" field, version 1: uid and gid of 4 bytes each. */
function unixOwner(node: Node): Uint8Array {
  const b = Buffer.alloc(11);
  b[0] = 1;
  b[1] = 4;
  b.writeUInt32LE(node.uid, 2);
  b[6] = 4;
  b.writeUInt32LE(node.gid, 7);
  return b;
}
