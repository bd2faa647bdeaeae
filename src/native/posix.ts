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
  /** malloc_trim(3): gives the free pages of every malloc arena back to the system (glibc; a no-op elsewhere). */
  trimMalloc(): void;
}

const require = createRequire(import.meta.url);
// dist/src/native/posix.js → build/Release at the package root
export const posix: PosixBinding = require('../../../build/Release/scrate_posix.node');

const errnoCodes = new Map(Object.entries(os.constants.errno).map(([code, n]) => [n, code]));

/** The code ('ENOENT', …) of an errno a native call reported as a number. */
export function errnoCode(errno: number): string {
  return errnoCodes.get(errno) ?? `errno ${errno}`;
}
