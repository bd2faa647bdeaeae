import { pipeline, type Lane } from '../native/pipeline.js';

/*
 * zstd through src/native/pipeline.c, the same code (and the same test of whether a large
 * blob is worth it) that compresses file data on the thread pool during a backup; here on the
 * calling thread, for the main thread's own objects (trees, the index, snapshots).
 */

const lanes = new Map<number, Lane>();

/** zstd at `level` into out[at…], which has room for data's length less a byte: the compressed length, or 0 when not smaller (or level 0: off). */
export function compressInto(data: Uint8Array, level: number, out: Uint8Array, at: number): number {
  let lane = lanes.get(level);
  if (!lane) lanes.set(level, (lane = pipeline.newLane(level)));
  return pipeline.compressInto(lane, data, out, at);
}

/** zstd at `level` into a new buffer, or null when compressing would not make the data smaller (or level 0: off). */
export function compress(data: Uint8Array, level: number): Buffer | null {
  const out = Buffer.allocUnsafe(data.length);
  const length = compressInto(data, level, out, 0);
  return length === 0 ? null : out.subarray(0, length);
}

/** A zstd frame decompressed; throws when it would be larger than `limit` (data from a repository is untrusted). */
export function decompress(data: Uint8Array, limit: number): Buffer {
  return pipeline.decompress(data, limit);
}

/**
 * Decompresses data whose size is known beforehand (a blob's, from the index) straight into
 * `out`, which has exactly that size. Throws when the data does not decompress to exactly
 * `out.length` bytes.
 */
export function decompressInto(out: Uint8Array, data: Uint8Array): void {
  pipeline.decompressInto(out, data);
}
