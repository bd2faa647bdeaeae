import { closeSync, constants, ftruncateSync, openSync, rmSync } from 'node:fs';
import { IntegrityError } from '../errors.js';
import { BlobScratch, decodeSealedBlob } from '../repository/repository.js';
import { createFile, writeAll, writeSparse } from './file-io.js';
import { asBuffer } from '../util/buffers.js';
import { creationMode, finishFile, type Metadata } from './metadata.js';

/** A restored file as the threads writing its content see it. */
export interface FileTarget {
  dest: Uint8Array;
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
  blobs: JobBlob[];
  /** The files the blobs go to, by file number. */
  files: [number, FileTarget][];
  /** The restore's FileStates. */
  states: SharedArrayBuffer;
  overwrite: boolean;
  /** A blob failing verification now is damage, not a garbled read to try again. */
  lastAttempt: boolean;
  /** Why the range could not be read (a missing pack): each of its blobs is damage. */
  unreadable?: string;
}

export interface JobResult {
  /** Files completed by this job: every byte written, metadata set. */
  restored: number[];
  /** What went wrong, by file number. A damaged file is reported once and removed. */
  problems: [number, string][];
  /** Blobs (indices into the job's blobs) that failed verification before the last attempt. */
  retry: number[];
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
  private readonly result: JobResult = { restored: [], problems: [], retry: [] };
  private readonly files: Map<number, FileTarget>;
  private readonly states: FileStates;
  private readonly fds = new Map<number, number>();
  private readonly bytes: Buffer;

  constructor(
    private readonly job: PackJob,
    private readonly chunkIdKey: Buffer,
  ) {
    this.files = new Map(job.files);
    this.states = new FileStates(job.states);
    this.bytes = asBuffer(job.bytes);
  }

  run(): JobResult {
    try {
      for (const [i, blob] of this.job.blobs.entries()) {
        const data = this.decode(blob, i);
        if (!data) continue;
        for (let t = 0; t < blob.targets.length; t += 2) this.write(blob.targets[t]!, blob.targets[t + 1]!, data);
      }
    } finally {
      for (const fd of this.fds.values()) closeSync(fd);
    }
    return this.result;
  }

  /** The blob's plaintext, or null when it is to be read again or is damaged (its files then are). */
  private decode(blob: JobBlob, i: number): Buffer | null {
    if (blob.zero) return Buffer.alloc(blob.rawLength);
    const id = Buffer.from(blob.id);
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
    for (let t = 0; t < blob.targets.length; t += 2) {
      this.fail(blob.targets[t]!, message);
      this.done(blob.targets[t]!);
    }
    return null;
  }

  private write(f: number, position: number, data: Buffer): void {
    const fd = this.states.damaged(f) ? undefined : this.descriptor(f);
    if (fd !== undefined) {
      try {
        if (this.files.get(f)!.sparse) writeSparse(fd, data, position);
        else writeAll(fd, data, position);
      } catch (err) {
        this.fail(f, (err as NodeJS.ErrnoException).code ?? String(err));
      }
    }
    this.done(f);
  }

  /** An open descriptor of file `f`, created by whichever thread gets to it first; undefined if it cannot be. */
  private descriptor(f: number): number | undefined {
    const open = this.fds.get(f);
    if (open !== undefined) return open;
    const file = this.files.get(f)!;
    const dest = Buffer.from(file.dest);
    let fd: number | undefined;
    for (;;) {
      const stage = this.states.claim(f);
      if (stage === Stage.creating) {
        this.states.awaitCreation(f);
        continue;
      }
      try {
        if (stage === Stage.absent) {
          fd = this.create(f, dest, file);
        } else if (stage === Stage.created) {
          fd = openSync(dest, constants.O_WRONLY);
        }
      } catch (err) {
        this.fail(f, (err as NodeJS.ErrnoException).code ?? String(err));
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

  private create(f: number, dest: Buffer, file: FileTarget): number | undefined {
    let fd: number;
    try {
      fd = createFile(dest, this.job.overwrite, creationMode(file.meta));
    } catch (err) {
      this.states.settle(f, Stage.refused);
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === 'EEXIST') this.result.conflict ??= [f, code];
      else this.fail(f, code);
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
    const dest = Buffer.from(file.dest);
    // The last write was this thread's: unless it was given up, the file is open here.
    if (fd !== undefined && !this.states.damaged(f)) {
      for (const problem of finishFile(fd, file.meta)) this.result.problems.push([f, problem]);
      this.result.restored.push(f);
      return;
    }
    if (fd !== undefined) closeSync(fd);
    if (this.states.created(f)) rmSync(dest, { force: true });
  }
}
