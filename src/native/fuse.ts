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
}

/** A pending request: answered exactly once by one of the reply functions. */
export type FuseRequest = bigint;

/**
 * Called on the main thread for each request. `ino` is the inode asked about (the parent of a
 * lookup); lookup: `data` is the name; read and readdir: a = offset, b = size; forget:
 * a = nlookup, or with ino 0 `data` holds (ino, nlookup) pairs. Files are known by inode: no
 * file handles.
 */
export type FuseHandler = (op: FuseOp, req: FuseRequest, ino: number, a: number, b: number, data: Buffer | Float64Array | undefined) => void;

/** Attributes as fuse.c reads them: ATTR_SIZE numbers at the ATTR_* positions. */
export const ATTR_SIZE = 12;
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
}

/** libfuse3's low-level API, served from JavaScript; implemented in fuse.c. One mount per process. */
interface FuseBinding {
  /** Mounts at `mountpoint` with `-o options` and starts the loop thread; throws with libfuse's reason. */
  mount(mountpoint: string, options: string, handler: FuseHandler): void;
  /** Ends the loop, unmounts (lazily) and closes the session; requests still pending fail. Idempotent. */
  unmount(): void;
  replyEntry(req: FuseRequest, attr: Float64Array, entryTimeout: number, attrTimeout: number): void;
  replyAttr(req: FuseRequest, attr: Float64Array, timeout: number): void;
  replyErr(req: FuseRequest, errno: number): void;
  /** keepCache: what the kernel cached of the file stays valid (its content never changes). */
  replyOpen(req: FuseRequest, keepCache: boolean): void;
  /** A read's bytes: the pieces in order (at most 64), sent without joining them. */
  replyData(req: FuseRequest, pieces: Buffer[]): void;
  replyLink(req: FuseRequest, target: Buffer): void;
  /** Entries from `offset` on, entry i at offset offset+i+1, as many as fit in `size` bytes; modes carry the type bits. */
  replyDir(req: FuseRequest, size: number, offset: number, names: Buffer, ends: Uint32Array, inos: Float64Array, modes: Uint32Array): void;
}

const require = createRequire(import.meta.url);
// dist/src/native/fuse.js → build/Release at the package root
export const fuse: FuseBinding = require('../../../build/Release/scrate_fuse.node');
