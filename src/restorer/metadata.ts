import { chmodSync, fchmodSync, fchownSync, lchownSync } from 'node:fs';
import { posix } from '../native/posix.js';

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

/**
 * Sets owner, mode and nanosecond times, in that order: chown clears setuid/setgid, so the mode
 * comes after it. `fd`, when the entry is open, saves two path lookups. Returns what failed, as
 * messages; a failed chown only matters to root (anyone else can only give files to themselves).
 */
export function applyMetadata(dest: Buffer, meta: Metadata, fd?: number): string[] {
  const problems: string[] = [];
  try {
    if (fd === undefined) lchownSync(dest, meta.uid, meta.gid);
    else fchownSync(fd, meta.uid, meta.gid);
  } catch (err) {
    if (isRoot) problems.push(`cannot set owner: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    if (fd !== undefined) fchmodSync(fd, meta.mode);
    else if (!meta.symlink) chmodSync(dest, meta.mode);
    posix.setTimes(dest, meta.mtimeNs, meta.mtimeNs, false);
  } catch (err) {
    problems.push(`cannot set metadata: ${(err as NodeJS.ErrnoException).code}`);
  }
  return problems;
}
