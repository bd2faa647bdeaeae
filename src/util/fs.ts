import { closeSync, openSync, promises as fs, readSync } from 'node:fs';

/** A directory's entries, sorted; none when it does not exist. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * `length` bytes at `offset` of a file (fewer where it ends first), with plain system calls:
 * for small reads, a thread-pool hand-off per call costs more than the call (see DESIGN.md).
 */
export function readRangeSync(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
