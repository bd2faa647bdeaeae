import { chmodSync, closeSync, lchownSync } from 'node:fs';
import { posix } from '../native/posix.js';
import { restoreNative } from '../native/restore.js';

/** What a restored entry gets once its content is in place. */
export interface Metadata {
  uid: number;
  gid: number;
  mode: number;
  mtimeNs: bigint;
  /** A symlink has no mode of its own; its times are set on the link. */
  symlink: boolean;
}

const isRoot = process.getuid?.() === 0;
const euid = process.geteuid?.();
const egid = process.getegid?.();

/**
 * The mode to create a file with. When it will keep the owner it gets at creation, its final
 * permission bits (writable by its owner until completed: another thread may open it to write)
 * spare a chmod in most restores; anyone else's file stays private to us until it is given away.
 * Special bits always wait for the chmod that follows the chown (which clears them).
 */
export function creationMode(meta: Metadata): number {
  return meta.uid === euid && meta.gid === egid ? (meta.mode & 0o777) | 0o200 : 0o600;
}

/**
 * Completes and closes a file created by the restore: like applyMetadata, but owner and mode
 * are changed only where they differ, and the times are set through the descriptor.
 */
export function finishFile(fd: number, meta: Metadata): string[] {
  let failed;
  try {
    failed = restoreNative.finishFile(fd, meta.uid, meta.gid, meta.mode, meta.mtimeNs);
  } finally {
    closeSync(fd);
  }
  const problems: string[] = [];
  if (failed?.owner && isRoot) problems.push(`cannot set owner: ${failed.owner}`);
  if (failed?.metadata) problems.push(`cannot set metadata: ${failed.metadata}`);
  return problems;
}

/**
 * Sets owner, mode and nanosecond times of an entry by its path, in that order: chown clears
 * setuid/setgid, so the mode comes after it. Returns what failed, as messages; a failed chown
 * only matters to root (anyone else can only give files to themselves).
 */
export function applyMetadata(dest: Buffer, meta: Metadata): string[] {
  const problems: string[] = [];
  try {
    lchownSync(dest, meta.uid, meta.gid);
  } catch (err) {
    if (isRoot) problems.push(`cannot set owner: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    if (!meta.symlink) chmodSync(dest, meta.mode);
    posix.setTimes(dest, meta.mtimeNs, meta.mtimeNs, false);
  } catch (err) {
    problems.push(`cannot set metadata: ${(err as NodeJS.ErrnoException).code}`);
  }
  return problems;
}
