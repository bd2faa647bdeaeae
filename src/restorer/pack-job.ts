import { closeSync, ftruncateSync } from 'node:fs';
import { IntegrityError } from '../errors.js';
import type { BlobLocation } from '../repository/blob-index.js';
import { BlobScratch, decodeSealedBlob } from '../repository/repository.js';
import { restoreNative } from '../native/restore.js';
import { createFile, errorCode, problem, reopenFile, writeAll, writeSparse } from './file-io.js';
import { asBuffer } from '../util/buffers.js';
import { creationMode, finishFile, type Metadata } from './metadata.js';

/** A restored file as the threads writing its content see it. */
export interface FileTarget {
  /** Relative to the restore's target directory. */
  path: Uint8Array;
  /** Content bytes. */
  length: number;
  /** Zero blocks are left as holes. */
  sparse: boolean;
  meta: Metadata;
}

export interface JobBlob {
  id: Uint8Array;
  /** Where the sealed blob lies in its pack. */
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
  /** The zero blob: written as zeros, never read. */
  zero: boolean;
  /** Where it goes: pairs of file number and offset in that file. */
  targets: number[];
}

/** A byte range of one pack and every write of its blobs into the files of a restore. */
export interface PackJob {
  packId: string;
  packKey: Uint8Array;
  /** The pack's bytes from offset `start` on, covering every blob that is not a zero blob. */
  start: number;
  bytes: Uint8Array;
  content: JobContent;
  /** The restore's FileStates. */
  states: SharedArrayBuffer;
  /** A descriptor of the target directory (threads share them), which the files' paths are relative to. */
  target: number;
  overwrite: boolean;
  /** A blob failing verification now is damage, not a garbled read to try again. */
  lastAttempt: boolean;
  /** Why the range could not be read (a missing pack): each of its blobs is damage. */
  unreadable?: string;
}

/**
 * A job's blobs and the files they go to, flat, in buffers of its own: as objects (a blob, its
 * targets, a file and its metadata each), a job's message cost the main thread ~0.7 s of
 * postMessage on the kernel tree and the workers as much to decode, and its IDs and paths, views
 * of Node's 8 KiB allocation pool, were cloned with the whole pool slab under each (23 MB of
 * messages for 58 jobs).
 */
export interface JobContent {
  /** 32 bytes a blob, in pack order. */
  ids: Uint8Array;
  /** BLOB_FIELDS a blob: offset in the pack, length there, raw length, BlobFlag bits, end of its pairs in `targets`. */
  blobs: Float64Array;
  /** Where the blobs go: pairs of file number and offset in that file. */
  targets: Float64Array;
  /** FILE_FIELDS a file: its number, content length, 1 if sparse, uid, gid, mode. */
  files: Float64Array;
  mtimes: BigInt64Array;
  /** The files' paths one after another: file i's ends at pathEnds[i]. */
  paths: Uint8Array;
  pathEnds: Uint32Array;
}

const BLOB_FIELDS = 5;
const FILE_FIELDS = 6;
const enum BlobFlag {
  compressed = 1,
  /** The zero blob: written as zeros, never read. */
  zero = 2,
}

/** A job's content for its message; the buffers are the job's own, to transfer. */
export function encodeContent(blobs: readonly JobBlob[], files: readonly [number, FileTarget][]): JobContent {
  const ids = new Uint8Array(32 * blobs.length);
  const fields = new Float64Array(BLOB_FIELDS * blobs.length);
  const targets = new Float64Array(blobs.reduce((n, b) => n + b.targets.length, 0));
  let end = 0;
  blobs.forEach((b, i) => {
    ids.set(b.id, 32 * i);
    targets.set(b.targets, end);
    end += b.targets.length;
    const o = BLOB_FIELDS * i;
    fields[o] = b.offset;
    fields[o + 1] = b.length;
    fields[o + 2] = b.rawLength;
    fields[o + 3] = (b.compressed ? BlobFlag.compressed : 0) | (b.zero ? BlobFlag.zero : 0);
    fields[o + 4] = end;
  });
  const numbers = new Float64Array(FILE_FIELDS * files.length);
  const mtimes = new BigInt64Array(files.length);
  const paths = new Uint8Array(files.reduce((n, [, t]) => n + t.path.length, 0));
  const pathEnds = new Uint32Array(files.length);
  let at = 0;
  files.forEach(([f, t], i) => {
    const o = FILE_FIELDS * i;
    numbers[o] = f;
    numbers[o + 1] = t.length;
    numbers[o + 2] = t.sparse ? 1 : 0;
    numbers[o + 3] = t.meta.uid;
    numbers[o + 4] = t.meta.gid;
    numbers[o + 5] = t.meta.mode;
    mtimes[i] = t.meta.mtimeNs;
    paths.set(t.path, at);
    pathEnds[i] = at += t.path.length;
  });
  return { ids, blobs: fields, targets, files: numbers, mtimes, paths, pathEnds };
}

/** The buffers of a job's message that go to the worker rather than being copied. */
export function transferable(job: PackJob): ArrayBuffer[] {
  const { content, bytes } = job;
  const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return [...(owned ? [bytes] : []), ...Object.values(content)].map((a: ArrayBufferView) => a.buffer as ArrayBuffer);
}

export interface JobResult {
  /** Files completed by this job: every byte written, metadata set. */
  restored: number[];
  /** What went wrong, by file number. A damaged file is reported once and removed. */
  problems: [number, string][];
  /** Blobs (indices into the job's blobs) that failed verification before the last attempt. */
  retry: number[];
  /** Bytes written (a blob as many times as files need it): a restore's progress within large files. */
  written: number;
  /** A file was in the way and overwriting was not allowed (its error code): the restore stops. */
  conflict?: [number, string];
}

/** Lifecycle of a file, shared by every thread that writes parts of it. */
const enum Stage {
  absent = 0,
  creating = 1,
  created = 2,
  /** Not created, and never will be. */
  refused = 3,
}

/**
 * Per-file counters in shared memory: the writes still to come, the stage, and whether it is
 * damaged. A file's blobs may lie in several packs written by several threads at once: the
 * first writer creates the file, the others wait for that, and the one whose write is the last
 * completes the file (or removes it, when damaged).
 */
export class FileStates {
  private readonly words: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly count = buffer.byteLength / 12,
  ) {
    this.words = new Int32Array(buffer);
  }

  static create(writes: readonly number[]): FileStates {
    const states = new FileStates(new SharedArrayBuffer(writes.length * 12));
    states.words.set(writes);
    return states;
  }

  /** Counts one write (done or given up) of file `f`; true when it was the last. */
  wrote(f: number): boolean {
    return Atomics.sub(this.words, f, 1) === 1;
  }

  /** Moves an absent file to `creating` and returns the stage it had. */
  claim(f: number): Stage {
    return Atomics.compareExchange(this.words, this.count + f, Stage.absent, Stage.creating);
  }

  settle(f: number, stage: Stage.created | Stage.refused): void {
    Atomics.store(this.words, this.count + f, stage);
    Atomics.notify(this.words, this.count + f);
  }

  awaitCreation(f: number): void {
    Atomics.wait(this.words, this.count + f, Stage.creating);
  }

  created(f: number): boolean {
    return Atomics.load(this.words, this.count + f) === Stage.created;
  }

  /** Marks file `f` damaged; true the first time. */
  damage(f: number): boolean {
    return Atomics.exchange(this.words, 2 * this.count + f, 1) === 0;
  }

  damaged(f: number): boolean {
    return Atomics.load(this.words, 2 * this.count + f) === 1;
  }
}

/** Descriptors a job keeps open at most: files whose blobs lie far apart in a pack are reopened. */
const MAX_OPEN = 64;

/** A thread's space for decoded blobs: each is written everywhere it goes before the next is decoded. */
const scratch = new BlobScratch();

/** Decrypts and verifies a job's blobs in pack order and writes each to every place that needs it. */
export function runPackJob(job: PackJob, chunkIdKey: Buffer): JobResult {
  return new JobRun(job, chunkIdKey).run();
}

class JobRun {
  private readonly result: JobResult = { restored: [], problems: [], retry: [], written: 0 };
  private readonly files = new Map<number, FileTarget>();
  private readonly states: FileStates;
  private readonly fds = new Map<number, number>();
  private readonly bytes: Buffer;

  constructor(
    private readonly job: PackJob,
    private readonly chunkIdKey: Buffer,
  ) {
    this.states = new FileStates(job.states);
    this.bytes = asBuffer(job.bytes);
    const { files, mtimes, paths, pathEnds } = job.content;
    const allPaths = asBuffer(paths);
    for (let i = 0, start = 0, o = 0; i < mtimes.length; start = pathEnds[i]!, i++, o += FILE_FIELDS) {
      const meta = { uid: files[o + 3]!, gid: files[o + 4]!, mode: files[o + 5]!, mtimeNs: mtimes[i]!, symlink: false };
      this.files.set(files[o]!, { path: allPaths.subarray(start, pathEnds[i]), length: files[o + 1]!, sparse: files[o + 2] === 1, meta });
    }
  }

  run(): JobResult {
    const { ids, blobs, targets } = this.job.content;
    try {
      for (let i = 0, from = 0, o = 0; o < blobs.length; i++, o += BLOB_FIELDS) {
        const flags = blobs[o + 3]!;
        const blob = { offset: blobs[o]!, length: blobs[o + 1]!, rawLength: blobs[o + 2]!, compressed: (flags & BlobFlag.compressed) !== 0 };
        const at = targets.subarray(from, (from = blobs[o + 4]!));
        const data = (flags & BlobFlag.zero) !== 0 ? Buffer.alloc(blob.rawLength) : this.decode(asBuffer(ids.subarray(32 * i, 32 * i + 32)), blob, at, i);
        if (!data) continue;
        for (let t = 0; t < at.length; t += 2) this.write(at[t]!, at[t + 1]!, data);
      }
    } finally {
      for (const fd of this.fds.values()) closeSync(fd);
    }
    return this.result;
  }

  /** The blob's plaintext, or null when it is to be read again or is damaged (its files then are). */
  private decode(id: Buffer, blob: Omit<BlobLocation, 'pack'>, targets: Float64Array, i: number): Buffer | null {
    let message: string;
    if (this.job.unreadable) {
      message = new IntegrityError(`blob ${id.toString('hex').slice(0, 12)}`, this.job.unreadable).message;
    } else {
      const at = blob.offset - this.job.start;
      try {
        return decodeSealedBlob(asBuffer(this.job.packKey), this.chunkIdKey, id, blob, this.bytes.subarray(at, at + blob.length), this.job.packId, scratch);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        if (!this.job.lastAttempt) {
          this.result.retry.push(i);
          return null;
        }
        message = err.message;
      }
    }
    for (let t = 0; t < targets.length; t += 2) {
      this.fail(targets[t]!, message);
      this.done(targets[t]!);
    }
    return null;
  }

  private write(f: number, position: number, data: Buffer): void {
    const fd = this.states.damaged(f) ? undefined : this.descriptor(f);
    if (fd !== undefined) {
      try {
        if (this.files.get(f)!.sparse) writeSparse(fd, data, position);
        else writeAll(fd, data, position);
        this.result.written += data.length;
      } catch (err) {
        this.fail(f, problem(err));
      }
    }
    this.done(f);
  }

  /** An open descriptor of file `f`, created by whichever thread gets to it first; undefined if it cannot be. */
  private descriptor(f: number): number | undefined {
    const open = this.fds.get(f);
    if (open !== undefined) return open;
    const file = this.files.get(f)!;
    const path = asBuffer(file.path);
    let fd: number | undefined;
    for (;;) {
      const stage = this.states.claim(f);
      if (stage === Stage.creating) {
        this.states.awaitCreation(f);
        continue;
      }
      try {
        if (stage === Stage.absent) {
          fd = this.create(f, path, file);
        } else if (stage === Stage.created) {
          fd = reopenFile(this.job.target, path);
        }
      } catch (err) {
        this.fail(f, problem(err));
      }
      break;
    }
    if (fd === undefined) return undefined;
    if (this.fds.size >= MAX_OPEN) {
      const [oldest, oldFd] = this.fds.entries().next().value!;
      closeSync(oldFd);
      this.fds.delete(oldest);
    }
    this.fds.set(f, fd);
    return fd;
  }

  private create(f: number, path: Buffer, file: FileTarget): number | undefined {
    let fd: number;
    try {
      fd = createFile(this.job.target, path, this.job.overwrite, creationMode(file.meta));
    } catch (err) {
      this.states.settle(f, Stage.refused);
      if (errorCode(err) === 'EEXIST') this.result.conflict ??= [f, 'EEXIST'];
      else this.fail(f, problem(err));
      return undefined;
    }
    try {
      // Holes: the size is set first, then only the data is written.
      if (file.sparse) ftruncateSync(fd, file.length);
    } catch (err) {
      closeSync(fd);
      throw err;
    } finally {
      this.states.settle(f, Stage.created);
    }
    return fd;
  }

  private fail(f: number, message: string): void {
    if (this.states.damage(f)) this.result.problems.push([f, message]);
  }

  /** Counts a write of file `f`; after its last, the file is completed, or removed when damaged. */
  private done(f: number): void {
    if (!this.states.wrote(f)) return;
    const fd = this.fds.get(f);
    this.fds.delete(f);
    const file = this.files.get(f)!;
    // The last write was this thread's: unless it was given up, the file is open here.
    if (fd !== undefined && !this.states.damaged(f)) {
      for (const problem of finishFile(fd, file.meta)) this.result.problems.push([f, problem]);
      this.result.restored.push(f);
      return;
    }
    if (fd !== undefined) closeSync(fd);
    if (!this.states.created(f)) return;
    try {
      restoreNative.remove(this.job.target, asBuffer(file.path));
    } catch (err) {
      this.result.problems.push([f, `not removed: ${problem(err)}`]);
    }
  }
}
