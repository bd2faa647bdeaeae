import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { BlockMapRef, MutableBlockMap } from '../tree/block-map.js';
import { isZero } from '../util/zeros.js';
import type { VolumeCache } from './cache/volume-cache.js';
import { mapNodeSaver } from './head.js';
import type { StoredBlocks } from './stored-blocks.js';

/** Where the uploader records what it stored: the volume's head record, and commit snapshots. */
export interface HeadWriter {
  /** Saves a head record naming `map` (and `commit`, the snapshot just made, if any); returns its sequence number. */
  saveHead(map: BlockMapRef, commit?: string): Promise<number>;
  /** Saves a commit snapshot of `map`; returns its ID. */
  saveCommit(map: BlockMapRef, tags: readonly string[]): Promise<string>;
  /** Renews the lock's start at `t0`, once every block claimed before it is in a saved head. */
  restartLock(t0: Date): Promise<void>;
}

export interface UploaderOptions {
  /** A block is uploaded once it was not written for this long (rewrites in between cost nothing). */
  writeDelayMs: number;
  /** How often uploaded blocks are recorded in a head (which frees the cache's log). */
  checkpointMs: number;
  /** Cache log size above which uploads and checkpoints no longer wait. */
  urgentLogBytes: number;
  /** Blocks materialized and stored at once. */
  parallel: number;
  /** Told the live map's count of present blocks after each change to it. */
  onMapped: (blocks: number) => void;
  onWarning: (message: string) => void;
}

interface Stored {
  block: number;
  id: Buffer | null;
  seq: number;
  bytes: number;
}

/** A head is recorded at least after this many bytes are uploaded, whatever the timer says. */
const CHECKPOINT_BYTES = 1 << 30;
/** After a failure (S3 down), uploads are tried again this long later, for as long as it takes: data is never dropped. */
const RETRY_MS = 5000;

/**
 * Moves blocks from the write-back cache into the repository, in one loop, so that a map
 * update, a checkpoint and a commit never overlap: a dirty block is materialized (cache
 * records over its stored base), stored as a data blob (or dropped from the map when it is
 * zeros) and remembered as `Stored`; a checkpoint flushes the packs, puts those blocks in the
 * live map, persists it, records the head and only then lets the cache forget the records.
 * The live map only ever names flushed blobs, so a read's base is always loadable.
 */
export class Uploader {
  private stored: Stored[] = [];
  private storedBytes = 0;
  /** The newest seq of each block stored (not yet checkpointed, or since). */
  private readonly storedSeq = new Map<number, number>();
  private lastCheckpoint = Date.now();
  private lastRef: BlockMapRef;
  private readonly commits: { tags: readonly string[]; resolve: (id: string) => void; reject: (err: unknown) => void }[] = [];
  private draining = false;
  private stopped = false;
  /** The live map was persisted as lastRef and no head names it yet. */
  private headOwed = false;
  private lastIndexRefresh = Date.now();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly repo: Repository,
    private readonly cache: VolumeCache,
    private readonly map: MutableBlockMap,
    private readonly blocks: StoredBlocks,
    private readonly head: HeadWriter,
    ref: BlockMapRef,
    private headSeq: number,
    private readonly opts: UploaderOptions,
  ) {
    this.lastRef = ref;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Something changed: look again now rather than at the next tick. */
  poke(): void {
    this.wake?.();
  }

  /** A commit of the volume as it is now (writes made later are not in it); resolves with its snapshot ID. */
  commit(tags: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      this.commits.push({ tags, resolve, reject });
      this.poke();
    });
  }

  /** Uploads everything the cache holds, records a last head and stops. */
  async drain(): Promise<void> {
    this.draining = true;
    this.poke();
    await this.loop;
  }

  /** Ends the loop after what it is doing, uploading nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.loop;
    for (const c of this.commits.splice(0)) c.reject(new Error('the volume is no longer served'));
  }

  /** Dirty blocks whose newest writes are not stored yet. */
  get backlog(): number {
    let n = 0;
    for (const d of this.cache.quietBlocks()) if ((this.storedSeq.get(d.block) ?? -1) < d.lastSeq) n++;
    return n;
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      try {
        const commit = this.commits.shift();
        if (commit) {
          await this.makeCommit(commit.tags).then(commit.resolve, commit.reject);
          continue;
        }
        await this.refreshIndex();
        const due = this.eligible();
        if (due.length) await this.store(due);
        if (this.checkpointDue(due.length === 0)) await this.checkpoint();
        if (this.draining && due.length === 0 && this.stored.length === 0 && this.backlog === 0) return;
        if (due.length === 0) await this.sleep(this.draining ? 0 : 250);
        this.failure = undefined;
      } catch (err) {
        if (this.failure === undefined) this.opts.onWarning(`volume upload failed, retrying every ${RETRY_MS / 1000} s: ${(err as Error).message}`);
        this.failure = err;
        await this.sleep(RETRY_MS);
      }
    }
  }

  private warned = new Set<string>();

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.opts.onWarning(message);
  }

  /**
   * New index files now and then, uploads or not: a prune's repacks, so reads find their new
   * packs before the old ones are deleted (which waits for this serve's next head).
   */
  private async refreshIndex(): Promise<void> {
    if (Date.now() - this.lastIndexRefresh < this.opts.checkpointMs) return;
    this.lastIndexRefresh = Date.now();
    await this.repo.loadNewIndexFiles((m) => this.opts.onWarning(m));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = undefined;
    });
  }

  private urgent(): boolean {
    return this.draining || this.cache.logBytes > this.opts.urgentLogBytes;
  }

  /**
   * Blocks to store now: not stored as of their newest write, and left alone long enough (or no
   * time to wait). Least recently written first, so the walk stops at the first block written
   * too recently.
   */
  private eligible(): number[] {
    const now = Date.now();
    const urgent = this.urgent();
    const out: number[] = [];
    for (const d of this.cache.quietBlocks()) {
      if (!urgent && now - d.lastWrite < this.opts.writeDelayMs) break;
      if ((this.storedSeq.get(d.block) ?? -1) >= d.lastSeq) continue;
      out.push(d.block);
      if (out.length >= 256) break;
    }
    return out;
  }

  private async store(blocks: number[]): Promise<void> {
    for (const s of await this.prepareAll(blocks, (block) => this.cache.materialize(block, () => this.blocks.read(this.map, block)))) {
      this.stored.push(s);
      this.storedBytes += s.bytes;
      this.storedSeq.set(s.block, s.seq);
    }
  }

  /**
   * Materializes blocks, `parallel` at once (reads of bases overlap), and stores them in block
   * order: a pack then holds runs of neighbouring blocks, which a later cold read fetches with
   * one ranged GET. Their map entries are for the caller to set.
   */
  private async prepareAll(blocks: readonly number[], materialize: (block: number) => Promise<{ data: Buffer | null; seq: number }>): Promise<Stored[]> {
    const sorted = [...blocks].sort((a, b) => a - b);
    const contents = new Array<{ data: Buffer | null; seq: number } | undefined>(sorted.length);
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < sorted.length) {
        const k = next++;
        // One block whose stored base cannot be read (damage, a pack gone) stays dirty for a later round; the others go on.
        contents[k] = await materialize(sorted[k]!).catch((err: unknown) => {
          failure ??= err;
          return undefined;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.parallel, sorted.length) }, worker));
    const out: Stored[] = [];
    for (let k = 0; k < sorted.length; k++) {
      const content = contents[k];
      if (!content) continue;
      out.push({ block: sorted[k]!, id: await this.save(content.data), seq: content.seq, bytes: content.data?.length ?? 0 });
    }
    if (failure) this.warnOnce(`volume block not uploaded yet: ${(failure as Error).message}`);
    return out;
  }

  private async save(data: Buffer | null): Promise<Buffer | null> {
    if (!data || isZero(data)) return null;
    return (await this.repo.saveBlob(BlobType.data, data)).id;
  }

  private checkpointDue(idle: boolean): boolean {
    if (this.stored.length === 0) return false;
    if (this.draining || this.urgent() || this.storedBytes >= CHECKPOINT_BYTES) return idle || this.storedBytes >= CHECKPOINT_BYTES || this.urgent();
    return Date.now() - this.lastCheckpoint >= this.opts.checkpointMs;
  }

  /** Flushes stored blocks into packs and puts them in the live map: from here, reads may load them. */
  private async settle(): Promise<void> {
    await this.repo.flush();
    for (const s of this.stored) await this.map.set(s.block, s.id);
    if (this.stored.length) this.opts.onMapped(await this.map.allocatedBlocks());
  }

  private async persist(map: MutableBlockMap): Promise<BlockMapRef> {
    const ref = await map.persist(mapNodeSaver(this.repo));
    await this.repo.flush();
    return ref;
  }

  /** Records the live map in a head; then the cache may forget every record it covers. */
  private async checkpoint(commit?: string): Promise<void> {
    // From t0 this serve is like a writer that started then (Lock.restart): it must know every
    // mark a prune made before t0, so that nothing stored from here on refers to a marked pack.
    const t0 = new Date();
    await this.repo.loadNewIndexFiles((m) => this.opts.onWarning(m));
    this.lastIndexRefresh = t0.getTime();
    await this.settle();
    // Blocks stored as they already were leave the head as it is: the one recorded covers them.
    if (this.map.changed) {
      this.lastRef = await this.persist(this.map);
      // What is persisted is loaded again when a change reaches it: a serve of weeks holds only what changed since.
      this.map.unload();
      // Owed until a head names it, whatever fails in between: the log is not freed past an unrecorded map.
      this.headOwed = true;
    }
    if (this.headOwed || commit) {
      this.headSeq = await this.head.saveHead(this.lastRef, commit);
      this.headOwed = false;
      await this.head.restartLock(t0);
    }
    const seq = this.headSeq;
    for (const s of this.stored) this.cache.markClean(s.block, s.seq);
    this.stored = [];
    this.storedBytes = 0;
    for (const block of this.storedSeq.keys()) if (!this.cache.holds(block)) this.storedSeq.delete(block);
    await this.cache.checkpoint(seq);
    this.lastCheckpoint = Date.now();
  }

  /**
   * A cut at the cache's newest write: the live map (with every stored block) forks, each block
   * dirty at the cut is stored as of the cut into the fork, and the fork becomes the commit.
   * Writes go on meanwhile; the cut's records stay in the log until it is released.
   */
  private async makeCommit(tags: readonly string[]): Promise<string> {
    const cut = this.cache.freeze();
    try {
      await this.settle();
      const fork = this.map.fork();
      const atCut = await this.prepareAll(cut.blocks, (block) => this.cache.materialize(block, () => this.blocks.read(fork, block), cut.seq));
      for (const s of atCut) {
        await fork.set(s.block, s.id);
        // Not written since the cut: stored for the live map too, not again by the next upload.
        const newest = this.cache.newestSeq(s.block);
        if (newest !== undefined && newest <= cut.seq && (this.storedSeq.get(s.block) ?? -1) < newest) {
          this.stored.push({ ...s, seq: newest });
          this.storedSeq.set(s.block, newest);
        }
      }
      await this.repo.flush();
      const ref = await this.persist(fork);
      const commit = await this.head.saveCommit(ref, tags);
      await this.checkpoint(commit);
      return commit;
    } finally {
      cut.release();
    }
  }
}
