import { ExitCode, ScrateError } from '../errors.js';
import { readContent } from '../restorer/content.js';
import type { BlobReader } from '../repository/repository.js';
import { displayName, type Node } from '../tree/node.js';
import { archivePath, checkLength, contentLayout, unixSeconds, type ArchiveEntry } from './entries.js';
import type { Sink } from './sink.js';
import { ZipStream } from './zip-stream.js';

const MAX_NAME = 0xffff;

const S_IFMT: Partial<Record<Node['type'], number>> = { file: 0o100000, dir: 0o040000, symlink: 0o120000 };
const MSDOS_DIRECTORY = 0x10;
/** Info-ZIP's extra fields: modification time as Unix seconds ("UT"), and uid/gid ("ux"). */
const EXTENDED_TIMESTAMP = 0x5455;
const INFOZIP_UNIX = 0x7875;
/** Deflate only what the repository's own compression found compressible (stored at most this part of its size). */
const COMPRESSIBLE = 0.9;
/**
 * fflate's deflate runs in JavaScript: a dump of 333 MiB of `seq` output took 16 s at level 1
 * and 36 s at level 6, for the same size (71 MB).
 */
const DEFLATE_LEVEL = 1;

/**
 * Writes a zip archive member by member (`ZipStream`, with zip64 where sizes, offsets or the
 * count need it): each member's content goes in blob by blob, written out (with backpressure)
 * before the next blob. Modes, file types and owners go where Info-ZIP puts them, so `unzip`
 * restores symlinks, permissions and (with -X) owners.
 */
export class ZipWriter {
  private readonly zip: ZipStream;

  constructor(
    private readonly reader: BlobReader,
    sink: Sink,
  ) {
    this.zip = new ZipStream(sink);
  }

  /** Hard links are not in the zip format: each name gets the content. Fifos and devices are left out, as restic does. */
  async add({ path, node }: ArchiveEntry): Promise<void> {
    if (node.type !== 'file' && node.type !== 'dir' && node.type !== 'symlink') return;
    const name = node.type === 'dir' ? Buffer.concat([archivePath(path), Buffer.from('/')]) : archivePath(path);
    if (name.length > MAX_NAME) throw new ScrateError(`${displayName(name)}: a name of more than ${MAX_NAME} bytes does not fit a zip header`, ExitCode.fatal, 'use --archive tar');
    const content = node.type === 'file' ? contentLayout(this.reader, node) : undefined;
    const compress = content !== undefined && content.blobs.reduce((sum, b) => sum + b.stored, 0) < COMPRESSIBLE * content.length;
    await this.zip.begin({
      name,
      deflateLevel: compress ? DEFLATE_LEVEL : undefined,
      dosDateTime: dosDateTime(node.mtimeNs),
      externalAttributes: ((S_IFMT[node.type]! | node.mode) * 0x10000 + (node.type === 'dir' ? MSDOS_DIRECTORY : 0)) >>> 0,
      extra: Buffer.concat([extraField(EXTENDED_TIMESTAMP, extendedTimestamp(node.mtimeNs)), extraField(INFOZIP_UNIX, unixOwner(node))]),
      directory: node.type === 'dir',
    });
    if (content) {
      let i = 0;
      for await (const { data } of readContent(this.reader, content.blobs.map((b) => b.id))) {
        checkLength(content.blobs[i++]!, data);
        await this.zip.write(data);
      }
    } else if (node.type === 'symlink' && node.linkTarget) {
      await this.zip.write(node.linkTarget);
    }
    await this.zip.close();
  }

  async end(): Promise<void> {
    await this.zip.end();
  }
}

/** DOS times (local, two-second steps) span 1980 to 2107: outside, the nearest end; the "UT" field has the time itself. */
function dosDateTime(mtimeNs: bigint): number {
  const t = new Date(Number(mtimeNs / 1_000_000n));
  // NaN past the range of a Date (a time from an untrusted tree may be anything).
  const year = t.getFullYear();
  if (year < 1980 || (Number.isNaN(year) && mtimeNs < 0n)) return dosDateTimeOf(1980, 0, 1, 0, 0, 0);
  if (!(year <= 2107)) return dosDateTimeOf(2107, 11, 31, 23, 59, 58);
  return dosDateTimeOf(year, t.getMonth(), t.getDate(), t.getHours(), t.getMinutes(), t.getSeconds());
}

function dosDateTimeOf(year: number, month: number, day: number, hours: number, minutes: number, seconds: number): number {
  const date = ((year - 1980) << 9) | ((month + 1) << 5) | day;
  const time = (hours << 11) | (minutes << 5) | (seconds >> 1);
  return (date * 0x10000 + time) >>> 0;
}

function extraField(id: number, data: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(id, 0);
  header.writeUInt16LE(data.length, 2);
  return Buffer.concat([header, data]);
}

/** Info-ZIP's "UT" field with the modification time only (flag bit 0), as signed 32-bit Unix seconds. */
function extendedTimestamp(mtimeNs: bigint): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 1;
  const seconds = Number(unixSeconds(mtimeNs));
  b.writeInt32LE(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, seconds)), 1);
  return b;
}

/** Info-ZIP's "ux" field, version 1: uid and gid of 4 bytes each. */
function unixOwner(node: Node): Buffer {
  const b = Buffer.alloc(11);
  b[0] = 1;
  b[1] = 4;
  b.writeUInt32LE(node.uid, 2);
  b[6] = 4;
  b.writeUInt32LE(node.gid, 7);
  return b;
}
