import { closeSync, fdatasync, openSync, promises as fs, read, writev } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describeError, ScrateError } from '../../errors.js';
import { TAG_BYTES } from '../../crypto/primitives.js';
import { syncPath } from './state.js';
import {
  encodeSegmentHeader, openRecord, parseRecordHead, parseSegmentHeader, RECORD_HEADER_BYTES, RecordKind, recordBytes,
  sealRecord, SEGMENT_HEADER_BYTES, segmentKey, type RecordHead,
} from './segment.js';

const writevAsync = promisify(writev);
const readAsync = promisify(read);
const fdatasyncAsync = promisify(fdatasync);

/** Decrypted payloads kept for reads of recently written or read records. */
const RECORD_CACHE_BYTES = 16 * 1024 * 1024;

/** A record's segment was freed while a reader held a reference to it: the reader starts over. */
export class RecordGone extends Error {}

export interface AppendItem extends RecordHead {
  payload: Buffer | null;
}

export interface Placed {
  seg: number;
  pos: number;
}

/** Where a record is and how long its payload is. */
export interface RecordRef extends Placed {
  len: number;
}

class Segment {
  /** Records written since the last fdatasync. */
  unsynced = false;
  private users = 0;
  private retired = false;
  private closed = false;

  constructor(
    readonly number: number,
    readonly file: string,
    private readonly fd: number,
    readonly key: Buffer | null,
    /** Bytes in the file (or reserved for writes under way). */
    public end: number,
  ) {}

  /** Runs `fn` with the file open; a freed segment's descriptor closes when its last user is done. */
  async use<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    if (this.closed) throw new RecordGone();
    this.users++;
    try {
      return await fn(this.fd);
    } finally {
      if (--this.users === 0 && this.retired) this.close();
    }
  }

  retire(): void {
    this.retired = true;
    if (this.users === 0) this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

class RecordCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  get(key: string): Buffer | undefined {
    const b = this.entries.get(key);
    if (b) {
      this.entries.delete(key);
      this.entries.set(key, b);
    }
    return b;
  }

  set(key: string, b: Buffer): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, b);
    this.bytes += b.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= RECORD_CACHE_BYTES) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}

async function writeAll(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  for (;;) {
    let { bytesWritten } = await writevAsync(fd, bufs, pos);
    pos += bytesWritten;
    while (bufs.length > 0 && bytesWritten >= bufs[0].length) bytesWritten -= bufs.shift()!.length;
    if (bufs.length === 0) return;
    bufs[0] = bufs[0].subarray(bytesWritten);
  }
}

async function readAll(fd: number, buf: Buffer, pos: number): Promise<void> {
  for (let got = 0; got < buf.length; ) {
    const { bytesRead } = await readAsync(fd, buf, got, buf.length - got, pos + got);
    if (bytesRead === 0) throw new Error('short read');
    got += bytesRead;
  }
}

function refKey(seg: number, pos: number): string {
  return `${seg}:${pos}`;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface LogOptions {
  /** The log directory (segments `<n>.seg`). */
  dir: string;
  key: Buffer;
  volumeId: string;
  session: string;
  segmentBytes: number;
  /** Segments below it were freed. */
  logStart: number;
  /** Whether a replayed record fits the volume; a record that does not ends its segment. */
  fits(head: RecordHead): boolean;
  onRecord(head: RecordHead, at: Placed): void;
}

/**
 * The append-only log: segments `<n>.seg` in one directory. Positions are handed out
 * synchronously, so records lie in the order of their seqs; each call's records go to the file in
 * one writev per segment. A process only appends to segments it created.
 */
export class Log {
  private readonly segments = new Map<number, Segment>();
  private current: Segment | null = null;
  private dirChanged = false;
  private readonly inflight = new Set<Promise<void>>();
  /** Payloads whose writev is still under way: reads take them from here. */
  private readonly unwritten = new Map<string, Buffer>();
  private readonly cache = new RecordCache();
  private failure: ScrateError | null = null;
  private round: Promise<void> | null = null;
  private nextRound: Deferred | null = null;
  /** fdatasync rounds so far (each syncs every segment written since the previous one). */
  syncCount = 0;
  /** Bytes of all segment files. */
  bytes = 0;
  replayedRecords = 0;
  maxReplayedSeq = 0;

  private constructor(
    private readonly opts: LogOptions,
    private nextNumber: number,
  ) {}

  static async open(opts: LogOptions): Promise<Log> {
    await fs.mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const numbers: number[] = [];
    for (const name of await fs.readdir(opts.dir)) {
      const m = /^(\d{1,15})\.seg$/.exec(name);
      if (m) numbers.push(Number(m[1]));
    }
    numbers.sort((a, b) => a - b);
    const log = new Log(opts, Math.max(opts.logStart, (numbers.at(-1) ?? -1) + 1));
    for (const n of numbers) {
      const file = path.join(opts.dir, `${n}.seg`);
      // Below logStart: freed by a checkpoint whose unlink a crash undid.
      if (n < opts.logStart) await fs.rm(file, { force: true });
      else await log.replaySegment(n, file);
    }
    // What an earlier process wrote without a sync becomes what this one serves: it must be as durable as what this one syncs.
    await Promise.all([...log.segments.values()].map((s) => s.use((fd) => fdatasyncAsync(fd))));
    await syncPath(opts.dir);
    return log;
  }

  /** Adopts a segment an earlier process wrote: every record up to the first that fails is applied. */
  private async replaySegment(number: number, file: string): Promise<void> {
    const buf = await fs.readFile(file);
    const header = parseSegmentHeader(buf, file);
    if (header && header.volumeId !== this.opts.volumeId) {
      throw new ScrateError(`volume cache segment ${file} belongs to volume ${header.volumeId}, not ${this.opts.volumeId}`, undefined, 'is --cache-dir shared with another volume?');
    }
    if (header && header.number !== number) throw new ScrateError(`volume cache segment ${file} claims to be segment ${header.number}`);
    const key = header ? segmentKey(this.opts.key, buf) : null;
    const seg = new Segment(number, file, openSync(file, 'r'), key, buf.length);
    this.segments.set(number, seg);
    this.bytes += buf.length;
    if (!key) return;
    const scratch = Buffer.allocUnsafe(65536);
    let out = scratch;
    for (let at = SEGMENT_HEADER_BYTES; ; ) {
      const head = parseRecordHead(buf, at);
      if (!head || at + RECORD_HEADER_BYTES + head.sealed > buf.length || !this.opts.fits(head)) break;
      const plain = head.sealed - TAG_BYTES;
      if (out.length < plain) out = Buffer.allocUnsafe(plain);
      if (!openRecord(key, at, buf, at, head.sealed, out.subarray(0, plain))) break;
      this.opts.onRecord(head, { seg: number, pos: at });
      this.replayedRecords++;
      this.maxReplayedSeq = Math.max(this.maxReplayedSeq, head.seq);
      at += RECORD_HEADER_BYTES + head.sealed;
    }
  }

  /** The first error of a write or fdatasync: after it the log cannot promise anything, so it takes nothing more. */
  get failed(): ScrateError | null {
    return this.failure;
  }

  get currentSegment(): number | null {
    return this.current?.number ?? null;
  }

  /** The number the next new segment gets: every segment now is below it. */
  get nextSegment(): number {
    return this.nextNumber;
  }

  /** Whether a record of `size` bytes fits in a segment of `segmentBytes`. */
  static recordFits(size: number, segmentBytes: number): boolean {
    return SEGMENT_HEADER_BYTES + size <= segmentBytes;
  }

  /**
   * Places the records (positions and sealing happen now, in order) and writes them; the promise
   * settles when the writes are in the file (page cache). Throws at once when the log failed.
   */
  append(items: AppendItem[]): { placed: Placed[]; done: Promise<void> } {
    if (this.failure) throw this.failure;
    const writes = new Map<Segment, { pos: number; bufs: Buffer[]; keys: string[] }>();
    const placed: Placed[] = [];
    for (const item of items) {
      const size = recordBytes(item.kind, item.length);
      if (!this.current || this.current.end + size > this.opts.segmentBytes) this.startSegment(writes);
      const seg = this.current!;
      const pos = seg.end;
      seg.end += size;
      this.bytes += size;
      let w = writes.get(seg);
      if (!w) writes.set(seg, (w = { pos, bufs: [], keys: [] }));
      w.bufs.push(sealRecord(seg.key!, pos, item, item.payload));
      if (item.payload) {
        const k = refKey(seg.number, pos);
        this.unwritten.set(k, item.payload);
        w.keys.push(k);
      }
      placed.push({ seg: seg.number, pos });
    }
    const done = Promise.all(
      [...writes].map(([seg, w]) =>
        seg.use((fd) => writeAll(fd, w.bufs, w.pos)).then(
          () => {
            seg.unsynced = true;
            for (const k of w.keys) {
              this.cache.set(k, this.unwritten.get(k)!);
              this.unwritten.delete(k);
            }
          },
          (err) => {
            this.failure ??= new ScrateError(`volume cache ${seg.file}: cannot write: ${describeError(err)}`);
            throw this.failure;
          },
        ),
      ),
    ).then(() => undefined);
    this.inflight.add(done);
    const forget = () => void this.inflight.delete(done);
    done.then(forget, forget);
    return { placed, done };
  }

  private startSegment(writes: Map<Segment, { pos: number; bufs: Buffer[]; keys: string[] }>): void {
    const number = this.nextNumber++;
    const file = path.join(this.opts.dir, `${number}.seg`);
    const header = encodeSegmentHeader({ number, volumeId: this.opts.volumeId, session: this.opts.session });
    const seg = new Segment(number, file, openSync(file, 'wx+', 0o600), segmentKey(this.opts.key, header), SEGMENT_HEADER_BYTES);
    this.segments.set(number, seg);
    this.bytes += SEGMENT_HEADER_BYTES;
    this.current = seg;
    this.dirChanged = true;
    writes.set(seg, { pos: 0, bufs: [header], keys: [] });
  }

  /** A data record's payload (decrypted, shared: do not change it). */
  async read(ref: RecordRef): Promise<Buffer> {
    const k = refKey(ref.seg, ref.pos);
    const known = this.unwritten.get(k) ?? this.cache.get(k);
    if (known) return known;
    const seg = this.segments.get(ref.seg);
    if (!seg?.key) throw new RecordGone();
    const buf = Buffer.allocUnsafe(recordBytes(RecordKind.write, ref.len));
    await seg.use((fd) => readAll(fd, buf, ref.pos));
    const head = parseRecordHead(buf, 0);
    const out = Buffer.allocUnsafe(ref.len);
    if (!head || head.length !== ref.len || !openRecord(seg.key, ref.pos, buf, 0, head.sealed, out)) {
      throw new ScrateError(`volume cache ${seg.file}: the record at ${ref.pos} is damaged`);
    }
    this.cache.set(k, out);
    return out;
  }

  /**
   * Group commit: waits for the writes already placed (a synced record must not lie after a hole
   * in its segment, or replay would stop before it), then joins an fdatasync round that starts
   * after they are in the file. Rounds run one at a time; every sync arriving during one shares
   * the next.
   */
  async sync(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    if (this.failure) throw this.failure;
    const work = this.dirChanged || [...this.segments.values()].some((s) => s.unsynced);
    if (!work) return this.round ?? undefined;
    const next = (this.nextRound ??= deferred());
    if (!this.round) void this.runRounds();
    return next.promise;
  }

  private async runRounds(): Promise<void> {
    while (this.nextRound) {
      const next = this.nextRound;
      this.nextRound = null;
      this.round = next.promise;
      try {
        await this.syncOnce();
        next.resolve();
      } catch (err) {
        next.reject(err);
      }
    }
    this.round = null;
  }

  private async syncOnce(): Promise<void> {
    const segs = [...this.segments.values()].filter((s) => s.unsynced);
    for (const s of segs) s.unsynced = false;
    const dir = this.dirChanged;
    this.dirChanged = false;
    this.syncCount++;
    try {
      await Promise.all([
        ...segs.map((s) =>
          s.use((fd) => fdatasyncAsync(fd)).catch((err) => {
            if (!(err instanceof RecordGone)) throw err;
          }),
        ),
        dir ? syncPath(this.opts.dir) : undefined,
      ]);
    } catch (err) {
      // After a failed fdatasync the kernel may have dropped the dirty pages: nothing written since the last good one can be trusted.
      this.failure ??= new ScrateError(`volume cache ${this.opts.dir}: cannot sync: ${describeError(err)}`);
      throw this.failure;
    }
  }

  /** The next record starts a new segment, so the current one can be freed. */
  endSegment(): void {
    this.current = null;
  }

  /** Deletes the segments numbered below `start` (never the one being appended to). */
  async free(start: number): Promise<void> {
    for (const seg of [...this.segments.values()]) {
      if (seg.number >= start || seg === this.current) continue;
      this.segments.delete(seg.number);
      this.bytes -= seg.end;
      seg.retire();
      await fs.rm(seg.file, { force: true });
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    await this.round?.catch(() => undefined);
    for (const seg of this.segments.values()) seg.retire();
    this.segments.clear();
    this.current = null;
  }
}
