import { createRequire } from 'node:module';

/** Errno names of the steps of finishFile or setMetadata that failed. */
export interface FinishProblems {
  owner?: string;
  metadata?: string;
}

/**
 * The restorer's native calls; implemented in restore.c, built by node-gyp at install. Paths are
 * relative to a directory descriptor and resolved beneath it without following any symlink
 * (openat2's RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); a failure throws an Error whose `code` is
 * the errno name (ELOOP: a symlink on the way).
 */
interface RestoreBinding {
  /**
   * Sets owner, mode and times (atime = mtime, in nanoseconds) of an open file, skipping the
   * owner and mode changes that would change nothing. Null when all went well.
   */
  finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint): FinishProblems | null;
  /** openat2(2) beneath `dir`, with O_NOFOLLOW and O_CLOEXEC added to the flags; returns the descriptor. */
  open(dir: number, path: Buffer, flags: number, mode: number): number;
  /** Creates a directory, or takes the one there, and opens it; anything else in the way is EEXIST. */
  makeDir(dir: number, path: Buffer, mode: number): number;
  symlink(target: Buffer, dir: number, path: Buffer): void;
  /** mknodat(2): mode carries the file type (S_IFIFO, S_IFCHR, S_IFBLK) and permission bits. */
  mknod(dir: number, path: Buffer, mode: number, rdev: bigint): void;
  /** linkat(2) without AT_SYMLINK_FOLLOW: `from` itself gets the new name, a symlink too. */
  link(dir: number, from: Buffer, to: Buffer): void;
  /** Removes an entry, a directory with everything in it (unlinkat(2), never through a symlink); an absent one is no error. */
  remove(dir: number, path: Buffer): void;
  /** finishFile for an entry not to be opened (symlink, fifo, device node), by name: the mode is not a symlink's. */
  setMetadata(dir: number, path: Buffer, uid: number, gid: number, mode: number, mtimeNs: bigint, symlink: boolean): FinishProblems | null;
  /** Tests: resolve paths an openat(2) a component, as on kernels before 5.6 (no openat2). */
  walkPaths(on: boolean): void;
}

const require = createRequire(import.meta.url);
// dist/src/native/restore.js → build/Release at the package root
export const restoreNative: RestoreBinding = require('../../../build/Release/scrate_restore.node');
