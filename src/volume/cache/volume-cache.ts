import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ScrateError } from '../../errors.js';
import { Log, RecordGone, type AppendItem } from './log.js';
import { RecordKind, recordBytes, SEGMENT_HEADER_BYTES, type RecordHead } from './segment.js';
import { MAX_SESSIONS, readState, removeStaleTemps, writeState, type CacheState } from './state.js';
import { baseIsLocal, BlockTable, coversBlock, MAX_OVERLAYS, minSegmentOf, type BlockVersion, type DirtyBlock, type Rec } from './table.js';

export type { CacheState } from './state.js';
export type { DirtyBlock } from './table.js';

export interface CacheOptions {
  /** Created 0700 if absent; must be a local filesystem. */
  dir: string;
  /** 32 bytes, derived by the caller from the repository keys. */
  key: Buffer;
  /** 32 hex, written in segment headers and checked on replay. */
  volumeId: string;
  /** Volume size in bytes. */
  size: number;
  /** A power of two, 4 KiB … 1 MiB. */
  blockSize: number;
  /** Log size limit: writes wait while the log is above 90 % of it, until a checkpoint frees segments. */
  limitBytes: number;
  /** Default: an eighth of the limit, at most 64 MiB. */
  segmentBytes?: number;
}

/** A base that is never needed: the caller checked the block's base is local. */
const NO_BASE = (): Promise<Buffer | null> => Promise.reject(new Error('volume cache: a merge needed the repository'));
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
const PRESSURE = 0.9;

/** statfs f_type of filesystems whose fdatasync or locking cannot be trusted for a write-back log. */
const REMOTE_FILESYSTEMS = new Map<number, string>([
  [0x6969, 'NFS'],
  [0x517b, 'SMB'],
  [0xff534d42, 'CIFS'],
  [0xfe534d42, 'SMB2'],
  [0x65735546, 'FUSE'],
  [0x00c36400, 'Ceph'],
  [0x01021997, '9p'],
]);

interface Cut {
  seq: number;
  versions: Map<number, BlockVersion>;
}

interface Waiter {
  run: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function checkOptions(opts: CacheOptions): number {
  const { key, volumeId, size, blockSize, limitBytes } = opts;
  if (key.length !== 32) throw new RangeError('volume cache: the key must be 32 bytes');
  if (!/^[0-9a-f]{32}$/.test(volumeId)) throw new RangeError('volume cache: the volume ID must be 32 hex digits');
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError('volume cache: bad volume size');
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError('volume cache: the block size must be a power of two from 4 KiB to 1 MiB');
  }
  const minSegment = SEGMENT_HEADER_BYTES + recordBytes(RecordKind.write, blockSize);
  const segmentBytes = opts.segmentBytes ?? Math.max(minSegment, Math.min(MAX_SEGMENT_BYTES, Math.floor(limitBytes / 8)));
  if (!Number.isSafeInteger(segmentBytes) || !Log.recordFits(recordBytes(RecordKind.write, blockSize), segmentBytes) || segmentBytes > 2 ** 40) {
    throw new RangeError(`volume cache: a segment must hold at least one block record (${minSegment} bytes)`);
  }
  // Below two segments the open one alone could hold the log above the limit for good.
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 2 * segmentBytes) throw new RangeError('volume cache: the size limit must be at least two segments');
  return segmentBytes;
}

async function checkLocal(dir: string): Promise<void> {
  const { type } = await fs.statfs(dir);
  const kind = REMOTE_FILESYSTEMS.get(type);
  if (kind) throw new ScrateError(`the volume cache ${dir} is on ${kind}; it must be on a local filesystem`, undefined, 'choose another --cache-dir');
}

/**
 * The local write-back cache of a volume (docs: design of issue 25, §2): an encrypted, append-only
 * log of block writes and an in-memory table of the blocks it holds that are not yet uploaded.
 *
 * Concurrency: write/zero may be called concurrently, their effects are in call order; reads
 * (readBlock, materialize) at any time; sync at any time; checkpoints run one after another.
 */
export class VolumeCache {
  private readonly table: BlockTable;
  private seq: number;
  private readonly waiting: Waiter[] = [];
  private readonly cuts = new Set<Cut>();
  /** Records markClean dropped: kept until a checkpoint says the repository state that holds them is durable. */
  private readonly retired: { clean: number; seg: number }[] = [];
  private cleans = 0;
  private readonly merges = new Map<number, Promise<void>>();
  private checkpoints: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly limit: number;

  private constructor(
    private readonly opts: CacheOptions,
    private readonly log: Log,
    table: BlockTable,
    private current: CacheState,
  ) {
    this.table = table;
    this.seq = current.nextSeq - 1;
    this.limit = opts.limitBytes * PRESSURE;
  }

  /** Opens the cache in `opts.dir`: a new one, or the replay of what an earlier process left. */
  static async open(opts: CacheOptions): Promise<VolumeCache> {
    const segmentBytes = checkOptions(opts);
    await fs.mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await checkLocal(opts.dir);
    const previous = await readState(opts.dir);
    if (previous && previous.volume !== opts.volumeId) {
      throw new ScrateError(`the volume cache ${opts.dir} belongs to volume ${previous.volume}, not ${opts.volumeId}`);
    }
    await removeStaleTemps(opts.dir);
    const session = randomBytes(8).toString('hex');
    const { size, blockSize } = opts;
    const blockLength = (block: number) => Math.min(blockSize, size - block * blockSize);
    const table = new BlockTable(blockLength);
    const fits = (h: RecordHead) => h.offset + h.length <= size && Math.floor(h.offset / blockSize) === Math.floor((h.offset + h.length - 1) / blockSize);
    const log = await Log.open({
      dir: path.join(opts.dir, 'log'),
      key: opts.key,
      volumeId: opts.volumeId,
      session,
      segmentBytes,
      logStart: previous?.logStart ?? 0,
      fits,
      onRecord(head, at) {
        const block = Math.floor(head.offset / blockSize);
        table.apply(block, { seq: head.seq, ...at, at: head.offset - block * blockSize, len: head.length, zero: head.kind === RecordKind.zero }, 0);
      },
    });
    // Seqs go on above everything handed out before, even records a crash lost: the repository may know them.
    const lastSeq = Math.max(log.maxReplayedSeq, (previous?.nextSeq ?? 1) - 1, previous?.baseSeq ?? 0);
    const state: CacheState = {
      volume: opts.volumeId,
      session,
      sessions: [...(previous?.sessions ?? []), session].slice(-MAX_SESSIONS),
      baseSeq: previous?.baseSeq ?? 0,
      logStart: previous?.logStart ?? 0,
      nextSeq: lastSeq + 1,
    };
    // The session is on disk before anything it writes, so a record written by it is known as ours after a crash.
    await writeState(opts.dir, state);
    const cache = new VolumeCache(opts, log, table, state);
    for (const d of table.quiet()) cache.maybeMerge(d.block);
    return cache;
  }

  get state(): CacheState {
    return this.current;
  }

  get session(): string {
    return this.current.session;
  }

  get replayedRecords(): number {
    return this.log.replayedRecords;
  }

  get dirtyCount(): number {
    return this.table.size;
  }

  get dirtyBytes(): number {
    return this.table.bytes;
  }

  get logBytes(): number {
    return this.log.bytes;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** fdatasync rounds so far. */
  get syncCount(): number {
    return this.log.syncCount;
  }

  /** markClean calls that dropped records so far: read it when the map state to persist is fixed, pass it to checkpoint. */
  get cleanCount(): number {
    return this.cleans;
  }

  /** Writes waiting for log space. */
  get waitingWrites(): number {
    return this.waiting.length;
  }

  private blockLength(block: number): number {
    return Math.min(this.opts.blockSize, this.opts.size - block * this.opts.blockSize);
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.opts.size) {
      throw new RangeError(`volume cache: ${length} bytes at ${offset} are outside the volume`);
    }
  }

  /**
   * Logs `data` at `offset`: one record per block it touches, seqs taken now (so overlapping writes
   * take effect in call order), one writev. Resolves when the records are in the file; `data` is
   * copied, the caller may reuse it at once. Waits first while the log is over 90 % of its limit.
   */
  write(offset: number, data: Buffer): Promise<void> {
    this.checkRange(offset, data.length);
    if (data.length === 0) return Promise.resolve();
    return this.admit(() => this.append(offset, data.length, data));
  }

  /** TRIM and WRITE_ZEROES: records without payload; the range reads as zeros afterwards. */
  zero(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    if (length === 0) return Promise.resolve();
    return this.admit(() => this.append(offset, length, null));
  }

  /** Resolves after an fdatasync covering every write that resolved before the call (group commit). */
  sync(): Promise<void> {
    return this.log.sync();
  }

  private pressed(): boolean {
    return this.log.bytes > this.limit;
  }

  /** Runs a write now, or queues it (first in, first out) behind earlier ones waiting for space. */
  private admit(run: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new ScrateError('the volume cache is closed'));
    if (this.waiting.length === 0 && !this.pressed()) return this.start(run);
    return new Promise((resolve, reject) => this.waiting.push({ run, resolve, reject }));
  }

  private start(run: () => Promise<void>): Promise<void> {
    try {
      return run();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && !this.pressed()) {
      const w = this.waiting.shift()!;
      this.start(w.run).then(w.resolve, w.reject);
    }
  }

  private append(offset: number, length: number, data: Buffer | null): Promise<void> {
    const { blockSize } = this.opts;
    const items: AppendItem[] = [];
    if (this.log.failed) throw this.log.failed;
    for (let o = offset, end = offset + length; o < end; ) {
      const block = Math.floor(o / blockSize);
      const n = Math.min(this.blockLength(block) - (o - block * blockSize), end - o);
      const payload = data ? Buffer.from(data.subarray(o - offset, o - offset + n)) : null;
      items.push({ seq: ++this.seq, kind: data ? RecordKind.write : RecordKind.zero, offset: o, length: n, payload });
      o += n;
    }
    const { placed, done } = this.log.append(items);
    const now = Date.now();
    items.forEach((item, i) => {
      const block = Math.floor(item.offset / blockSize);
      this.table.apply(block, { seq: item.seq, ...placed[i], at: item.offset - block * blockSize, len: item.length, zero: !data }, now);
      this.maybeMerge(block);
    });
    return done;
  }

  /** Too many overlays over a local base become one full record (bounded memory and read cost). */
  private maybeMerge(block: number): void {
    const s = this.table.get(block);
    if (!s || s.overlays.length <= MAX_OVERLAYS || this.merges.has(block) || !baseIsLocal(s, this.blockLength(block))) return;
    const merge = this.merge(block).finally(() => this.merges.delete(block));
    this.merges.set(block, merge);
  }

  private async merge(block: number): Promise<void> {
    const s = this.table.get(block)!;
    const version: BlockVersion = { full: s.full, overlays: s.overlays };
    const seq = s.lastSeq;
    let data: Buffer | null;
    try {
      data = await this.compose(block, version, NO_BASE);
    } catch {
      return; // a merge only saves memory: the overlays stay as they are
    }
    // The merged record carries the seq of the newest write it holds; it is only valid if nothing came since.
    if (this.table.get(block) !== s || s.lastSeq !== seq || this.closed || this.log.failed || this.pressed()) return;
    const len = this.blockLength(block);
    const offset = block * this.opts.blockSize;
    const { placed, done } = this.log.append([{ seq, kind: data ? RecordKind.write : RecordKind.zero, offset, length: len, payload: data }]);
    this.table.merged(block, { seq, ...placed[0], at: 0, len, zero: !data });
    await done.catch(() => undefined); // the log keeps the failure and refuses what follows
  }

  /** The bytes of a version of `block` (null: all zeros); reads `base` only if the records do not cover the block. */
  private async compose(block: number, version: BlockVersion, base: () => Promise<Buffer | null>): Promise<Buffer | null> {
    const { full, overlays } = version;
    const len = this.blockLength(block);
    const payloads = await Promise.all(overlays.map((o) => (o.zero ? null : this.log.read(o))));
    let buf: Buffer | null = null;
    if (full) {
      if (!full.zero) buf = Buffer.from(await this.log.read(full));
    } else if (!coversBlock(overlays, len)) {
      const b = await base();
      if (b) {
        buf = Buffer.alloc(len);
        b.copy(buf, 0, 0, Math.min(len, b.length));
      }
    }
    overlays.forEach((o, i) => {
      const payload = payloads[i];
      if (payload) payload.copy((buf ??= Buffer.alloc(len)), o.at);
      else buf?.fill(0, o.at, o.at + o.len);
    });
    return buf;
  }

  /** The live content of a held block, with the seq it is as of; starts over if a record was freed meanwhile. */
  private async live(block: number, base: () => Promise<Buffer | null>): Promise<{ data: Buffer | null; seq: number }> {
    for (let attempt = 0; ; attempt++) {
      const s = this.table.get(block);
      if (!s) return { data: await base(), seq: this.seq };
      const version: BlockVersion = { full: s.full, overlays: s.overlays };
      const seq = s.lastSeq;
      try {
        return { data: await this.compose(block, version, base), seq };
      } catch (err) {
        if (!(err instanceof RecordGone) || attempt >= 3) throw err;
      }
    }
  }

  /** Whether the table has state for this block (its bytes are not just the repository's). */
  holds(block: number): boolean {
    return this.table.get(block) !== undefined;
  }

  /** The block's current bytes (null: all zeros); `base()` gives the repository's bytes and is only called when needed. */
  async readBlock(block: number, base: () => Promise<Buffer | null>): Promise<Buffer | null> {
    return (await this.live(block, base)).data;
  }

  /** The blocks of [from, to) the table holds, in order: what reads take from the cache rather than the repository. */
  heldBetween(from: number, to: number): number[] {
    return this.table.heldBetween(from, to);
  }

  /** Whether the block's content now is a zero record alone (TRIM, WRITE_ZEROES over the whole block). */
  zeroed(block: number): boolean {
    const s = this.table.get(block);
    return !!s?.full?.zero && s.overlays.length === 0;
  }

  /** Dirty blocks, least recently written first (cheap to iterate from the start and stop early). */
  quietBlocks(): Iterable<DirtyBlock> {
    return this.table.quiet();
  }

  /** The seq of the block's newest write the cache holds, if it holds the block. */
  newestSeq(block: number): number | undefined {
    return this.table.get(block)?.lastSeq;
  }

  /** Dirty blocks, oldest firstSeq first. */
  dirtyBlocks(): Iterable<DirtyBlock> {
    return this.table.dirty();
  }

  /**
   * The block's content as of `upToSeq` and the seq it covers. Without `upToSeq`, or with one at or
   * above the block's last write: the current content. Otherwise `upToSeq` must be the seq of a
   * freeze() not yet released (older versions of a block are not kept otherwise).
   */
  async materialize(block: number, base: () => Promise<Buffer | null>, upToSeq?: number): Promise<{ data: Buffer | null; seq: number }> {
    if (upToSeq !== undefined) {
      const cut = [...this.cuts].find((c) => c.seq === upToSeq);
      if (cut) {
        const version = cut.versions.get(block);
        return { data: version ? await this.compose(block, version, base) : await base(), seq: upToSeq };
      }
      const s = this.table.get(block);
      if (s && s.lastSeq > upToSeq) throw new Error(`volume cache: block ${block} has no version as of seq ${upToSeq}`);
    }
    return this.live(block, base);
  }

  /**
   * The content as of `seq` is stored in the repository map: records up to it are not needed any
   * more (once a checkpoint says the map is durable); the block leaves the table unless it was
   * written after `seq`.
   */
  markClean(block: number, seq: number): void {
    const dropped = this.table.clean(block, seq);
    if (dropped.length === 0) return;
    this.cleans++;
    this.retired.push({ clean: this.cleans, seg: Math.min(...dropped.map((r: Rec) => r.seg)) });
  }

  /** A commit cut at the current lastSeq: the versions of the dirty blocks stay readable by materialize(…, seq) until release(). */
  freeze(): { seq: number; blocks: number[]; release(): void } {
    const versions = new Map<number, BlockVersion>();
    for (const { block } of this.table.dirty()) {
      const s = this.table.get(block)!;
      versions.set(block, { full: s.full, overlays: s.overlays });
    }
    const cut: Cut = { seq: this.seq, versions };
    this.cuts.add(cut);
    return { seq: cut.seq, blocks: [...versions.keys()], release: () => void this.cuts.delete(cut) };
  }

  /**
   * Persists the state (`baseSeq`: the seq the repository's latest volume record covers) and deletes
   * the segments before the first one holding a record still needed: by a dirty block, a frozen
   * cut, or a markClean after `cleansPersisted` (default: every markClean so far is in the
   * persisted map — right when no markClean ran between the map's persist and this call).
   */
  checkpoint(baseSeq: number, cleansPersisted = this.cleans): Promise<void> {
    const run = this.checkpoints.then(() => this.runCheckpoint(baseSeq, cleansPersisted)).catch((err) => {
      // A failed log frees nothing again: writes waiting for space would wait for ever.
      if (this.log.failed) for (const w of this.waiting.splice(0)) w.reject(this.log.failed);
      throw err;
    });
    this.checkpoints = run.catch(() => undefined);
    return run;
  }

  private async runCheckpoint(baseSeq: number, cleansPersisted: number): Promise<void> {
    let kept = 0;
    while (kept < this.retired.length && this.retired[kept].clean <= cleansPersisted) kept++;
    this.retired.splice(0, kept);
    let start = this.table.minSegment();
    for (const r of this.retired) start = Math.min(start, r.seg);
    for (const cut of this.cuts) for (const v of cut.versions.values()) start = Math.min(start, minSegmentOf(v));
    const current = this.log.currentSegment;
    if (current !== null && start > current) this.log.endSegment();
    if (start === Infinity) start = this.log.nextSegment;
    // What replaces a freed record (a newer write, a merge) must be durable before the old one goes.
    await this.log.sync();
    const state: CacheState = { ...this.current, baseSeq, logStart: Math.max(start, this.current.logStart), nextSeq: this.seq + 1 };
    await writeState(this.opts.dir, state);
    this.current = state;
    await this.log.free(state.logStart);
    this.admitWaiting();
  }

  /** Refuses further writes, finishes the ones under way, syncs and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new ScrateError('the volume cache is closed'));
    await this.checkpoints;
    await Promise.allSettled([...this.merges.values()]);
    try {
      if (!this.log.failed) await this.log.sync();
    } finally {
      await this.log.close();
    }
  }
}
