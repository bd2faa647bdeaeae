import { closeSync, readSync } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { chunkBuffer as cutPoints, FastCDC } from '../chunker/fastcdc.js';
import { hmacSha256 } from '../crypto/primitives.js';
import { BlobCompressor } from '../repository/compression.js';
import { BlobType, newDataPack, type PackEntry, type PackWriter } from '../repository/pack.js';
import { PACK_FILE_WINDOW, PackFile } from '../repository/pack-file.js';
import type { FileOutcomes, Job, Reply, WireEntries, WirePack, WorkerSetup } from './chunk-workers.js';
import { chunkBuffer, fileChunks } from './file-chunks.js';
import { openNoAtime } from './open-source.js';
import { errnoCode, posix, READ_SLOTS, ReadOutcome } from '../native/posix.js';
import { asBuffer } from '../util/buffers.js';

/** A thread of ChunkWorkers: reads small files whole, cuts and hashes; compresses, encrypts and packs the new blobs. */
const setup = workerData as WorkerSetup;
const key = Buffer.from(setup.chunkIdKey);
const dataPublicKey = Buffer.from(setup.dataPublicKey);
const chunker = new FastCDC(setup.chunker);
const compressor = new BlobCompressor(setup.level);
/** Room for a full pack and the blob that fills it (pages never written cost no memory). */
const PACK_CAPACITY = setup.packSize + 1024 * 1024;

interface Blob {
  id: Buffer;
  data: Buffer;
}

/**
 * Blobs hashed and waiting for the main thread's word on which are new, by job. They are views
 * into the job's region of the main thread's data ring (small files are read straight into
 * it and cut there), which it reuses once they are packed.
 */
const waiting = new Map<number, Blob[]>();
let pack: PackWriter | undefined;
/** The file the open pack is written to, when packs are staged (see Staging). */
let packFile: PackFile | undefined;
/** Staged packs are named by the worker's prefix and this count. */
let packsStaged = 0;
/** Buffers of packs already uploaded, sent back for reuse; when packs are staged, the one spill window. */
const freePackBuffers: Buffer[] = [];

function reply(r: Reply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(r, transfer);
}

// One job at a time, in order: jobs share the open pack and the compressor. A job that throws fails alone.
let queue = Promise.resolve();
parentPort!.on('message', (job: Job) => {
  queue = queue.then(() => handle(job)).catch((err: unknown) => reply({ seq: job.seq, kind: 'failed', message: err instanceof Error ? err.message : String(err) }));
});

async function handle(job: Job): Promise<void> {
  switch (job.kind) {
    case 'files': {
      const blobs: Blob[] = [];
      const files = await readFiles(job, blobs, Buffer.from(job.ring, job.offset, job.length));
      sendHashed(job.seq, blobs, files);
      return;
    }
    case 'chunk': {
      const data = Buffer.from(job.ring, job.offset, job.length);
      sendHashed(job.seq, [{ id: hmacSha256(key, data), data }]);
      return;
    }
    case 'store': {
      const blobs = waiting.get(job.seq)!;
      waiting.delete(job.seq);
      const packs: WirePack[] = [];
      blobs.forEach((b, i) => {
        if (job.fresh[i] === 1) store(b, packs);
      });
      sendPacks(job.seq, packs);
      return;
    }
    case 'recycle':
      freePackBuffers.push(Buffer.from(job.buffer));
      return;
    case 'flush': {
      const packs: WirePack[] = [];
      if (pack) packs.push(finishPack());
      sendPacks(job.seq, packs);
      return;
    }
  }
}

/** Keeps the blobs until the main thread says which are new, and sends it their IDs (and how reading the job's files went). */
function sendHashed(seq: number, blobs: Blob[], files?: FileOutcomes): void {
  waiting.set(seq, blobs);
  const ids = Buffer.allocUnsafeSlow(blobs.length * 32);
  blobs.forEach((b, i) => b.id.copy(ids, i * 32));
  const rawLengths = Uint32Array.from(blobs, (b) => b.data.length);
  const transfer = [ids.buffer, rawLengths.buffer] as ArrayBuffer[];
  if (files) transfer.push(files.chunks.buffer as ArrayBuffer, files.read.buffer as ArrayBuffer, files.changed.buffer as ArrayBuffer);
  reply({ seq, kind: 'hashed', ids, rawLengths, ...(files ? { files } : {}) }, transfer);
}

function store(blob: Blob, packs: WirePack[]): void {
  const packed = compressor.compress(blob.data);
  pack ??= openPack();
  pack.add(BlobType.data, blob.id, packed ?? blob.data, blob.data.length, packed !== null);
  if (pack.bytes >= setup.packSize) packs.push(finishPack());
}

/** A pack built in memory, or, when the repository adopts files, streamed to one through a small window. */
function openPack(): PackWriter {
  const staging = setup.staging;
  if (!staging) return newDataPack(dataPublicKey, freePackBuffers.pop() ?? PACK_CAPACITY);
  packFile = new PackFile(path.join(staging.dir, `${staging.prefix}${packsStaged++}`));
  return newDataPack(dataPublicKey, freePackBuffers.pop() ?? PACK_FILE_WINDOW, packFile.write);
}

function finishPack(): WirePack {
  // A pack's worth of blobs has passed through zstd's and the pack's buffers: what malloc holds
  // free of them goes back (peak RSS of a source tree's first backup ~4 MiB lower).
  posix.trimMalloc();
  const { bytes, entries: list, id } = pack!.finish();
  const { envelope } = pack!;
  pack = undefined;
  const entries = toWire(list);
  if (!packFile) return { bytes, entries, id, envelope };
  const staged = packFile.close();
  packFile = undefined;
  // The window stays here for the next pack (grown, if a blob needed it).
  freePackBuffers.push(Buffer.from(bytes.buffer));
  return { bytes: staged, entries, id, envelope };
}

/** A pack's entries as two arrays: cloned as two allocations, not one per blob ID. */
function toWire(entries: PackEntry[]): WireEntries {
  const ids = Buffer.allocUnsafeSlow(entries.length * 32);
  const fields = new Uint32Array(entries.length * 4);
  entries.forEach((e, i) => {
    e.id.copy(ids, i * 32);
    fields.set([e.offset, e.length, e.rawLength, e.compressed ? 1 : 0], i * 4);
  });
  return { ids, fields };
}

/** Hands over finished packs. */
function sendPacks(seq: number, packs: WirePack[]): void {
  // A pack's buffer and its entries' arrays are their own allocations: handed over, not copied.
  const buffers = packs.flatMap((p) => [
    ...(p.bytes instanceof Uint8Array ? [p.bytes.buffer as ArrayBuffer] : []),
    p.entries.ids.buffer as ArrayBuffer,
    p.entries.fields.buffer as ArrayBuffer,
  ]);
  reply({ seq, kind: 'stored', packs }, buffers);
}

/** Reads a job's files into `into` (one native call), then cuts and hashes each in place. */
async function readFiles(job: Extract<Job, { kind: 'files' }>, blobs: Blob[], into: Buffer): Promise<FileOutcomes> {
  const paths = asBuffer(job.paths);
  const count = job.ends.length;
  const results = new Float64Array(count * READ_SLOTS);
  posix.readFiles(paths, job.ends, job.sizes, job.mtimes, into, results);
  const files: FileOutcomes = { chunks: new Uint32Array(count), read: new Float64Array(count), changed: new Uint8Array(count), errors: [] };
  let used = 0;
  for (let i = 0; i < count; i++) {
    const at = i * READ_SLOTS;
    const outcome = results[at]!;
    const read = results[at + 2]!;
    const before = blobs.length;
    if (outcome === ReadOutcome.ok) {
      cut(into.subarray(used, used + read), blobs);
      used += read;
      files.read[i] = read;
      files.changed[i] = results[at + 3]!;
    } else if (outcome === ReadOutcome.grew) {
      const path = paths.subarray(i === 0 ? 0 : job.ends[i - 1], job.ends[i]);
      try {
        files.read[i] = await readGrown(path, blobs);
        files.changed[i] = 1;
      } catch (err) {
        // A file that failed part way contributes no blobs.
        blobs.length = before;
        files.errors.push({ file: i, code: codeOf(err), during: 'read' });
      }
    } else {
      files.errors.push({ file: i, code: errnoCode(results[at + 1]!), during: outcome === ReadOutcome.openFailed ? 'open' : 'read' });
    }
    files.chunks[i] = blobs.length - before;
  }
  return files;
}

function cut(data: Buffer, blobs: Blob[]): void {
  for (const [start, length] of cutPoints(chunker, data)) {
    const blob = data.subarray(start, start + length);
    blobs.push({ id: hmacSha256(key, blob), data: blob });
  }
}

/** A file that held more than the walk saw: read again from the start, as a stream. */
async function readGrown(path: Buffer, blobs: Blob[]): Promise<number> {
  const fd = openNoAtime(path);
  try {
    return await readStream(fd, blobs);
  } finally {
    closeSync(fd);
  }
}

/** A file read as a stream; its chunks are copied out of the read buffer, which is reused. */
async function readStream(fd: number, blobs: Blob[]): Promise<number> {
  // Rare (a file written to during the backup): a buffer for this file alone, not kept.
  const buffer = chunkBuffer(chunker);
  let read = 0;
  let position = 0;
  const reader = async (buf: Buffer, offset: number, length: number) => {
    const n = readSync(fd, buf, offset, length, position);
    position += n;
    return n;
  };
  for await (const chunk of fileChunks(reader, chunker, buffer)) {
    const data = Buffer.from(chunk);
    blobs.push({ id: hmacSha256(key, data), data });
    read += chunk.length;
  }
  return read;
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

