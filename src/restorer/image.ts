import { constants, promises as fs } from 'node:fs';
import { checkAborted, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { posix } from '../native/posix.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { BlockMapRef } from '../tree/block-map.js';
import type { Node } from '../tree/node.js';
import { findNode, openBlockMap } from '../tree/walk.js';
import { inOrder } from '../util/in-order.js';
import { locate, readContent } from './content.js';
import { isZero } from '../util/zeros.js';
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
    Object.assign(stats, await writeImage(fh.fd, readImage(reader, node), { ...opts, device, size: node.size }));
    if (!device) await fh.truncate(stats.bytes);
    await fh.sync();
    if (opts.verify) {
      await verifyImage(reader, fh, node, device);
      stats.verified = true;
    }
  } finally {
    await fh.close();
  }
  return stats;
}

/** A region of an image, in order: its bytes, or null for zeros. */
export interface ImagePiece {
  offset: number;
  length: number;
  data: Buffer | null;
}

/** The image of a file node in order: its content list, or a volume's map (FORMAT §13). */
export async function* readImage(reader: BlobReader, node: Node): AsyncGenerator<ImagePiece> {
  if (node.blockMap) {
    yield* readMapImage(reader, node.blockMap, node.size);
    return;
  }
  let offset = 0;
  for await (const { data, zero } of readContent(reader, node.content ?? [])) {
    yield { offset, length: data.length, data: zero ? null : data };
    offset += data.length;
  }
}

/**
 * A volume's image: present blocks loaded, several at once; absent ones as one piece per run,
 * however long. A block is exactly its share of the size (the last one may be shorter).
 */
function readMapImage(reader: BlobReader, map: BlockMapRef, size: number): AsyncGenerator<ImagePiece> {
  const { blockSize } = map;
  const extents = openBlockMap(reader, map).extents(0, Math.ceil(size / blockSize));
  return inOrder(extents, reader.backend.connections, async ({ block, count, id }): Promise<ImagePiece> => {
    const offset = block * blockSize;
    const length = Math.min(count * blockSize, size - offset);
    if (!id) return { offset, length, data: null };
    const data = await reader.loadBlob(BlobType.data, id);
    if (data.length !== length) throw new IntegrityError(`block ${block} (blob ${id.toString('hex').slice(0, 12)})`, `${data.length} bytes where the image has ${length}`);
    return { offset, length, data };
  });
}

const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/**
 * Writes an image's pieces at their offsets. Zeros are written on a device, which may hold old
 * data there; a new file already reads as zero, so they stay holes (the caller truncates it).
 */
export async function writeImage(fd: number, pieces: AsyncIterable<ImagePiece>, opts: { device: boolean; size: number; signal?: AbortSignal; onProgress?: (bytes: number, total: number) => void }): Promise<{ bytes: number; written: number }> {
  let bytes = 0;
  let written = 0;
  for await (const { offset, length, data } of pieces) {
    checkAborted(opts.signal);
    if (data) writeAll(fd, data, offset);
    else if (opts.device) {
      for (let at = 0; at < length; at += ZERO_CHUNK.length) {
        checkAborted(opts.signal);
        writeAll(fd, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, length - at)), offset + at);
      }
    }
    if (data || opts.device) written += length;
    bytes = offset + length;
    opts.onProgress?.(bytes, opts.size);
  }
  return { bytes, written };
}

/**
 * Reads the target back region by region and compares each with its blob's keyed hash; a
 * volume's absent blocks are checked to read as zeros on a device (a file's are holes).
 */
async function verifyImage(reader: BlobReader, fh: fs.FileHandle, node: Node, device: boolean): Promise<void> {
  if (node.blockMap) {
    const { blockSize } = node.blockMap;
    for await (const { block, count, id } of openBlockMap(reader, node.blockMap).extents(0, Math.ceil(node.size / blockSize))) {
      const offset = block * blockSize;
      const length = Math.min(count * blockSize, node.size - offset);
      if (id) await verifyRegion(reader, fh, offset, length, id);
      else if (device) for (let at = 0; at < length; at += ZERO_CHUNK.length) await verifyRegion(reader, fh, offset + at, Math.min(ZERO_CHUNK.length, length - at), null);
    }
    return;
  }
  let offset = 0;
  for (const id of node.content ?? []) {
    const length = locate(reader, id).rawLength;
    await verifyRegion(reader, fh, offset, length, id);
    offset += length;
  }
}

/** The target's bytes at [offset, offset + length) are those of blob `id` (null: zeros). */
async function verifyRegion(reader: BlobReader, fh: fs.FileHandle, offset: number, length: number, id: Buffer | null): Promise<void> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const same = got === length && (id ? reader.blobId(buf).equals(id) : isZero(buf));
  if (!same) throw new ScrateError(`verification failed: the target differs from the snapshot at bytes ${offset}..${offset + length}`);
}
