import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import type { StagedPack } from './packer.js';

/** The window a staged pack is written through (a blob larger than it grows it, once). */
export const PACK_FILE_WINDOW = 1024 * 1024;

/**
 * The file a pack is streamed to while it is built, for a backend that adopts files (see
 * Staging): its PackWriter spills here, so a pack of any size costs a window's memory.
 */
export class PackFile {
  private readonly fd: number;
  private size = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'wx', 0o600);
  }

  /** A PackWriter's spill. */
  readonly write = (bytes: Buffer): void => {
    for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done);
    this.size += bytes.length;
  };

  /** The finished pack, for Packer.storePack (which adopts or removes the file). */
  close(): StagedPack {
    closeSync(this.fd);
    return { file: this.file, size: this.size };
  }

  /** A pack that will not be finished: its file goes. */
  abandon(): void {
    closeSync(this.fd);
    rmSync(this.file, { force: true });
  }
}
