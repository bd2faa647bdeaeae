import { constants, writeSync } from 'node:fs';
import { restoreNative } from '../native/restore.js';
import { describeError } from '../errors.js';

// Restored files are written with plain system calls (see DESIGN.md: a thread-pool hand-off per
// call costs more than the call); the restorer spreads them over worker threads instead. Every
// entry is reached beneath a directory descriptor, never through a symlink (restore.c).

export function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/**
 * Writes only the parts of `data` that are not zero blocks: in a file that had holes, they
 * become holes again (the file's size is set beforehand).
 */
export function writeSparse(fd: number, data: Buffer, position: number): void {
  for (const [from, to] of nonZeroRuns(data, position)) writeAll(fd, data.subarray(from, to), position + from);
}

/** Filesystems allocate in blocks of this size (or a divisor of it): a hole is made of whole blocks. */
const HOLE_BLOCK = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK);

/**
 * The [from, to) ranges of `data` that are not all-zero, cut at file offsets that are multiples
 * of HOLE_BLOCK (data starts at file offset `position`), adjacent ranges merged.
 */
export function* nonZeroRuns(data: Buffer, position: number): Generator<[number, number]> {
  let runStart = -1;
  let at = 0;
  while (at < data.length) {
    const end = Math.min(data.length, at + HOLE_BLOCK - ((position + at) % HOLE_BLOCK));
    const zero = data.compare(ZEROS, 0, end - at, at, end) === 0;
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      yield [runStart, at];
      runStart = -1;
    }
    at = end;
  }
  if (runStart >= 0) yield [runStart, data.length];
}

/**
 * Runs `make`, which creates `path` beneath `dir` and fails with EEXIST when something is in the
 * way. With `overwrite` that something (a file, a symlink, or a whole directory) is removed and
 * `make` runs again; without, the EEXIST error is the caller's to report.
 */
export function replacing<T>(dir: number, path: Buffer, overwrite: boolean, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (errorCode(err) !== 'EEXIST' || !overwrite) throw err;
    restoreNative.remove(dir, path);
    return make();
  }
}

/** Creates a new, empty file beneath `dir` for writing (with `mode`, less the umask, until its metadata is set) and returns its descriptor. */
export function createFile(dir: number, path: Buffer, overwrite: boolean, mode: number): number {
  return replacing(dir, path, overwrite, () => restoreNative.open(dir, path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode));
}

/** Opens a file created earlier by the restore, beneath `dir`, to write more of it. */
export function reopenFile(dir: number, path: Buffer): number {
  return restoreNative.open(dir, path, constants.O_WRONLY, 0);
}

/** The errno name of a failed call ('EEXIST', …), or the error itself as text. */
export function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The errors a path beneath the target meets when something else took the place of a directory of the tree. */
const IN_THE_WAY: Record<string, string> = {
  // RESOLVE_NO_SYMLINKS or O_NOFOLLOW refused it.
  ELOOP: 'a symlink stands in its path',
  // O_DIRECTORY refused it, a symlink included (the walk of kernels without openat2 opens each component so).
  ENOTDIR: 'something other than a directory stands in its path',
};

/** What a failed call means for the entry it was to restore, in a few words. */
export function problem(err: unknown): string {
  const code = errorCode(err);
  return IN_THE_WAY[code] ?? describeError(err);
}
