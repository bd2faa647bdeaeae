import { constants, openSync, rmSync, writeSync } from 'node:fs';

// Restored files are written with plain system calls (see DESIGN.md: a thread-pool hand-off per
// call costs more than the call); the restorer spreads them over worker threads instead.

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
function* nonZeroRuns(data: Buffer, position: number): Generator<[number, number]> {
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
 * Runs `make`, which creates `dest` and fails with EEXIST when something is in the way. With
 * `overwrite` that something (a file, or a whole directory) is removed and `make` runs again;
 * without, the EEXIST error is the caller's to report.
 */
export function replacing<T>(dest: Buffer, overwrite: boolean, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !overwrite) throw err;
    rmSync(dest, { recursive: true });
    return make();
  }
}

/** Creates a new, empty file for writing (with `mode`, less the umask, until its metadata is set) and returns its descriptor. */
export function createFile(dest: Buffer, overwrite: boolean, mode: number): number {
  return replacing(dest, overwrite, () => openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode));
}
