import { promises as fs } from 'node:fs';
import { BlobType } from '../repository/pack.js';
import type { FinishedPack } from '../repository/packer.js';
import type { PreparedBlob } from '../repository/blob-prepare.js';
import type { Repository } from '../repository/repository.js';
import type { TreeLog } from '../repository/writer-records.js';
import type { Node } from '../tree/node.js';
import type { BlobSink } from './data-pipeline.js';

/** The snapshot an incremental backup compares against, and where its trees come from. */
export interface Parent {
  id: string;
  tree: string;
  /** Its time, when known (a write-only key's record does not say): the walk takes the newest target's parent. */
  time?: string;
  trees: (id: Buffer) => Promise<Node[]>;
}

/** What a backup added to one repository. */
export interface TargetAdded {
  dataBlobs: number;
  treeBlobs: number;
  dataAdded: number;
}

/**
 * One repository a backup writes to: its own key, lock, parent and packer. It fails on its
 * own — a pack it cannot upload (after the backend's retries), a lost lock, a flush or
 * snapshot it cannot write — and then takes nothing more: its packer is abandoned and its
 * lock released, and the backup goes on for the others. Nothing it does throws into them.
 */
export class BackupTarget implements BlobSink {
  failure: unknown;
  parent: Parent | undefined;
  /** A write-only key keeps the trees it stores in its record: they are the next backup's parent. */
  treeLog: TreeLog | undefined;
  readonly added: TargetAdded = { dataBlobs: 0, treeBlobs: 0, dataAdded: 0 };
  /** What a dry run would have added, by type and ID. */
  private dryRunSeen: Set<string> | undefined;
  private released: Promise<void> | undefined;

  constructor(
    readonly repo: Repository,
    /** How the target is named in messages: its location. */
    readonly location: string,
    /** Releases its lock (the caller took it). */
    private readonly releaseLock: () => Promise<void> = async () => undefined,
  ) {}

  get live(): boolean {
    return this.failure === undefined;
  }

  /** A dry run counts what it would add and stores nothing. */
  dryRun(): void {
    this.dryRunSeen = new Set();
  }

  /** BlobSink: whether a data blob the pipeline hashed is to be stored here. */
  claim(id: Buffer, rawLength: number): boolean {
    return this.claimAs(BlobType.data, id, rawLength);
  }

  /** Whether a blob is new here and to be stored (a dry run only counts it). */
  claimAs(type: BlobType, id: Buffer, rawLength: number): boolean {
    if (this.failure !== undefined) return false;
    if (this.dryRunSeen) {
      const key = String.fromCharCode(type) + id.toString('latin1');
      if (!this.repo.index.has(type, id, this.repo.self.no) && !this.dryRunSeen.has(key)) {
        this.dryRunSeen.add(key);
        this.count(type, rawLength);
      }
      return false;
    }
    try {
      if (!this.repo.packer.claim(type, id)) return false;
    } catch (err) {
      // An upload of an earlier pack failed.
      this.fail(err);
      return false;
    }
    this.count(type, rawLength);
    return true;
  }

  /** Whether every one of these blobs is stored here (or on its way). */
  has(type: BlobType, ids: readonly Buffer[]): boolean {
    const self = this.repo.self.no;
    for (const id of ids) if (!this.repo.index.has(type, id, self)) return false;
    return true;
  }

  /** BlobSink: a finished data pack, uploaded in the background; a failed target drops it. */
  async storePack(pack: FinishedPack): Promise<void> {
    if (this.failure === undefined) {
      try {
        return await this.repo.packer.storePack(pack);
      } catch (err) {
        this.fail(err);
        return;
      }
    }
    if (!Buffer.isBuffer(pack.bytes)) await fs.rm(pack.bytes.file, { force: true });
  }

  /** Adds a tree blob it claimed. */
  async put(type: BlobType, blob: PreparedBlob): Promise<void> {
    if (this.failure !== undefined) return;
    await this.repo.packer.put(type, blob).catch((err: unknown) => this.fail(err));
  }

  /** Runs a step of the end of the backup (flush, snapshot) unless it failed; a step that throws fails it. */
  async step(work: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) return;
    await work().catch((err: unknown) => this.fail(err));
  }

  /**
   * BlobSink, and anyone else who finds it broken: it gets nothing more, and its lock goes at
   * once. A lost lock (`lockLost`) is released with the others at the end: until then it keeps
   * trying to refresh, as a single backup's always did.
   */
  fail(err: unknown, lockLost = false): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.repo.packer.abandon(err);
    if (!lockLost) void this.release();
  }

  /**
   * Releases its lock, once; a failed target's also waits for its uploads under way (its packer
   * was abandoned with the failure, so what they leave stays unindexed: nothing refers to it),
   * beside the release, since a dead server makes both wait out the backend's retries.
   */
  release(): Promise<void> {
    const uploads = this.failure !== undefined ? this.repo.packer.flush().catch(() => undefined) : undefined;
    this.released ??= Promise.all([uploads, this.releaseLock().catch(() => undefined)]).then(() => undefined);
    return this.released;
  }

  private count(type: BlobType, bytes: number): void {
    if (type === BlobType.tree) this.added.treeBlobs++;
    else this.added.dataBlobs++;
    this.added.dataAdded += bytes;
  }
}

/**
 * Targets that cut and name data alike, in groups: within one, blob IDs and so trees are the
 * same in every repository, and the source is read once for all (see docs/DESIGN.md); each
 * further group is another pass over the sources. In the order given.
 */
export function keyClasses(targets: BackupTarget[]): BackupTarget[][] {
  const groups = new Map<string, BackupTarget[]>();
  for (const t of targets) {
    const { config, keys } = t.repo;
    const key = JSON.stringify([config.chunker, keys.writer.chunkerKey.toString('hex'), keys.writer.chunkIdKey.toString('hex')]);
    const group = groups.get(key);
    if (group) group.push(t);
    else groups.set(key, [t]);
  }
  return [...groups.values()];
}
