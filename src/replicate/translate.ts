import { createHash } from 'node:crypto';
import { DataPipeline, type BlobSink, type ReadFn } from '../archiver/data-pipeline.js';
import type { Chunker } from '../chunker/chunker.js';
import { FastCDC } from '../chunker/fastcdc.js';
import { checkAborted, IntegrityError, ScrateError } from '../errors.js';
import type { WriterPackers } from '../maintenance/repair-shared.js';
import { MAX_TREE_BYTES } from '../repository/limits.js';
import { BlobType } from '../repository/pack.js';
import type { FinishedPack, Packer } from '../repository/packer.js';
import type { BlobLocation } from '../repository/blob-index.js';
import { decodeSealedBlob, type BlobReader, type Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';
import { isZeroBlob, loadPiece, locate, type ContentPiece } from '../restorer/content.js';
import { listSnapshots, type SnapshotEntry } from '../snapshot/snapshot.js';
import { displayName, encodeTree, type Node } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';
import { originOf, similar } from './select.js';
import { MAX_GAP, MAX_JOB_BYTES } from './transfer.js';

/** Said once when a copy re-chunks (design note of issue #24, §2.3). */
export const RECHUNK_NOTE = "target's chunker differs from the source's (not made with init --from-repo --copy-chunker-params): files are re-chunked";

/**
 * Run-wide memos, at most this many entries each (the oldest go first): one per directory and
 * per distinct file, so a huge source does not hold all of them.
 */
const TREE_MEMO = 500_000;
const CONTENT_MEMO = 100_000;

/** A source tree and the target tree it was translated to before (in a copy the target holds). */
interface Pair {
  src: Buffer;
  dst: Buffer;
}

export interface TranslateStats {
  /** Blobs stored in the target. */
  blobs: number;
  /** Bytes of the source's blobs read for their content (sealed, as stored). */
  bytesRead: number;
}

/**
 * Copies into a target whose blob IDs and cut points are not the source's: each snapshot's
 * tree is rewritten bottom-up with the target writer's IDs. Files are read in order and cut
 * again by the target's chunker through the archiver's data pipeline; disk images keep their
 * block-aligned chunks (each is only named anew), so the next `backup --as-device` into the
 * target dedups against them. A source tree or file content met before in this run, or equal
 * to its counterpart in the snapshot's previous copy (its pair-parent), is not read again.
 */
export class Translation {
  readonly stats: TranslateStats = { blobs: 0, bytesRead: 0 };
  private readonly writers = new Map<string, WriterTranslation>();
  /** Target snapshots that are copies: pair-parents of later ones. */
  private readonly copies: SnapshotEntry[];
  private sources: Promise<SnapshotEntry[]> | undefined;

  constructor(
    private readonly src: Repository,
    private readonly dst: Repository,
    private readonly packers: WriterPackers,
    targets: readonly SnapshotEntry[],
    private readonly signal?: AbortSignal,
  ) {
    this.copies = targets.filter((t) => t.snapshot.original !== undefined);
  }

  /** The ID of the snapshot's root tree in the target, every blob below it stored or handed to the packer. */
  async tree(source: SnapshotEntry, writer: Writer): Promise<string> {
    const key = `${source.writer.hex}:${writer.hex}`;
    let w = this.writers.get(key);
    if (!w) this.writers.set(key, (w = new WriterTranslation(this.src.reader(source.writer), this.dst, writer, this.packers.of(writer), this.stats, this.signal)));
    const root = await w.translate(Buffer.from(source.snapshot.tree, 'hex'), await this.pairParent(source, writer));
    await w.flush();
    return root.toString('hex');
  }

  /** A copy just saved: the pair-parent of later snapshots of its group. */
  saved(copy: SnapshotEntry): void {
    this.copies.push(copy);
  }

  async close(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
  }

  /**
   * The newest copy in the target, by the same writers, of a source snapshot of the same host
   * and paths that the source still has: what the snapshot is compared against, as a backup
   * with its parent (design note §2.6 step 1).
   */
  private async pairParent(source: SnapshotEntry, writer: Writer): Promise<Pair | undefined> {
    if (!this.dst.canRead) return undefined;
    const sources = await (this.sources ??= listSnapshots(this.src));
    const sn = source.snapshot;
    const byOrigin = new Map(sources.filter((s) => s.writer.no === source.writer.no && s.id !== source.id).map((s) => [originOf(s), s]));
    let best: { s: SnapshotEntry; t: SnapshotEntry } | undefined;
    for (const t of this.copies) {
      const s = byOrigin.get(t.snapshot.original!);
      if (!s || t.writer.no !== writer.no || s.snapshot.hostname !== sn.hostname || s.snapshot.paths.join('\0') !== sn.paths.join('\0')) continue;
      if (!similar(s.snapshot, t.snapshot, false)) continue;
      if (!best || Date.parse(t.snapshot.time) > Date.parse(best.t.snapshot.time)) best = { s, t };
    }
    return best && { src: Buffer.from(best.s.snapshot.tree, 'hex'), dst: Buffer.from(best.t.snapshot.tree, 'hex') };
  }
}

/** A file whose content is to be read and cut: its node gets the target's IDs. */
interface ContentJob {
  node: Node;
  ids: Buffer[];
  resolve: (content: Promise<Buffer[]>) => void;
  reject: (err: unknown) => void;
}

/** Translation from one source writer to one target writer: their IDs are what the memos map. */
class WriterTranslation implements BlobSink {
  private readonly data: DataPipeline;
  private readonly chunker: FastCDC;
  /** Reads the pair-parent's trees; a write-only target key reads nothing (and has no pair-parent). */
  private readonly targetReader?: BlobReader;
  /** Source tree ID → target tree ID (latin1 keys), once its files are read. */
  private readonly trees = new Memo<Promise<Buffer>>(TREE_MEMO);
  /** Source content list → target content list. */
  private readonly contents = new Memo<Promise<Buffer[]>>(CONTENT_MEMO);

  constructor(
    private readonly reader: BlobReader,
    private readonly dst: Repository,
    private readonly writer: Writer,
    private readonly packer: Packer,
    private readonly stats: TranslateStats,
    private readonly signal?: AbortSignal,
  ) {
    // The writer's own (keysOf included): a full key derives every writer's, a write-only key holds its own.
    this.chunker = new FastCDC({ ...dst.config.chunker, key: writer.chunkerKey! });
    if (dst.canRead) this.targetReader = dst.reader(writer);
    const target = { sealPublic: dst.keys.sealPublic, writer: writer.id, level: dst.config.compression, packSize: dst.config.packSize, staging: packer.staging, sink: this };
    this.data = new DataPipeline({ chunkIdKey: writer.chunkIdKey, chunker: this.chunker, targets: [target] });
  }

  /** BlobSink: a data blob the target writer lacks is stored. */
  claim(id: Buffer): boolean {
    if (!this.packer.claim(BlobType.data, id)) return false;
    this.stats.blobs++;
    return true;
  }

  storePack(pack: FinishedPack): Promise<void> {
    return this.packer.storePack(pack);
  }

  /** Hands the data packs still open to the packer. */
  flush(): Promise<void> {
    return this.data.flush();
  }

  close(): Promise<void> {
    return this.data.close();
  }

  /** A source root tree's ID in the target, every file below it read; `prev` its pair-parent's. */
  async translate(root: Buffer, prev: Pair | undefined): Promise<Buffer> {
    const reading = new Reading(this.reader, (job, piece) => this.cut(job, piece), this.stats);
    try {
      return await (await this.tree(root, prev, reading)).result;
    } finally {
      // Whatever failed, no file of this snapshot is cut after this: the next one's share the pipeline.
      await reading.close();
    }
  }

  /**
   * Walks a source tree, queueing the files to read, and resolves once it is walked (boxed, so
   * that the walk goes on): `result` is the target tree's ID once every file below is read. The
   * walk stays at most a bounded number of blobs ahead of the reading.
   */
  private async tree(id: Buffer, prev: Pair | undefined, reading: Reading): Promise<{ result: Promise<Buffer> }> {
    checkAborted(this.signal);
    const key = id.toString('latin1');
    const known = this.trees.get(key);
    if (known) return { result: known };
    if (prev?.src.equals(id) && this.dst.index.has(BlobType.tree, prev.dst, this.writer.no)) return { result: this.trees.set(key, Promise.resolve(prev.dst)) };
    await reading.room();
    const nodes = await loadTree(this.reader, id);
    const before = prev && (await this.pairedNodes(prev));
    const waits: Promise<void>[] = [];
    for (const node of nodes) {
      const was = before?.get(node.name.toString('latin1'));
      // Its blocks would need hashing again under the target's key, and a new map.
      if (node.blockMap) throw new ScrateError(`${displayName(node.name)} is a volume image: it cannot be copied to a repository with another chunker yet`);
      if (node.type === 'file' && node.content?.length) {
        waits.push(this.content(node, node.content, was, reading));
      } else if (node.type === 'dir' && node.subtree) {
        const { result } = await this.tree(node.subtree, was?.src.subtree && was.dst.subtree ? { src: was.src.subtree, dst: was.dst.subtree } : undefined, reading);
        const set = result.then((subtree) => {
          node.subtree = subtree;
        });
        set.catch(() => undefined); // awaited below, unless another entry failed first
        waits.push(set);
      }
    }
    const result = Promise.all(waits).then(() => this.store(nodes));
    this.trees.set(key, result);
    // A failed tree is not remembered: a later snapshot with it tries again.
    result.catch(() => this.trees.delete(key, result));
    return { result };
  }

  /** Stores a directory's tree, its entries' IDs now the target's. */
  private async store(nodes: Node[]): Promise<Buffer> {
    const encoded = encodeTree(nodes);
    // Smaller target chunks make longer content lists: readers refuse a tree over the limit.
    if (encoded.length > MAX_TREE_BYTES) throw new ScrateError(`a directory of ${nodes.length} entries is too large for one tree in the target (over ${MAX_TREE_BYTES / 1024 / 1024} MiB)`);
    const blob = this.dst.prepare(BlobType.tree, encoded, this.writer);
    if (this.packer.claim(BlobType.tree, blob.id)) {
      this.stats.blobs++;
      await this.packer.put(BlobType.tree, blob);
    }
    return blob.id;
  }

  /**
   * The entries of a directory in the pair-parent, by name: the source's and the target's of
   * each (a damaged one only costs reading this directory's files).
   */
  private async pairedNodes(prev: Pair): Promise<Map<string, { src: Node; dst: Node }> | undefined> {
    try {
      const [src, dst] = await Promise.all([loadTree(this.reader, prev.src), loadTree(this.targetReader!, prev.dst)]);
      const dstByName = new Map(dst.map((n) => [n.name.toString('latin1'), n]));
      const paired = new Map<string, { src: Node; dst: Node }>();
      for (const n of src) {
        const name = n.name.toString('latin1');
        const d = dstByName.get(name);
        if (d && d.type === n.type) paired.set(name, { src: n, dst: d });
      }
      return paired;
    } catch (err) {
      if (err instanceof IntegrityError) return undefined;
      throw err;
    }
  }

  /**
   * Sets a file's target content: as translated before, as in the pair-parent when its source
   * content is the same there and the target still has every blob, or else read (a job).
   */
  private content(node: Node, ids: Buffer[], was: { src: Node; dst: Node } | undefined, reading: Reading): Promise<void> {
    const key = ids.reduce((h, id) => h.update(id), createHash('sha256')).digest().toString('latin1');
    let target = this.contents.get(key);
    if (!target && was?.dst.content && sameIds(was.src.content, ids) && this.allStored(was.dst.content)) target = this.contents.set(key, Promise.resolve(was.dst.content));
    if (!target) {
      const read = new Promise<Buffer[]>((resolve, reject) => reading.add({ node, ids, resolve, reject }));
      target = this.contents.set(key, read);
      // A failed read is not remembered: a later snapshot with the same file tries again.
      read.catch(() => this.contents.delete(key, read));
    }
    const set = target.then((content) => {
      node.content = content;
    });
    set.catch(() => undefined); // awaited by the directory, unless another entry failed first
    return set;
  }

  private allStored(content: Buffer[]): boolean {
    return content.every((id) => this.dst.index.has(BlobType.data, id, this.writer.no));
  }

  /**
   * Reads one file's blobs (`piece` gives the next) and hands its chunks to the pipeline;
   * resolves once read (the next file is read while these chunks are hashed), `content` once
   * they are hashed.
   */
  private async cut(job: ContentJob, piece: () => Promise<ContentPiece>): Promise<{ content: Promise<Buffer[]> }> {
    const cuts = job.node.image ? this.sourceCuts(job.ids) : undefined;
    const ids: Promise<Buffer>[] = [];
    for await (const chunk of this.data.readChunks(pieceReader(piece, job.ids.length), cuts ?? this.chunker)) {
      cuts?.advance();
      const id = this.data.storeRegion(chunk).then((s) => s.id);
      id.catch(() => undefined); // awaited through the content, unless the read stops first
      ids.push(id);
      checkAborted(this.signal);
    }
    const content = Promise.all(ids);
    content.catch(() => undefined); // awaited by the directory
    return { content };
  }

  /**
   * A disk image keeps its chunks (fixed and block-aligned, unless it was backed up with
   * --chunker cdc): they are named with the target's key, not cut again. Unless one is larger
   * than the target's chunks may be (the pipeline has room for those).
   */
  private sourceCuts(ids: Buffer[]): SourceCuts | undefined {
    const lengths = ids.map((id) => locate(this.reader, id).rawLength);
    return lengths.every((n) => n > 0 && n <= this.chunker.params.max) ? new SourceCuts(lengths) : undefined;
  }
}

/** Blobs the walk may queue ahead of the reading, at most: their IDs, and the trees they are in, wait in memory. */
const QUEUED_BLOBS = 8192;

/**
 * One snapshot's reading: the files the walk queues are cut one after another (one input at a
 * time through the pipeline, as the archiver reads its large files), their blobs loaded in that
 * order, across files and directories, `connections` requests at once. Blobs that follow one
 * another in the queue and lie close together in one pack (a directory's small files, mostly)
 * are read by one ranged request, as copy's transfer reads them.
 */
class Reading {
  private jobs: ContentJob[] = [];
  private nextJob = 0;
  /** Blobs queued and not yet loading, from `nextBlob` on. */
  private queued: Buffer[] = [];
  private nextBlob = 0;
  /** Loading, oldest first, taken in order; `ends` on the last blob of a request. */
  private readonly loads: { piece: Promise<ContentPiece>; ends: boolean }[] = [];
  /** Requests made whose blobs are not all taken: their bytes are held. */
  private requests = 0;
  /** Blobs queued and not yet taken. */
  private waiting = 0;
  private readonly ahead: number;
  private running: Promise<void> | undefined;
  private failure: unknown;
  private wakeWalk: (() => void)[] = [];

  constructor(
    private readonly reader: BlobReader,
    private readonly cut: (job: ContentJob, piece: () => Promise<ContentPiece>) => Promise<{ content: Promise<Buffer[]> }>,
    private readonly stats: TranslateStats,
  ) {
    this.ahead = reader.backend.connections;
  }

  /** Resolves when the walk may queue more; throws once reading failed. */
  async room(): Promise<void> {
    while (this.failure === undefined && this.waiting >= QUEUED_BLOBS) await new Promise<void>((wake) => this.wakeWalk.push(wake));
    if (this.failure !== undefined) throw this.failure;
  }

  add(job: ContentJob): void {
    if (this.failure !== undefined) return job.reject(this.failure);
    this.jobs.push(job);
    for (const id of job.ids) this.queued.push(id);
    this.waiting += job.ids.length;
    this.fill();
    this.running ??= this.run();
  }

  /** Stops: files queued and not yet read fail; resolves once none is being cut. */
  async close(): Promise<void> {
    this.fail(new ScrateError('the copy of this snapshot stopped'));
    await this.running;
  }

  private async run(): Promise<void> {
    while (this.nextJob < this.jobs.length) {
      const job = this.jobs[this.nextJob++]!;
      if (this.nextJob >= 1024) {
        this.jobs = this.jobs.slice(this.nextJob);
        this.nextJob = 0;
      }
      try {
        job.resolve((await this.cut(job, () => this.piece())).content);
      } catch (err) {
        job.reject(err);
        this.fail(err);
      }
    }
    // In the same turn as the last look at `jobs`: a job added after it starts a new run.
    this.running = undefined;
  }

  private piece(): Promise<ContentPiece> {
    const load = this.loads.shift();
    // None when the reading stopped under a file being cut: that file fails too.
    if (!load) return Promise.reject(this.failure);
    if (load.ends) this.requests--;
    this.waiting--;
    this.fill();
    if (this.waiting < QUEUED_BLOBS) for (const wake of this.wakeWalk.splice(0)) wake();
    return load.piece;
  }

  private fill(): void {
    while (this.requests < this.ahead && this.nextBlob < this.queued.length) this.request();
    if (this.nextBlob >= 4096) {
      this.queued = this.queued.slice(this.nextBlob);
      this.nextBlob = 0;
    }
  }

  /**
   * Starts loading the next queued blob, with those after it in the queue that lie near it in
   * the same pack; a zero blob needs no request. Should the ranged read fail, or a blob in it,
   * each blob is loaded on its own (retried, and damage told as loadBlob tells it).
   */
  private request(): void {
    const reader = this.reader;
    const group: { id: Buffer; loc: BlobLocation }[] = [];
    let start = 0;
    let end = 0;
    let sealed = 0;
    for (; this.nextBlob < this.queued.length; this.nextBlob++) {
      const id = this.queued[this.nextBlob]!;
      const loc = reader.find(BlobType.data, id);
      const zero = loc !== undefined && isZeroBlob(reader, id, loc);
      if (group.length > 0) {
        const from = Math.min(start, loc?.offset ?? 0);
        const to = Math.max(end, loc ? loc.offset + loc.length : 0);
        if (!loc || zero || loc.pack !== group[0]!.loc.pack || to - from > MAX_JOB_BYTES || to - from - sealed - loc.length > MAX_GAP) break;
        [start, end] = [from, to];
      } else if (!loc || zero) {
        this.nextBlob++;
        const piece = loadPiece(reader, id);
        piece.catch(() => undefined); // taken in its turn, unless reading stopped first
        this.loads.push({ piece, ends: false });
        return;
      } else {
        [start, end] = [loc.offset, loc.offset + loc.length];
      }
      group.push({ id, loc });
      sealed += loc.length;
    }
    const pack = group[0]!.loc.pack;
    const packId = pack.id.toString('hex');
    const bytes = reader.backend.load('data', packId, { range: { offset: start, length: end - start } }).then((b) => {
      this.stats.bytesRead += b.length;
      return b;
    });
    group.forEach(({ id, loc }, i) => {
      const piece = bytes
        .then((b) => ({ data: decodeSealedBlob(reader.packKey(packId, pack.envelope), reader.chunkIdKey, id, loc, b.subarray(loc.offset - start, loc.offset - start + loc.length), packId), zero: false }))
        .catch(() => {
          this.stats.bytesRead += loc.length;
          return loadPiece(reader, id);
        });
      piece.catch(() => undefined); // taken in its turn, unless reading stopped first
      this.loads.push({ piece, ends: i === group.length - 1 });
    });
    this.requests++;
  }

  /** The first failure ends the reading: every file queued fails with it (so that nothing waits for it), and the walk stops. */
  private fail(err: unknown): void {
    this.failure ??= err;
    for (const job of this.jobs.slice(this.nextJob)) job.reject(this.failure);
    this.jobs = [];
    this.nextJob = 0;
    this.queued = [];
    this.nextBlob = 0;
    for (const wake of this.wakeWalk.splice(0)) wake();
  }
}

/** Cuts where the source's chunks end: each yielded chunk is followed by advance(). */
class SourceCuts implements Chunker {
  readonly params: { readonly max: number };
  private next = 0;

  constructor(private readonly lengths: number[]) {
    // Not Math.max(...lengths): a large image has more chunks than a call takes arguments.
    this.params = { max: lengths.reduce((m, n) => (n > m ? n : m), 0) };
  }

  cut(_buf: Uint8Array, start: number, end: number): number {
    return Math.min(this.lengths[this.next] ?? end - start, end - start);
  }

  advance(): void {
    this.next++;
  }
}

/** Reads the next `count` blobs as one input. */
function pieceReader(piece: () => Promise<ContentPiece>, count: number): ReadFn {
  let data: Buffer = Buffer.alloc(0);
  let at = 0;
  let left = count;
  return async (buffer, offset, length) => {
    while (at === data.length) {
      if (left === 0) return 0;
      left--;
      data = (await piece()).data;
      at = 0;
    }
    const n = data.copy(buffer, offset, at, at + Math.min(length, data.length - at));
    at += n;
    return n;
  };
}

function sameIds(a: Buffer[] | undefined, b: Buffer[]): boolean {
  return a !== undefined && a.length === b.length && a.every((id, i) => id.equals(b[i]!));
}

/** A map of at most `limit` entries: the oldest goes when a new one would exceed it. */
class Memo<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly limit: number) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): V {
    if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, value);
    return value;
  }

  /** Forgets `key` if it still maps to `value`. */
  delete(key: string, value: V): void {
    if (this.map.get(key) === value) this.map.delete(key);
  }
}
