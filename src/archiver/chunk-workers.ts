import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Chunker } from '../chunker/chunker.js';
import type { ChunkerParams } from '../chunker/fastcdc.js';
import { BlobType } from '../repository/pack.js';
import type { FinishedPack, StagedPack } from '../repository/packer.js';
import { asBuffer } from '../util/buffers.js';
import { readdirOrEmpty } from '../util/fs.js';
import type { ReadFn } from './file-chunks.js';
import { RingArena, type Region } from '../util/ring-arena.js';

/** What every worker needs to cut, name, compress and pack data exactly as the repository does. */
export interface WorkerSetup {
  chunkIdKey: Uint8Array;
  dataPublicKey: Uint8Array;
  chunker: ChunkerParams;
  level: number;
  packSize: number;
  /** Where to write packs, when the repository adopts files (see Packer.staging); else they are built in memory. */
  staging?: { dir: string; prefix: string };
}

/** Main thread → worker. */
export type Job =
  /** Small files to read whole into a region of the data ring; paths as concatenated bytes. */
  | { seq: number; kind: 'files'; paths: Uint8Array; ends: Uint32Array; sizes: Float64Array; mtimes: BigInt64Array; ring: SharedArrayBuffer; offset: number; length: number }
  /** One chunk the main thread read and cut, in a region of the data ring (shared memory: nothing copied or handed over). */
  | { seq: number; kind: 'chunk'; ring: SharedArrayBuffer; offset: number; length: number }
  /** The answer to a job's 'hashed': which of its blobs to store (1) or drop (0). */
  | { seq: number; kind: 'store'; fresh: Uint8Array }
  /** Finish the open pack. */
  | { seq: number; kind: 'flush' }
  /** A pack's buffer back after its upload, to be reused for a later pack. */
  | { seq: number; kind: 'recycle'; buffer: ArrayBuffer };

/** Worker → main thread. */
export type Reply =
  | { seq: number; kind: 'hashed'; ids: Uint8Array; rawLengths: Uint32Array; files?: FileOutcomes }
  | { seq: number; kind: 'stored'; packs: WirePack[] }
  | { seq: number; kind: 'failed'; message: string };

/** How reading the files of a 'files' job went, as arrays by file: a few allocations per job, not one object per file. */
export interface FileOutcomes {
  /** File i's blobs: this many of the job's, after those of the files before it. */
  chunks: Uint32Array;
  read: Float64Array;
  /** 1 when size or mtime differ from what the walk saw, or it ended early: what was read is stored. */
  changed: Uint8Array;
  /** The files that could not be read (they have no blobs). */
  errors: { file: number; code: string; during: FileError['during'] }[];
}

/** An errno code, and whether opening or reading failed. */
export interface FileError {
  code: string;
  during: 'open' | 'read';
}

/** A finished data pack as it crosses threads (Buffers arrive as plain Uint8Arrays). */
export interface WirePack {
  bytes: Uint8Array | StagedPack;
  id: Uint8Array;
  envelope: Uint8Array;
  entries: WireEntries;
}

/** A data pack's entries: blob i's ID at ids[32i…], its offset, length, raw length and compressed flag at fields[4i…]. */
export interface WireEntries {
  ids: Uint8Array;
  fields: Uint32Array;
}

/** Where the workers' blobs go: the repository's packer (or a dry run's tally). */
export interface BlobSink {
  /** True if the blob must be stored: new to the repository and to this run. */
  claim(id: Buffer, rawLength: number): boolean;
  /** Takes a finished pack; resolves when there is room for more. */
  storePack(pack: FinishedPack): Promise<void>;
}

/** The blob IDs of an input, known as soon as it is hashed; `stored` settles when its new blobs are packed. */
export interface Hashed {
  ids: Buffer[];
  stored: Promise<void>;
}

export interface FileRead extends Hashed {
  read: number;
  changed: boolean;
  error?: FileError;
}

interface Slot {
  worker: Worker;
  pending: Map<number, { onReply: (r: Reply) => void; fail: (e: Error) => void }>;
  /** Bytes sent and not yet stored: new work goes to the least loaded worker. */
  load: number;
  /** Its packs' files are named this and a count (see chunk-worker's openPack). */
  stagingPrefix?: string;
  /** Names of its packs' files given to the sink, which adopts or removes them. */
  handed: Set<string>;
}

interface Batch {
  paths: Buffer[];
  sizes: number[];
  mtimes: bigint[];
  bytes: number;
  waiting: { resolve: (r: FileRead) => void; reject: (e: Error) => void }[];
}

/**
 * A worker's objects are short-lived (per blob: an ID, views, a pack entry) and its data lives
 * outside the heap, but V8 sizes a thread's young generation as for a main thread: with the
 * default, each worker held ~43 MiB of heap, ~10 of it live; with 8 MiB, ~20. Scavenges stay
 * cheap (few survivors).
 */
const WORKER_YOUNG_GENERATION_MB = 4;

/**
 * The data ring's size, at least (and room for two maximal chunks): the archiver's 8 MiB in
 * flight and a large input's read window (mostly 4–8 MiB), so a region seldom waits for room.
 */
const DATA_RING_BYTES = 16 * 1024 * 1024;

/** A large input is read into the data ring this much at a time, at least (see readChunks). */
const READ_BYTES = 4 * 1024 * 1024;

/** A batch is sent when it holds this many files or bytes, or when the main thread has nothing else to do. */
const BATCH_FILES = 64;
const BATCH_BYTES = 2 * 1024 * 1024;

/**
 * Worker threads (one per core) that do all the CPU-heavy work of a backup. Small files are
 * read, cut and hashed there whole, many to a message; chunks of large files and images, which
 * the main thread reads and cuts, one by one. The IDs come back first; the main thread says
 * which blobs are new (deduplication needs one view of the repository), and only those are
 * compressed, encrypted and packed by the worker, which hands over finished packs to upload.
 * The main thread is left with the walk, trees and uploads.
 */
export class ChunkWorkers {
  private readonly slots: Slot[];
  private seq = 0;
  private failure: Error | undefined;
  private closing = false;
  private batch: Batch | undefined;
  /** Every job not yet stored: a flush waits for all of them, not only for the workers' last packs. */
  private readonly unstored = new Set<Promise<void>>();
  /**
   * All data on its way through the workers, in regions of one shared ring given back once
   * packed: batches of small files (a worker reads them into the region it is given) and chunks
   * of large inputs (read into it here, see readChunks). A transferred buffer per chunk (pooled
   * by size) left up to ~55 MiB of buffers at a time, dropped ones waiting for a garbage
   * collection; a ring of each worker's own for its batches grew to 8 MiB each, and a 16 MiB
   * read buffer stood beside this one. What is in flight is bounded by the archiver's budget;
   * a region waits for room when the ring is fragmented.
   */
  private readonly ring: RingArena;
  /** Batches waiting for room in the ring: a flush sends only after them. */
  private readonly sending = new Set<Promise<void>>();
  /** Packs being handed to the sink: close() waits for them, so every staged file is then the sink's or its own to remove. */
  private readonly handing = new Set<Promise<void>>();

  constructor(
    private readonly setup: WorkerSetup,
    private readonly sink: BlobSink,
    count = Math.max(1, os.availableParallelism()),
  ) {
    this.ring = new RingArena(Math.max(DATA_RING_BYTES, 2 * setup.chunker.max), (size) => Buffer.from(new SharedArrayBuffer(size)));
    // A run's own prefix: leftovers of this run are told apart from another writer's files.
    const run = randomBytes(8).toString('hex');
    this.slots = Array.from({ length: count }, (_, i) => {
      const staging = setup.staging && { dir: setup.staging.dir, prefix: `${setup.staging.prefix}${run}-${i}-` };
      const worker = new Worker(new URL('./chunk-worker.js', import.meta.url), {
        workerData: { ...setup, staging } satisfies WorkerSetup,
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      const slot: Slot = { worker, pending: new Map(), load: 0, stagingPrefix: staging?.prefix, handed: new Set() };
      worker.on('message', (r: Reply) => slot.pending.get(r.seq)!.onReply(r));
      // A worker that dies fails every job: the backup stops with the error.
      const die = (err: Error) => {
        this.failure ??= err;
        for (const job of slot.pending.values()) job.fail(err);
        slot.pending.clear();
      };
      worker.on('error', die);
      worker.on('exit', (code) => {
        if (!this.closing) die(new Error(`a backup worker exited (code ${code})`));
      });
      worker.unref();
      return slot;
    });
  }

  /** Reads a small file whole on a worker. */
  readFile(path: Buffer, size: number, mtimeNs: bigint): Promise<FileRead> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.batch) {
      this.batch = { paths: [], sizes: [], mtimes: [], bytes: 0, waiting: [] };
      setImmediate(() => this.sendBatch());
    }
    const batch = this.batch;
    batch.paths.push(path);
    batch.sizes.push(size);
    batch.mtimes.push(mtimeNs);
    batch.bytes += size;
    const read = new Promise<FileRead>((resolve, reject) => batch.waiting.push({ resolve, reject }));
    if (batch.paths.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES) this.sendBatch();
    return read;
  }

  /**
   * Reads an input front to back straight into the data ring and yields its chunks, each a
   * region of the ring for storeRegion (or discard): no byte is copied on its way to a worker.
   * Bytes are read into a window after those not yet cut, and each chunk cut from its front
   * becomes a region of its own. The window grows only while no cut point is in sight, so it
   * is mostly a few MiB, not the chunker's maximum and a read-ahead beside the ring.
   */
  async *readChunks(read: ReadFn, chunker: Chunker): AsyncGenerator<Region> {
    // The most a window holds: what the largest chunk needs, or one read of smaller chunks.
    const most = Math.max(chunker.params.max, READ_BYTES);
    let window = await this.ring.take(READ_BYTES);
    let filled = 0;
    let eof = false;
    const roomToRead = async () => {
      const size = Math.min(filled + READ_BYTES, most);
      if (window.bytes.length < size) window = await this.ring.grow(window, filled, size);
    };
    try {
      for (;;) {
        if (filled > 0) {
          const length = chunker.cut(window.bytes, 0, filled);
          // Unless no cut point is before the end of what is here (or one is just there).
          if (length < filled || eof || filled >= chunker.params.max) {
            const [chunk, rest] = this.ring.split(window, length);
            window = rest;
            filled -= length;
            yield chunk;
            continue;
          }
        } else if (eof) {
          return;
        }
        await roomToRead();
        while (!eof && filled < window.bytes.length) {
          const n = await read(window.bytes, filled, window.bytes.length - filled);
          if (n === 0) eof = true;
          filled += n;
        }
      }
    } finally {
      this.ring.release(window);
    }
  }

  /** Stores a chunk that readChunks yielded; its region goes back to the ring once it is packed. */
  async storeRegion(region: Region): Promise<{ id: Buffer; stored: Promise<void> }> {
    if (this.failure) {
      this.ring.release(region);
      throw this.failure;
    }
    const { hashed, stored } = this.run({ seq: this.seq++, kind: 'chunk', ...inRing(region) }, region.bytes.length, []);
    this.releaseWhenStored(region, stored);
    const { ids } = await hashed;
    return { id: ids[0]!, stored };
  }

  /** Gives back a chunk readChunks yielded that is not to be stored. */
  discard(region: Region): void {
    this.ring.release(region);
  }

  /** Has every worker finish its open pack and hand it over. */
  async flush(): Promise<void> {
    this.sendBatch();
    await Promise.all(this.sending);
    for (const slot of this.slots) this.run({ seq: this.seq++, kind: 'flush' }, 0, [], slot);
    await Promise.all(this.unstored);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    await Promise.allSettled(this.handing);
    await this.removeUnhandedFiles();
  }

  /**
   * A worker stopped mid-run (the backup failed) leaves its open pack's file, and maybe
   * finished ones whose message never arrived or that were not handed over after a failure:
   * nobody else would remove them. Files handed over are the sink's.
   */
  private async removeUnhandedFiles(): Promise<void> {
    const dir = this.setup.staging?.dir;
    if (!dir) return;
    for (const name of await readdirOrEmpty(dir)) {
      const slot = this.slots.find((s) => name.startsWith(s.stagingPrefix!));
      if (slot && !slot.handed.has(name)) await fs.rm(path.join(dir, name), { force: true });
    }
  }

  /**
   * Pack buffers go back to the worker that filled them: otherwise each one lingers here until
   * a garbage collection notices it, and there were up to nine of them (17 MiB each) at once.
   */
  private recycle(slot: Slot, buffer: ArrayBuffer): void {
    if (this.closing) return;
    slot.worker.postMessage({ seq: this.seq++, kind: 'recycle', buffer } satisfies Job, [buffer]);
  }

  /** Sends the open batch once the ring has room for it (and its waiters are told if that fails). */
  private sendBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    // Room for every file, one byte more each (see posix.readFiles).
    const room = batch.bytes + batch.paths.length;
    const sent = this.ring
      .take(room)
      .then((region) => this.sendBatchIn(batch, region))
      .catch((err: unknown) => batch.waiting.forEach((w) => w.reject(err as Error)));
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  private sendBatchIn(batch: Batch, region: Region): void {
    if (this.failure) {
      this.ring.release(region);
      for (const w of batch.waiting) w.reject(this.failure);
      return;
    }
    const ends = new Uint32Array(batch.paths.length);
    let end = 0;
    batch.paths.forEach((p, i) => (ends[i] = end += p.length));
    const { hashed, stored } = this.run(
      { seq: this.seq++, kind: 'files', paths: Buffer.concat(batch.paths), ends, sizes: Float64Array.from(batch.sizes), mtimes: BigInt64Array.from(batch.mtimes), ...inRing(region) },
      batch.bytes,
      [],
    );
    this.releaseWhenStored(region, stored);
    hashed.then(
      ({ ids, files }) => {
        const errors = new Map(files!.errors.map(({ file, ...error }) => [file, error]));
        let first = 0;
        batch.waiting.forEach((w, i) => {
          const chunks = files!.chunks[i]!;
          w.resolve({ ids: ids.slice(first, first + chunks), stored, read: files!.read[i]!, changed: files!.changed[i] === 1, error: errors.get(i) });
          first += chunks;
        });
      },
      (err: Error) => {
        for (const w of batch.waiting) w.reject(err);
      },
    );
  }

  /** A region goes back to the ring once its job's blobs are packed, or the job failed. */
  private releaseWhenStored(region: Region, stored: Promise<void>): void {
    const release = () => this.ring.release(region);
    stored.then(release, release);
  }

  /**
   * Sends a job and carries it through both replies: 'hashed' (answered with the new blobs)
   * and 'stored' (its packs handed to the sink).
   */
  private run(job: Job, bytes: number, transfer: ArrayBuffer[], to?: Slot): { hashed: Promise<{ ids: Buffer[]; files?: FileOutcomes }>; stored: Promise<void> } {
    const slot = to ?? this.slots.reduce((a, b) => (b.load < a.load ? b : a));
    slot.load += bytes;
    const hashed = deferred<{ ids: Buffer[]; files?: FileOutcomes }>();
    const stored = deferred<void>();
    const finish = (err?: unknown) => {
      slot.pending.delete(job.seq);
      slot.load -= bytes;
      // Idle workers do not keep the process alive; one being terminated must, or the event
      // loop could empty before its 'exit' and leave close() (and the backup) unsettled.
      if (slot.pending.size === 0 && !this.closing) slot.worker.unref();
      if (err === undefined) return stored.resolve();
      this.failure ??= err as Error;
      hashed.reject(err);
      stored.reject(err);
    };
    const onHashed = (r: Extract<Reply, { kind: 'hashed' }>) => {
      const ids = splitIds(r.ids);
      const fresh = Uint8Array.from(ids, (id, i) => (this.sink.claim(id, r.rawLengths[i]!) ? 1 : 0));
      hashed.resolve({ ids, files: r.files });
      slot.worker.postMessage({ seq: job.seq, kind: 'store', fresh } satisfies Job);
    };
    const onStored = async (r: Extract<Reply, { kind: 'stored' }>) => {
      for (const p of r.packs) {
        const { bytes } = p;
        if (bytes instanceof Uint8Array) {
          await this.sink.storePack({ ...fromWire(p, asBuffer(bytes)), release: () => this.recycle(slot, bytes.buffer as ArrayBuffer) });
        } else {
          // Once given to the sink, the file is the sink's to adopt or remove; those after a failure here are close()'s.
          slot.handed.add(path.basename(bytes.file));
          await this.sink.storePack(fromWire(p, bytes));
        }
      }
    };
    slot.pending.set(job.seq, {
      fail: finish,
      onReply: (r) => {
        if (r.kind === 'failed') {
          finish(new Error(`a backup worker failed: ${r.message}`));
        } else if (r.kind === 'hashed') {
          try {
            onHashed(r);
          } catch (err) {
            finish(err);
          }
        } else {
          const handing = onStored(r).then(() => finish(), finish);
          this.handing.add(handing);
          void handing.finally(() => this.handing.delete(handing));
        }
      },
    });
    slot.worker.ref();
    slot.worker.postMessage(job, transfer);
    const tracked = stored.promise.finally(() => this.unstored.delete(tracked));
    tracked.catch(() => undefined);
    this.unstored.add(tracked);
    return { hashed: hashed.promise, stored: stored.promise };
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/** A promise settled from outside; its rejection is left for the holder of `promise` to observe. */
function deferred<T>(): Deferred<T> {
  const d = {} as Deferred<T>;
  d.promise = new Promise<T>((resolve, reject) => Object.assign(d, { resolve, reject }));
  d.promise.catch(() => undefined);
  return d;
}

/** Where a region lies in the shared ring, as a job names it. */
function inRing(region: Region): { ring: SharedArrayBuffer; offset: number; length: number } {
  const { bytes } = region;
  return { ring: bytes.buffer as SharedArrayBuffer, offset: bytes.byteOffset, length: bytes.length };
}

function splitIds(ids: Uint8Array): Buffer[] {
  const all = asBuffer(ids);
  return Array.from({ length: all.length / 32 }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}

function fromWire(p: WirePack, bytes: FinishedPack['bytes']): FinishedPack {
  const ids = asBuffer(p.entries.ids);
  return {
    bytes,
    id: asBuffer(p.id),
    envelope: asBuffer(p.envelope),
    type: BlobType.data,
    entries: Array.from({ length: p.entries.fields.length / 4 }, (_, i) => {
      const [offset, length, rawLength, compressed] = p.entries.fields.subarray(i * 4, i * 4 + 4);
      return { type: BlobType.data, id: ids.subarray(i * 32, i * 32 + 32), offset: offset!, length: length!, rawLength: rawLength!, compressed: compressed === 1 };
    }),
  };
}
