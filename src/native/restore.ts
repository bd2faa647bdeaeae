import { createRequire } from 'node:module';

/** Errno names of the steps of finishFile that failed. */
export interface FinishProblems {
  owner?: string;
  metadata?: string;
}

/** The restorer's native calls; implemented in restore.c, built by node-gyp at install. */
interface RestoreBinding {
  /**
   * Sets owner, mode and times (atime = mtime, in nanoseconds) of an open file, skipping the
   * owner and mode changes that would change nothing. Null when all went well.
   */
  finishFile(fd: number, uid: number, gid: number, mode: number, mtimeNs: bigint): FinishProblems | null;
}

const require = createRequire(import.meta.url);
// dist/src/native/restore.js → build/Release at the package root
export const restoreNative: RestoreBinding = require('../../../build/Release/scrate_restore.node');
