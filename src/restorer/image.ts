import { constants, promises as fs } from 'node:fs';
import { checkAborted, ExitCode, ScrateError } from '../errors.js';
import { posix } from '../native/posix.js';
import type { BlobReader } from '../repository/repository.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { Node } from '../tree/node.js';
import { findNode } from '../tree/walk.js';
import { locate, readContent } from './content.js';
import { writeAll } from './file-io.js';

export interface ImageRestoreOptions {
  overwrite?: boolean;
  /** Read the written image back and check every region against the snapshot. */
  verify?: boolean;
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

export interface ImageRestoreStats {
  bytes: number;
  /** Bytes actually written: zero regions of a file target are left as holes. */
  written: number;
  verified: boolean;
}

/**
 * The disk image a restore of `subpath` (or of the whole snapshot, when it holds one path)
 * refers to, or null when that is not an image.
 */
export async function findImage(reader: BlobReader, snapshot: Snapshot, subpath: string | undefined): Promise<Node | null> {
  const path = subpath ?? (snapshot.paths.length === 1 ? snapshot.paths[0] : undefined);
  if (!path) return null;
  const node = await findNode(reader, Buffer.from(snapshot.tree, 'hex'), path);
  return node?.image ? node : null;
}

/**
 * Writes a disk image to a block device or a file. A device is written whole, in place: never
 * truncated or grown, and refused when smaller than the image. A file is written sparse: zero
 * regions are not written, so they become holes. Each region is written once.
 */
export async function restoreImage(reader: BlobReader, node: Node, target: string, opts: ImageRestoreOptions = {}): Promise<ImageRestoreStats> {
  const st = await fs.stat(target).catch(() => null);
  const device = st?.isBlockDevice() ?? false;
  if (st && !device && !opts.overwrite) throw new ScrateError(`refusing to overwrite ${target}`, ExitCode.fatal, 'pass --overwrite to replace it');
  const access = opts.verify ? constants.O_RDWR : constants.O_WRONLY;
  const fh = await fs.open(target, device ? access : access | constants.O_CREAT | constants.O_TRUNC, 0o600);
  const stats: ImageRestoreStats = { bytes: 0, written: 0, verified: false };
  try {
    if (device) {
      const size = Number(posix.blockDevice(fh.fd).size);
      if (size < node.size) throw new ScrateError(`${target} holds ${size} bytes, less than the image's ${node.size}`, ExitCode.fatal, 'restore to a larger device or to a file');
    }
    for await (const { data, zero } of readContent(reader, node.content ?? [])) {
      checkAborted(opts.signal);
      // A device may hold old data where the image has zeros; a new file already reads as zero.
      if (device || !zero) {
        writeAll(fh.fd, data, stats.bytes);
        stats.written += data.length;
      }
      stats.bytes += data.length;
      opts.onProgress?.(stats.bytes, node.size);
    }
    if (!device) await fh.truncate(stats.bytes);
    await fh.sync();
    if (opts.verify) {
      await verifyImage(reader, fh, node);
      stats.verified = true;
    }
  } finally {
    await fh.close();
  }
  return stats;
}

/** Reads the target back region by region and compares each with its blob's keyed hash. */
async function verifyImage(reader: BlobReader, fh: fs.FileHandle, node: Node): Promise<void> {
  let offset = 0;
  for (const id of node.content ?? []) {
    const length = locate(reader, id).rawLength;
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== length || !reader.blobId(buf).equals(id)) throw new ScrateError(`verification failed: the target differs from the snapshot at bytes ${offset}..${offset + length}`);
    offset += length;
  }
}
