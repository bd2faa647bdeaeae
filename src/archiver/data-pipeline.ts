import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { ScrateError } from '../errors.js';
import type { Chunker } from '../chunker/chunker.js';
import type { FastCDC } from '../chunker/fastcdc.js';
import { TAG_BYTES } from '../crypto/primitives.js';
import { pipeline, READ_SLOTS, ReadOutcome, type Lane as NativeLane } from '../native/pipeline.js';
import { errnoCode, posix } from '../native/posix.js';
import { BlobType, newPack, type PackWriter } from '../repository/pack.js';
import { PACK_FILE_WINDOW, PackFile } from '../repository/pack-file.js';
import type { FinishedPack } from '../repository/packer.js';
import { RingArena, type Region } from '../util/ring-arena.js';

/** Fills buffer[offset, offset+length) as far as it can; 0 means the end of the input. */
export type ReadFn = (buffer: Buffer, offset: number, length: number) => Promise<number>;

/**
 * What the pipeline needs to cut and name data exactly as the repositories do (the targets
 * share both: see docs/DESIGN.md, backing up to several repositories), and where it goes.
 */
export interface PipelineSetup {
  /** Names blobs: the writer's key. */
  chunkIdKey: Buffer;
  chunker: FastCDC;
  /** One or more; each claims and packs the blobs new to it. */
  targets: PackTarget[];
}

/** How one repository's packs are made, and where they go. */
export interface PackTarget {
  /** The repository's public key, which pack keys are agreed with. */
  sealPublic: Buffer;
  /** Who writes the packs (their headers say so). */
  writer: Buffer;
  level: number;
  packSize: number;
  /** Where to write packs, when the repository adopts files (see Packer.staging); else they are built in memory. */
  staging?: { dir: string; prefix: string };
  sink: BlobSink;
}

/** Where the pipeline's blobs go: the repository's packer (or a dry run's tally). */
export interface BlobSink {
  /** True if the blob must be stored: new to the repository and to this run. */
  claim(id: Buffer, rawLength: number): boolean;
  /** Takes a finished pack; resolves when there is room for more. */
  storePack(pack: FinishedPack): Promise<void>;
  /** Packing for it failed: it gets nothing more (the other targets go on). */
  fail?(err: unknown): void;
}

/** An errno code, and whether opening or reading failed. */
export interface FileError {
  code: string;
  during: 'open' | 'read';
}

/** A small file's blob IDs, known once it is hashed; `stored` settles when its new blobs are packed. */
export interface FileRead {
  ids: Buffer[];
  stored: Promise<void>;
  read: number;
  /** Its size or mtime differ from what the walk saw, or it ended early: what was read is stored. */
  changed: boolean;
  /** It could not be read (it has no blobs). */
  error?: FileError;
}

/**
 * A lane packs the blobs given to it into its own open pack. Its sealBlobs calls seal one after
 * another on the pool; the next is made while the one before is still sealing (see SEALS_AHEAD).
 */
interface Lane {
  native: NativeLane;
  pack?: PackWriter;
  /** The open pack's file, when packs are staged. */
  file?: PackFile;
  /** Buffers of packs already uploaded, for the next packs; when packs are staged, the one window. */
  buffers: Buffer[];
  /** Stores given to it with blobs not yet handed to a call, oldest first. */
  waiting: LaneStore[];
  /** Calls made and not yet come back, oldest first. */
  sealing: Seal[];
  /** The pack's place for the calls under way, taken from it when none was under way (at pack offset `offset`). */
  window?: { buffer: Buffer; at: number; free: number; offset: number };
  /** Working through `waiting` (see pump), and the promise of that. */
  busy: boolean;
  pumping?: Promise<void>;
  /** Bytes given to it and not yet packed: new work goes to the least loaded lane. */
  load: number;
}

/** One sealBlobs call under way, and the stores whose last blobs it seals. */
interface Seal {
  written: Promise<number>;
  ids: Buffer[];
  lengths: number[];
  fields: Uint32Array;
  most: number;
  completes: LaneStore[];
}

/** Blobs to pack, from one input: `next` is the first not yet handed to a sealBlobs call. */
interface LaneStore {
  ids: Buffer[];
  blobs: Uint8Array[];
  bytes: number;
  next: number;
  done: Deferred<void>;
}

interface Batch {
  paths: Buffer[];
  sizes: number[];
  mtimes: bigint[];
  bytes: number;
  waiting: { resolve: (r: FileRead) => void; reject: (e: Error) => void }[];
}

/**
 * The data ring's size: the archiver's 4 MiB in flight and a large input's read window
 * (mostly 4 MiB), so a region seldom waits for room; at least the largest chunk's window.
 * Every page of it is touched: 12 and 16 MiB were no faster.
 */
const DATA_RING_BYTES = 8 * 1024 * 1024;

/** A large input is read into the data ring this much at a time, at least (see readChunks). */
const READ_BYTES = 4 * 1024 * 1024;

/**
 * sealBlobs calls a lane has under way at most: the next is queued on the pool behind the one
 * sealing (see pipeline.c), so the lane goes on the moment that one ends, without a trip
 * through the event loop between them.
 */
const SEALS_AHEAD = 2;
/** How far a call queued behind another may write past where a staged pack's window starts over, at most. */
const CHAINED_ROOM = 1024 * 1024;

/** A batch is sent when it holds this many files or bytes, or when the main thread has nothing else to do. */
const BATCH_FILES = 64;
const BATCH_BYTES = 2 * 1024 * 1024;

/**
 * A backup's data from its source to finished packs. The CPU-heavy work runs in native code
 * on libuv's thread pool (src/native/pipeline.c): batches of small files are read, cut and
 * hashed there whole; chunks of large files and images, which are read and cut here, hashed
 * one by one. With the IDs back, the sink says which blobs are new (deduplication needs one
 * view of the repository), and only those are compressed and sealed into a lane's pack; a
 * lane per core, so both cores pack. Finished packs go to the sink to upload.
 *
 * This replaced two worker_threads isolates that did the same in JavaScript calling native
 * code: their V8 heaps and messages were a fifth of a backup's peak RSS.
 */
export class DataPipeline {
  private readonly outputs: PackOutput[];
  /** Set once no target is left (the first target's failure then), or on a failure of reading or hashing. */
  private failure: Error | undefined;
  private closing = false;
  private batch: Batch | undefined;
  /** Every input not yet stored: a flush waits for all of them. */
  private readonly unstored = new Set<Promise<void>>();
  /**
   * All data on its way through the pipeline, in regions of one ring given back once packed:
   * batches of small files (read into their region on the pool) and chunks of large inputs
   * (read into it here, see readChunks). What is in flight is bounded by the archiver's
   * budget; a region waits for room when the ring is fragmented.
   */
  private readonly ring: RingArena;
  /** Batches waiting for room in the ring: a flush sends only after them. */
  private readonly sending = new Set<Promise<void>>();

  /** `lanes` in all, shared out among the targets (at least one each). */
  constructor(
    private readonly setup: PipelineSetup,
    lanes = Math.max(1, os.availableParallelism()),
  ) {
    this.ring = new RingArena(Math.max(DATA_RING_BYTES, setup.chunker.params.max));
    const each = Math.max(1, Math.floor(lanes / setup.targets.length));
    const state = { stopped: () => this.failure ?? (this.closing ? new ScrateError('the backup was stopped') : undefined) };
    this.outputs = setup.targets.map((target) => new PackOutput(target, setup.chunker.params.max, each, state, () => this.outputFailed()));
  }

  /** Reads a small file whole on the pool, with others in a batch. */
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
   * region of the ring for storeRegion (or discard): no byte is copied on its way to a pack.
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
    const stored = this.track(region);
    const id = Buffer.allocUnsafeSlow(32);
    try {
      if (this.failure) throw this.failure;
      await pipeline.hashChunk(this.setup.chunkIdKey, region.bytes, id);
    } catch (err) {
      stored.reject(err);
      throw err;
    }
    this.storeFresh([id], [region.bytes]).then(stored.resolve, stored.reject);
    return { id, stored: stored.promise };
  }

  /** Gives back a chunk readChunks yielded that is not to be stored. */
  discard(region: Region): void {
    this.ring.release(region);
  }

  /** Stores every input given so far and hands over the lanes' open packs. */
  async flush(): Promise<void> {
    this.sendBatch();
    await Promise.all(this.sending);
    await Promise.all(this.unstored);
    for (const output of this.outputs) {
      await output.flush();
      if (this.failure) throw this.failure;
    }
  }

  /** After a failure, the open packs' files go (those handed over are the sink's to adopt or remove). */
  async close(): Promise<void> {
    this.closing = true;
    for (const output of this.outputs) await output.close();
  }

  /** A target failed: the run goes on while another is left; with none left, it fails with the first target's failure. */
  private outputFailed(): void {
    if (this.outputs.every((o) => o.failure !== undefined)) this.failure ??= this.outputs[0]!.failure as Error;
  }

  /** Sends the open batch once the ring has room for it (and its waiters are told if that fails). */
  private sendBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    // Room for every file, one byte more each (see pipeline.hashFiles).
    const room = batch.bytes + batch.paths.length;
    const sent = this.ring
      .take(room)
      .then((region) => this.sendBatchIn(batch, region))
      .catch((err: unknown) => batch.waiting.forEach((w) => w.reject(err as Error)));
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  private sendBatchIn(batch: Batch, region: Region): void {
    const stored = this.track(region);
    if (this.failure) {
      stored.reject(this.failure);
      for (const w of batch.waiting) w.reject(this.failure);
      return;
    }
    this.hashBatch(batch, region, stored.promise)
      .then(
        ({ ids, blobs }) => this.storeFresh(ids, blobs),
        (err: unknown) => {
          for (const w of batch.waiting) w.reject(err as Error);
          throw err;
        },
      )
      .then(stored.resolve, stored.reject);
  }

  /** Reads, cuts and hashes a batch on the pool and tells each file's waiter; the blobs for storeFresh. */
  private async hashBatch(batch: Batch, region: Region, stored: Promise<void>): Promise<{ ids: Buffer[]; blobs: Uint8Array[] }> {
    const count = batch.paths.length;
    const ends = new Uint32Array(count);
    let end = 0;
    batch.paths.forEach((p, i) => (ends[i] = end += p.length));
    const results = new Float64Array(count * READ_SLOTS);
    const { chunker, chunkIdKey } = this.setup;
    const { min, avg, max } = chunker.params;
    const hashed = await pipeline.hashFiles(chunker.table, min, avg, max, chunkIdKey, Buffer.concat(batch.paths), ends, Float64Array.from(batch.sizes), BigInt64Array.from(batch.mtimes), region.bytes, results);
    const ids = splitIds(hashed.ids);
    const blobs: Uint8Array[] = [];
    let first = 0;
    let used = 0;
    batch.waiting.forEach((w, i) => {
      const [outcome, errno, read, changed, chunks] = results.subarray(i * READ_SLOTS, (i + 1) * READ_SLOTS) as unknown as number[];
      if (outcome === ReadOutcome.openFailed || outcome === ReadOutcome.readFailed) {
        w.resolve({ ids: [], stored, read: 0, changed: false, error: { code: errnoCode(errno!), during: outcome === ReadOutcome.openFailed ? 'open' : 'read' } });
        return;
      }
      const own = hashed.grown[i];
      const bytes = own ?? region.bytes.subarray(used, (used += read!));
      for (let c = 0, at = 0; c < chunks!; c++) blobs.push(bytes.subarray(at, (at += hashed.lengths[first + c]!)));
      w.resolve({ ids: ids.slice(first, first + chunks!), stored, read: read!, changed: changed === 1 });
      first += chunks!;
    });
    return { ids, blobs };
  }

  /**
   * Each target packs the blobs it claims as new; settles when every target has them in a pack
   * (a target failing meanwhile counts as settled: async, so a claim that throws rejects).
   */
  private async storeFresh(ids: Buffer[], blobs: Uint8Array[]): Promise<void> {
    if (this.failure) throw this.failure;
    const [only, ...more] = this.outputs;
    if (more.length === 0) return only!.store(ids, blobs);
    await Promise.all(this.outputs.map((o) => (o.failure === undefined ? o.store(ids, blobs).catch(() => this.rethrowIfNoneLeft()) : undefined)));
  }

  private rethrowIfNoneLeft(): void {
    if (this.failure) throw this.failure;
  }

  /** A promise for when an input is stored, which a flush waits for; its region goes back to the ring then. */
  private track(region: Region): Deferred<void> {
    const stored = deferred<void>();
    const settled = stored.promise.then(
      () => this.ring.release(region),
      (err: unknown) => {
        this.failure ??= err as Error;
        this.ring.release(region);
        throw err;
      },
    );
    const tracked = settled.finally(() => this.unstored.delete(tracked));
    tracked.catch(() => undefined);
    this.unstored.add(tracked);
    return stored;
  }
}

/**
 * One target's packing: its lanes, each with an open pack sealed for that repository, and
 * its sink. It fails on its own (a pack it cannot write or hand over): the sink is told, and
 * it takes nothing more.
 */
class PackOutput {
  private readonly lanes: Lane[];
  failure: unknown;
  /** Staged packs are named by the staging prefix, this run's own (a leftover is told from another writer's), and a count. */
  private readonly run = randomBytes(8).toString('hex');
  private packsStaged = 0;

  constructor(
    private readonly target: PackTarget,
    private readonly maxChunk: number,
    lanes: number,
    private readonly owner: { stopped: () => Error | undefined },
    private readonly onFailure: () => void,
  ) {
    this.lanes = Array.from({ length: lanes }, () => ({ native: pipeline.newLane(target.level), buffers: [], waiting: [], sealing: [], busy: false, load: 0 }));
  }

  /** Packs the blobs the sink claims as new on the least loaded lane; settles when they are in a pack (async: a claim that throws rejects). */
  async store(ids: Buffer[], blobs: Uint8Array[]): Promise<void> {
    const store: LaneStore = { ids: [], blobs: [], bytes: 0, next: 0, done: deferred<void>() };
    try {
      ids.forEach((id, i) => {
        if (!this.target.sink.claim(id, blobs[i]!.length)) return;
        store.ids.push(id);
        store.blobs.push(blobs[i]!);
        store.bytes += blobs[i]!.length;
      });
    } catch (err) {
      this.fail(err);
      throw err;
    }
    if (store.blobs.length === 0) return;
    const lane = this.lanes.reduce((a, b) => (b.load < a.load ? b : a));
    lane.load += store.bytes;
    lane.waiting.push(store);
    if (!lane.busy) {
      lane.busy = true;
      lane.pumping = this.pump(lane);
    } else if (lane.sealing.length > 0 && lane.sealing.length < SEALS_AHEAD) {
      // Queued behind the call sealing now, not after it comes back (a pack being finished has none).
      this.startSeal(lane);
    }
    await store.done.promise;
  }

  /** Hands over the lanes' open packs once everything given is sealed (nothing when failed). */
  async flush(): Promise<void> {
    for (const lane of this.lanes) {
      await lane.pumping;
      if (this.failure !== undefined || this.owner.stopped()) return;
      if (lane.pack) await this.finishPack(lane).catch((err: unknown) => this.fail(err));
    }
  }

  /** The open packs' files go (those handed over are the sink's to adopt or remove). */
  async close(): Promise<void> {
    await Promise.allSettled(this.lanes.map((lane) => lane.pumping));
    for (const lane of this.lanes) {
      lane.file?.abandon();
      lane.file = lane.pack = undefined;
    }
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.target.sink.fail?.(err);
    this.onFailure();
  }

  /** Seals a lane's waiting stores until none is left; the first failure fails them all and stops the pipeline. */
  private async pump(lane: Lane): Promise<void> {
    let underWay: Seal[] = [];
    try {
      while (lane.waiting.length > 0 || lane.sealing.length > 0) {
        const stopped = this.failure ?? this.owner.stopped();
        if (stopped) throw stopped;
        while (lane.sealing.length < SEALS_AHEAD && this.startSeal(lane));
        await this.endSeal(lane);
      }
    } catch (err) {
      this.fail(err);
      underWay = lane.sealing.splice(0);
      for (const store of [...underWay.flatMap((s) => s.completes), ...lane.waiting.splice(0)]) store.done.reject(err);
    } finally {
      // In the same turn as the last look at `waiting`: a store given after it starts a new pump.
      lane.busy = false;
    }
    // Calls under way settle on their own (in order, each after the one before); they write to
    // the pack's file, which close() removes only once the pump has ended.
    await Promise.allSettled(underWay.map((s) => s.written));
  }

  /**
   * Makes one sealBlobs call: as many waiting blobs, across stores, as surely fit (a sealed
   * blob is at most 16 bytes longer than it is) in the pack's place beside what the calls under
   * way may write, and as the pack wants; false when none does (the calls under way come back
   * first). The first call into a place takes it from the pack, which may start its window over or
   * grow it then: never under calls that write into it.
   */
  private startSeal(lane: Lane): boolean {
    const { packSize } = this.target;
    const first = lane.waiting[0];
    if (!first) return false;
    const pack = (lane.pack ??= this.openPack(lane));
    const chained = lane.sealing.length > 0;
    if (!chained) lane.window = { ...pack.room(first.blobs[first.next]!.length + TAG_BYTES), offset: pack.bytes };
    const window = lane.window!;
    // The most the calls under way can still write (a blob and its tag each).
    const reserved = lane.sealing.reduce((n, s) => n + s.most, 0);
    // A call queued behind another may go past where the window starts over (into pages of the
    // buffer not touched otherwise): what the one before leaves is known too late.
    const end = chained ? Math.min(window.buffer.length - window.at, window.free + CHAINED_ROOM) : window.free;
    const free = end - (pack.bytes - window.offset) - reserved;
    const group: Uint8Array[] = [];
    const ids: Buffer[] = [];
    const completes: LaneStore[] = [];
    let most = 0;
    taking: for (const store of lane.waiting) {
      for (; store.next < store.blobs.length; store.next++) {
        const blob = store.blobs[store.next]!;
        const fits = most + blob.length + TAG_BYTES <= free && pack.bytes + reserved + most < packSize;
        if (!fits && (chained || group.length > 0)) break taking;
        group.push(blob);
        ids.push(store.ids[store.next]!);
        most += blob.length + TAG_BYTES;
      }
      completes.push(store);
    }
    lane.waiting.splice(0, completes.length);
    if (group.length === 0) return false;
    shuffle(group, ids);
    const fields = new Uint32Array(2 * group.length);
    const at = chained ? -1 : window.at;
    const offset = chained ? -1 : window.offset;
    const written = pipeline.sealBlobs(lane.native, pack.key, group, window.buffer, at, offset, fields, lane.file?.sink);
    written.catch(() => undefined); // observed by endSeal, in order
    lane.sealing.push({ written, ids, lengths: group.map((b) => b.length), fields, most, completes });
    return true;
  }

  /** Takes the oldest call's blobs into the pack once it comes back, finishing the pack when it is full and no call writes into it. */
  private async endSeal(lane: Lane): Promise<void> {
    const seal = lane.sealing[0]!;
    await seal.written;
    lane.sealing.shift();
    const pack = lane.pack!;
    pack.sealed(seal.ids, seal.lengths, seal.fields);
    if (lane.sealing.length === 0 && pack.bytes >= this.target.packSize) await this.finishPack(lane);
    for (const store of seal.completes) {
      lane.load -= store.bytes;
      store.done.resolve();
    }
  }

  /**
   * A pack built in memory, or streamed to a file through a window of PACK_FILE_WINDOW; either
   * has room for the largest blob from the start (a blob is given room for its length before
   * it is compressed), so it never grows and leaves no garbage: pages never written cost nothing.
   */
  private openPack(lane: Lane): PackWriter {
    const { staging, sealPublic, writer, packSize } = this.target;
    const largest = this.maxChunk + TAG_BYTES;
    // A pack in memory also has room for its header (~41 bytes a blob, and its padding).
    if (!staging) return newPack(BlobType.data, sealPublic, writer, lane.buffers.pop() ?? packSize + largest + 1024 * 1024);
    lane.file = new PackFile(path.join(staging.dir, `${staging.prefix}${this.run}-${this.packsStaged++}`));
    return newPack(BlobType.data, sealPublic, writer, lane.buffers.pop() ?? Math.max(largest, PACK_FILE_WINDOW), lane.file, PACK_FILE_WINDOW);
  }

  private async finishPack(lane: Lane): Promise<void> {
    const pack = lane.pack!;
    const { bytes, entries, id, size } = pack.finish();
    lane.pack = undefined;
    // What malloc holds free (hashFiles' results, the pool threads' arenas) goes back once a pack:
    // 0–4 MiB lower peaks in A/B, within the noise, and the peak's margin over restic's is thin.
    posix.trimMalloc();
    const buffer = Buffer.from(bytes.buffer);
    const done = { entries, id, type: BlobType.data, envelope: pack.envelope };
    if (!lane.file) return this.target.sink.storePack({ ...done, bytes, release: () => lane.buffers.push(buffer) });
    const staged = lane.file.close(size);
    lane.file = undefined;
    // The window stays with the lane for its next pack (grown, if a blob needed it).
    lane.buffers.push(buffer);
    // Once given to the sink, the file is the sink's to adopt or remove.
    return this.target.sink.storePack({ ...done, bytes: staged });
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

/**
 * Puts the blobs of one sealing call in a random order (the same for both lists): a pack then
 * does not hold a file's chunks in the file's order, one after another.
 */
function shuffle(blobs: Uint8Array[], ids: Buffer[]): void {
  // One call for the randomness of all swaps (a randomInt per blob cost ~1 µs each); the modulo's bias is immaterial here.
  const random = randomBytes(4 * blobs.length);
  for (let i = blobs.length - 1; i > 0; i--) {
    const j = random.readUInt32LE(4 * i) % (i + 1);
    [blobs[i], blobs[j]] = [blobs[j]!, blobs[i]!];
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
}

function splitIds(all: Buffer): Buffer[] {
  return Array.from({ length: all.length / 32 }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}
