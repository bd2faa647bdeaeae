import { createRequire } from 'node:module';

/** A lane of pipeline.c: a zstd context at one level, its scratch and an AES-GCM context. */
export type Lane = { readonly __brand: 'scrate.Lane' };
/** A staged pack's file (its descriptor stays the caller's) and the SHA-256 of what was written to it. */
export type PackSink = { readonly __brand: 'scrate.PackSink' };

/** A backup's CPU work on libuv's thread pool, and zstd; implemented in pipeline.c, built by node-gyp at install. */
interface PipelineBinding {
  /**
   * Small files read whole into `into` one after another, cut (FastCDC with `table`, see
   * FastCDC.table) and named (keyed BLAKE3 under `key`, their blob IDs). Per file, READ_SLOTS results (see
   * ReadSlot). A file that grew since the walk is read to its end into grown[i], not `into`.
   * `into` needs room for every size plus one byte.
   */
  hashFiles(
    table: BigUint64Array, min: number, avg: number, max: number, key: Uint8Array,
    paths: Buffer, ends: Uint32Array, sizes: Float64Array, mtimesNs: BigInt64Array, into: Buffer, results: Float64Array,
  ): Promise<{ lengths: Uint32Array; ids: Buffer; grown: (Buffer | undefined)[] }>;
  /** The blob ID (keyed BLAKE3) of `data` under `key` into `out` (32 bytes). */
  hashChunk(key: Uint8Array, data: Uint8Array, out: Uint8Array): Promise<void>;
  /** A lane compressing at `level` (0: never). */
  newLane(level: number): Lane;
  /**
   * Each blob compressed when that makes it smaller and sealed (nonce counter = its offset in the
   * pack, `offset` being out[at]'s) after the one before; fields[2i] its length in the pack,
   * fields[2i + 1] 1 if compressed. Resolves with the bytes written. Calls on a lane seal in the
   * order made; at and offset -1 follow on from the call before. With a sink, the bytes are also
   * written to its file at their offset and hashed, in that order.
   */
  sealBlobs(lane: Lane, key: Uint8Array, blobs: Uint8Array[], out: Buffer, at: number, offset: number, fields: Uint32Array, sink?: PackSink): Promise<number>;
  /** A sink writing to the open file `fd`. */
  newPackSink(fd: number): PackSink;
  /** `bytes`, the pack's next ones, hashed and written at `offset`, on this thread. */
  packSinkWrite(sink: PackSink, bytes: Uint8Array, offset: number): void;
  /** The SHA-256 of all bytes written, in order: the pack's name. The sink takes no more. */
  packSinkDigest(sink: PackSink): Buffer;
  /** data compressed as sealBlobs would, on this thread, into out[at…]: its length, or 0 when not smaller (or out has no room). */
  compressInto(lane: Lane, data: Uint8Array, out: Uint8Array, at: number): number;
  /** A frame that records its size, decompressed; one claiming more than `limit` bytes is refused unread. */
  decompress(data: Uint8Array, limit: number): Buffer;
  /** Throws unless data decompresses to exactly out.length bytes. */
  decompressInto(out: Uint8Array, data: Uint8Array): void;
}

/** hashFiles' results per file: how it went, an errno, bytes read, 1 if it changed while read, its chunks. */
export const READ_SLOTS = 5;
export const enum ReadOutcome {
  ok = 0,
  /** Longer than the walk saw: read to its end into a buffer of its own. */
  grew = 1,
  openFailed = 2,
  readFailed = 3,
}

const require = createRequire(import.meta.url);
// dist/src/native/pipeline.js → build/Release at the package root
export const pipeline: PipelineBinding = require('../../../build/Release/scrate_pipeline.node');
