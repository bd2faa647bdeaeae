import { createRequire } from 'node:module';
import os from 'node:os';

/** POSIX calls Node's fs lacks; implemented in posix.c, built by node-gyp at install. */
interface PosixBinding {
  /** utimensat(2): times in nanoseconds since the epoch; follow=false changes a symlink itself. */
  setTimes(path: Buffer, atimeNs: bigint, mtimeNs: bigint, follow: boolean): void;
  /** mknod(2): mode carries the file type (S_IFIFO, S_IFCHR, S_IFBLK) and permission bits. */
  mknod(path: Buffer, mode: number, rdev: bigint): void;
  /** ioctl(2) BLKGETSIZE64 and BLKSSZGET on an open block device. */
  blockDevice(fd: number): { size: bigint; logicalBlockSize: number };
  /** A directory's entries but . and .., sorted by name, lstat'ed; see src/archiver/dir-listing.ts. */
  listDir(path: Buffer): { names: Buffer; ends: Uint32Array; slots: ArrayBuffer };
  /**
   * Small files read whole into `into`, one after another, each opened without following a
   * symlink and fstat'ed after reading; per file, `READ_SLOTS` results (see ReadSlot).
   * `into` needs room for every size plus one byte.
   */
  readFiles(paths: Buffer, ends: Uint32Array, sizes: Float64Array, mtimesNs: BigInt64Array, into: Buffer, results: Float64Array): void;
  /** malloc_trim(3): gives the free pages of every malloc arena back to the system (glibc; a no-op elsewhere). */
  trimMalloc(): void;
}

/** posix.readFiles' results per file: how it went, an errno, bytes read (the room it took), and 1 if it changed while read. */
export const READ_SLOTS = 4;
export const enum ReadOutcome {
  ok = 0,
  /** Longer than its size: it took no room, read it as a stream. */
  grew = 1,
  openFailed = 2,
  readFailed = 3,
}

const require = createRequire(import.meta.url);
// dist/src/native/posix.js → build/Release at the package root
export const posix: PosixBinding = require('../../../build/Release/scrate_posix.node');

const errnoCodes = new Map(Object.entries(os.constants.errno).map(([code, n]) => [n, code]));

/** The code ('ENOENT', …) of an errno a native call reported as a number. */
export function errnoCode(errno: number): string {
  return errnoCodes.get(errno) ?? `errno ${errno}`;
}
