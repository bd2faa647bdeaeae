import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ScrateError } from '../errors.js';
import { checkMountpoint, runFuse } from '../mount/mount.js';
import { ATTR_SIZE_WITH_ATIME, Attr, fuse, FuseOp, SetAttr, type FuseRequest } from '../native/fuse.js';
import { errnoOf, NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';

const { ENOENT, ENOTDIR, EISDIR, EINVAL, EPERM, EROFS, EFBIG, EOPNOTSUPP } = os.constants.errno;

/** An export that may also say how many of its bytes are stored: the file's st_blocks (else counted dense). */
export interface ImageExport extends BlockExport {
  allocatedBytes?(): number;
}

export interface ImageOptions {
  /** Let users other than the one mounting in (FUSE's allow_other). */
  allowOther?: boolean;
  /** Aborted: unmount and end with its reason. */
  signal: AbortSignal;
  /** The file's name; the export's name when not given. */
  fileName?: string;
  /** Called once mounted, with the image file's path. */
  onMounted?: (file: string) => void;
  /** An operation of the export failed unexpectedly: said, and the request fails with EIO. */
  onWarning?: (message: string) => void;
}

const ROOT_INO = 1;
const FILE_INO = 2;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** open(2)'s access mode bits (Node's constants lack the mask). */
const O_ACCMODE = 3;
/** fallocate(2) modes. */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
/** The name never changes; the attributes do (times, blocks), and are asked again this soon (s). */
const ENTRY_TIMEOUT = 3600;
const ATTR_TIMEOUT = 1;
/** What fuse.c sends at most in one reply; more pieces are joined. */
const MAX_PIECES = 64;
/** Zeros a read shows for holes, sliced rather than allocated per read (reads are at most 1 MiB). */
const ZEROS = Buffer.alloc(1024 * 1024);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/**
 * Serves `device` as one regular file in the directory `mountpoint` (s3backer's model): a
 * filesystem of any kind can be loop-mounted on it. The file has a fixed size: writes past it
 * fail (EFBIG), a size change fails (EPERM), and fallocate's punch hole and zero range reach the
 * export's zero(), which is what a loop device's discard becomes. Resolves once unmounted from
 * outside (`fusermount -u`, `umount`), rejects with the signal's reason once aborted; either way
 * nothing stays mounted, and the writes acknowledged are flushed.
 */
export async function serveImage(mountpoint: string, device: ImageExport, opts: ImageOptions): Promise<void> {
  const dir = path.resolve(mountpoint);
  const image = new ImageFile(device, opts.fileName ?? device.name, opts.onWarning ?? (() => undefined));
  await checkMountpoint(dir);
  try {
    // A read-only export is a read-only mount: the kernel refuses opens for writing itself.
    const options = [device.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', 'fsname=scrate', 'subtype=scrate-volume', 'default_permissions'];
    const session = { options, writable: true, allowOther: opts.allowOther, signal: opts.signal, onMounted: () => opts.onMounted?.(path.join(dir, image.name.toString())) };
    await runFuse(dir, session, (...request) => image.handle(...request));
  } finally {
    await image.close();
  }
}

/** The root directory and its one file, answering fuse.ts's requests from the export. */
class ImageFile {
  readonly name: Buffer;
  private readonly rootAttr = new Float64Array(ATTR_SIZE_WITH_ATIME);
  private readonly fileAttr = new Float64Array(ATTR_SIZE_WITH_ATIME);
  /** Requests still waiting for the export: the session ends once they have settled. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly device: ImageExport,
    name: string,
    private readonly onWarning: (message: string) => void,
  ) {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || Buffer.byteLength(name) > 255) throw new ScrateError(`${JSON.stringify(name)} cannot be a file name`);
    this.name = Buffer.from(name);
    const now = Date.now();
    for (const [attr, ino, mode, nlink] of [
      [this.rootAttr, ROOT_INO, S_IFDIR | 0o755, 2],
      [this.fileAttr, FILE_INO, S_IFREG | 0o600, 1],
    ] as const) {
      attr[Attr.ino] = ino;
      attr[Attr.mode] = mode;
      attr[Attr.nlink] = nlink;
      attr[Attr.uid] = process.getuid?.() ?? 0;
      attr[Attr.gid] = process.getgid?.() ?? 0;
      setTime(attr, Attr.mtimeSec, now);
      setTime(attr, Attr.ctimeSec, now);
      setTime(attr, Attr.atimeSec, now);
    }
    this.fileAttr[Attr.size] = device.size;
  }

  /** Waits for the requests in flight, then makes what was acknowledged durable. */
  async close(): Promise<void> {
    while (this.pending.size) await Promise.allSettled(this.pending);
    if (!this.device.readOnly) await this.device.flush();
  }

  /** fuse.ts's handler: every request is answered, an unexpected failure with EIO. */
  handle(op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, data: Buffer | Float64Array | undefined, c: number): void {
    if (op === FuseOp.forget) return; // two inodes that live as long as the mount
    const answer = this.answer(op, req, ino, a, b, data, c).catch((err: unknown) => {
      if (err instanceof Refused) return fuse.replyErr(req, err.errno);
      if (!(err instanceof NbdError)) this.onWarning(`a request to the image failed: ${(err as Error)?.message ?? String(err)}`);
      // The NBD errno numbers are Linux's.
      fuse.replyErr(req, errnoOf(err));
    });
    this.pending.add(answer);
    void answer.finally(() => this.pending.delete(answer));
  }

  private async answer(op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, data: Buffer | Float64Array | undefined, c: number): Promise<void> {
    if (ino !== ROOT_INO && ino !== FILE_INO) return fuse.replyErr(req, ENOENT);
    const isFile = ino === FILE_INO;
    switch (op) {
      case FuseOp.lookup:
        if (isFile) return fuse.replyErr(req, ENOTDIR);
        if (!(data as Buffer).equals(this.name)) return fuse.replyErr(req, ENOENT);
        return fuse.replyEntry(req, this.attrOf(FILE_INO), ENTRY_TIMEOUT, ATTR_TIMEOUT);
      case FuseOp.getattr:
        return fuse.replyAttr(req, this.attrOf(ino), ATTR_TIMEOUT);
      case FuseOp.open:
        if (!isFile) return fuse.replyErr(req, EISDIR);
        if ((a & O_ACCMODE) !== constants.O_RDONLY && this.device.readOnly) return fuse.replyErr(req, EROFS);
        // libfuse has the kernel pass O_TRUNC to open (atomic_o_trunc) rather than ask setattr: refused alike.
        if (a & constants.O_TRUNC) return fuse.replyErr(req, EPERM);
        // Only this mount changes the file, and each change passes through the kernel: its cache stays valid.
        return fuse.replyOpen(req, true);
      case FuseOp.readdir:
        if (isFile) return fuse.replyErr(req, ENOTDIR);
        return this.readdir(req, a, b);
      case FuseOp.read:
        return fuse.replyData(req, await this.read(a, b));
      case FuseOp.write:
        return fuse.replyWrite(req, await this.write(a, data as Buffer));
      case FuseOp.fsync:
        await this.device.flush();
        return fuse.replyErr(req, 0);
      case FuseOp.setattr:
        return this.setattr(req, ino, a, b, c, data as Float64Array);
      case FuseOp.fallocate:
        return fuse.replyErr(req, await this.fallocate(a, b, c));
      default:
        return fuse.replyErr(req, EINVAL);
    }
  }

  private attrOf(ino: number): Float64Array {
    if (ino === ROOT_INO) return this.rootAttr;
    const stored = this.device.allocatedBytes?.() ?? this.device.size;
    this.fileAttr[Attr.blocks] = Math.ceil(stored / 512);
    return this.fileAttr;
  }

  private readdir(req: FuseRequest, offset: number, size: number): void {
    const entries: [Buffer, number, number][] = [
      [DOT, ROOT_INO, S_IFDIR],
      [DOTDOT, ROOT_INO, S_IFDIR],
      [this.name, FILE_INO, S_IFREG],
    ];
    const from = entries.slice(offset);
    const ends = new Uint32Array(from.length);
    let at = 0;
    from.forEach(([name], i) => (ends[i] = at += name.length));
    fuse.replyDir(req, size, offset, Buffer.concat(from.map((e) => e[0])), ends, Float64Array.from(from.map((e) => e[1])), Uint32Array.from(from.map((e) => e[2])));
  }

  private async read(offset: number, size: number): Promise<Buffer[]> {
    const length = Math.max(0, Math.min(size, this.device.size - offset));
    if (length === 0) return [];
    const pieces = (await this.device.read(offset, length)).flatMap(bytesOf);
    return pieces.length > MAX_PIECES ? [Buffer.concat(pieces)] : pieces;
  }

  /** Writes what fits in the file: a write across its end is short, one from its end on fails. */
  private async write(offset: number, data: Buffer): Promise<number> {
    if (this.device.readOnly) throw new Refused(EROFS);
    if (data.length === 0) return 0;
    if (offset >= this.device.size) throw new Refused(EFBIG);
    const fits = data.subarray(0, Math.min(data.length, this.device.size - offset));
    await this.device.write(offset, fits, false);
    this.modified();
    return fits.length;
  }

  private modified(): void {
    const now = Date.now();
    setTime(this.fileAttr, Attr.mtimeSec, now);
    setTime(this.fileAttr, Attr.ctimeSec, now);
  }

  /**
   * A fixed-size file, as s3backer's: times are kept (in memory), a size, mode or owner change
   * is refused, so `truncate` or an O_TRUNC open cannot wipe the volume.
   */
  private setattr(req: FuseRequest, ino: number, valid: number, size: number, mode: number, numbers: Float64Array): void {
    const attr = this.attrOf(ino);
    const same =
      (!(valid & SetAttr.size) || (ino === FILE_INO && size === attr[Attr.size])) &&
      (!(valid & SetAttr.mode) || (mode & 0o7777) === (attr[Attr.mode]! & 0o7777)) &&
      (!(valid & SetAttr.uid) || numbers[4] === attr[Attr.uid]) &&
      (!(valid & SetAttr.gid) || numbers[5] === attr[Attr.gid]);
    if (!same) return fuse.replyErr(req, EPERM);
    if (valid & SetAttr.atime) [attr[Attr.atimeSec], attr[Attr.atimeNsec]] = [numbers[0]!, numbers[1]!];
    if (valid & SetAttr.mtime) [attr[Attr.mtimeSec], attr[Attr.mtimeNsec]] = [numbers[2]!, numbers[3]!];
    setTime(attr, Attr.ctimeSec, Date.now());
    fuse.replyAttr(req, attr, ATTR_TIMEOUT);
  }

  /** fallocate(2) on the file: 0 or an error number. */
  private async fallocate(offset: number, length: number, mode: number): Promise<number> {
    if (this.device.readOnly) return EROFS;
    const end = Math.min(offset + length, this.device.size);
    const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) || (mode & ~FALLOC_FL_KEEP_SIZE) === FALLOC_FL_ZERO_RANGE) {
      // Past the end there is nothing to zero; a zero range that would extend the file cannot.
      if (!keepSize && offset + length > this.device.size) return EFBIG;
      if (end > offset) await this.device.zero(offset, end - offset, (mode & FALLOC_FL_PUNCH_HOLE) !== 0, false);
      this.modified();
      return 0;
    }
    // Space is allocated as it is written: a reservation inside the file has nothing to do.
    if (mode === 0 && offset + length <= this.device.size) return 0;
    return EOPNOTSUPP;
  }
}

/** A request refused for this file's own reasons, with the error number the caller gets. */
class Refused extends Error {
  constructor(readonly errno: number) {
    super(`refused (errno ${errno})`);
  }
}

/** A read's pieces as bytes: holes as slices of one zero buffer. */
function bytesOf(piece: ReadPiece): Buffer[] {
  if (Buffer.isBuffer(piece)) return [piece];
  const out: Buffer[] = [];
  for (let left = piece.zeros; left > 0; left -= ZEROS.length) out.push(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
  return out;
}

function setTime(attr: Float64Array, at: Attr, ms: number): void {
  attr[at] = Math.floor(ms / 1000);
  attr[at + 1] = (ms % 1000) * 1_000_000;
}
