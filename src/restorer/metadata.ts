import { closeSync, constants } from 'node:fs';
import { restoreNative, type FinishProblems } from '../native/restore.js';
import { problem } from './file-io.js';

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
 * Completes and closes a file created by the restore: owner and mode are changed only where
 * they differ, and the times are set through the descriptor.
 */
export function finishFile(fd: number, meta: Metadata): string[] {
  let failed;
  try {
    failed = restoreNative.finishFile(fd, meta.uid, meta.gid, meta.mode, meta.mtimeNs);
  } finally {
    closeSync(fd);
  }
  return problems(failed);
}

/** Completes a directory beneath `dir` once everything in it is written: through its descriptor, as a file. */
export function finishDir(dir: number, path: Buffer, meta: Metadata): string[] {
  let fd;
  try {
    fd = restoreNative.open(dir, path, constants.O_RDONLY | constants.O_DIRECTORY, 0);
  } catch (err) {
    return [`cannot set metadata: ${problem(err)}`];
  }
  return finishFile(fd, meta);
}

/**
 * Sets owner, mode and nanosecond times of an entry that is not opened (a symlink, fifo or
 * device node: opening one can block or have side effects), by its path beneath `dir`.
 */
export function applyMetadata(dir: number, path: Buffer, meta: Metadata): string[] {
  return problems(restoreNative.setMetadata(dir, path, meta.uid, meta.gid, meta.mode, meta.mtimeNs, meta.symlink));
}

/** As messages; a failed chown only matters to root (anyone else can only give files to themselves). */
function problems(failed: FinishProblems | null): string[] {
  const out: string[] = [];
  if (failed?.owner && isRoot) out.push(`cannot set owner: ${failed.owner}`);
  if (failed?.metadata) out.push(`cannot set metadata: ${failed.metadata}`);
  return out;
}
