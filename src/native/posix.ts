import { createRequire } from 'node:module';

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
}

const require = createRequire(import.meta.url);
// dist/src/native/posix.js → build/Release at the package root
export const posix: PosixBinding = require('../../../build/Release/scrate_posix.node');
