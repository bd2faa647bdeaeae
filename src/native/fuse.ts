import { createRequire } from 'node:module';

/** The requests fuse.c hands to JavaScript (enum op there). */
export const enum FuseOp {
  lookup = 1,
  getattr,
  readlink,
  open,
  read,
  readdir,
  forget,
  /** The loop ended from outside (fusermount -u, umount): `a` is its error number, 0 when none. */
  exit,
  /** Writable mounts only, as the four below: a = offset, `data` the payload (the handler may keep it). */
  write,
  /** a = datasync (1 when only the data need be durable). */
  fsync,
  /** a = what to set (SetAttr bits), b = size, c = mode; `data`: atime s/ns, mtime s/ns (a "now" already resolved), uid, gid. */
  setattr,
  /** a = offset, b = length, c = mode (FALLOC_FL_* bits). */
  fallocate,
}

/** setattr's bits of what to set (FUSE_SET_ATTR_*). */
export const enum SetAttr {
  mode = 1 << 0,
  uid = 1 << 1,
  gid = 1 << 2,
  size = 1 << 3,
  atime = 1 << 4,
  mtime = 1 << 5,
  ctime = 1 << 10,
}

/** A pending request: answered exactly once by one of the reply functions. */
export type FuseRequest = bigint;

/**
 * Called on the main thread for each request. `ino` is the inode asked about (the parent of a
 * lookup); lookup: `data` is the name; open: a = the open flags; read and readdir: a = offset,
 * b = size; forget: a = nlookup, or with ino 0 `data` holds (ino, nlookup) pairs; the writable
 * operations as FuseOp says. Files are known by inode: no file handles.
 */
export type FuseHandler = (op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, data: Buffer | Float64Array | undefined, c: number) => void;

/** Attributes as fuse.c reads them: ATTR_SIZE numbers at the Attr positions (ATTR_SIZE_WITH_ATIME to give atime apart from mtime). */
export const ATTR_SIZE = 12;
export const ATTR_SIZE_WITH_ATIME = 14;
export const enum Attr {
  ino = 0,
  mode,
  nlink,
  uid,
  gid,
  rdev,
  size,
  blocks,
  mtimeSec,
  mtimeNsec,
  ctimeSec,
  ctimeNsec,
  atimeSec,
  atimeNsec,
}

/** libfuse3's low-level API, served from JavaScript; implemented in fuse.c. One mount per process. */
interface FuseBinding {
  /**
   * Mounts at `mountpoint` with `-o options` and starts the loop thread; throws with libfuse's
   * reason. Not `writable`: opens for writing fail with EROFS and the writable operations are
   * never asked (libfuse answers ENOSYS).
   */
  mount(mountpoint: string, options: string, handler: FuseHandler, writable: boolean): void;
  /** Ends the loop, unmounts (lazily) and closes the session; requests still pending fail. Idempotent. */
  unmount(): void;
  replyEntry(req: FuseRequest, attr: Float64Array, entryTimeout: number, attrTimeout: number): void;
  replyAttr(req: FuseRequest, attr: Float64Array, timeout: number): void;
  replyErr(req: FuseRequest, errno: number): void;
  /** keepCache: what the kernel cached of the file stays valid (its content never changes). */
  replyOpen(req: FuseRequest, keepCache: boolean): void;
  /** A write's answer: how many of its bytes were written. */
  replyWrite(req: FuseRequest, count: number): void;
  /** A read's bytes: the pieces in order (at most 64), sent without joining them. */
  replyData(req: FuseRequest, pieces: Buffer[]): void;
  replyLink(req: FuseRequest, target: Buffer): void;
  /** Entries from `offset` on, entry i at offset offset+i+1, as many as fit in `size` bytes; modes carry the type bits. */
  replyDir(req: FuseRequest, size: number, offset: number, names: Buffer, ends: Uint32Array, inos: Float64Array, modes: Uint32Array): void;
}

const require = createRequire(import.meta.url);
// dist/src/native/fuse.js → build/Release at the package root
export const fuse: FuseBinding = require('../../../build/Release/scrate_fuse.node');
