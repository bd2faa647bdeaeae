import { constants, openSync } from 'node:fs';

/**
 * Opens a file to back up without updating its access time. O_NOATIME is refused for files we
 * do not own unless we are root: then without it. Never follows a symlink swapped in after lstat.
 */
export function openNoAtime(path: Buffer): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
}
