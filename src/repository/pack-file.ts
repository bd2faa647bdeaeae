import { closeSync, openSync, rmSync } from 'node:fs';
import { pipeline, type PackSink } from '../native/pipeline.js';
import type { StagedPack } from './packer.js';

/** The window a staged pack is sealed in (a blob larger than it grows it, once). */
export const PACK_FILE_WINDOW = 1024 * 1024;

/**
 * The file a pack is streamed to while it is built, for a backend that adopts files (see
 * Staging): its PackWriter writes each byte here once it is in its window, and sealBlobs
 * writes the blobs it seals on the pool (given `sink`), so a pack of any size costs a
 * window's memory. The file is hashed as it is written: the pack's name.
 */
export class PackFile {
  private readonly fd: number;
  readonly sink: PackSink;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'wx', 0o600);
    try {
      this.sink = pipeline.newPackSink(this.fd);
    } catch (err) {
      this.abandon();
      throw err;
    }
  }

  /** Bytes of the pack written here, not by sealBlobs. */
  write(bytes: Uint8Array, offset: number): void {
    pipeline.packSinkWrite(this.sink, bytes, offset);
  }

  /** The SHA-256 of every byte written: once all are. */
  digest(): Buffer {
    return pipeline.packSinkDigest(this.sink);
  }

  /** The finished pack (`size` bytes), for Packer.storePack (which adopts or removes the file). */
  close(size: number): StagedPack {
    closeSync(this.fd);
    return { file: this.file, size };
  }

  /** A pack that will not be finished: its file goes (no call may still write to it). */
  abandon(): void {
    closeSync(this.fd);
    rmSync(this.file, { force: true });
  }
}
