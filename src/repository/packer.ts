import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PackInfo } from './blob-index.js';
import { encodePackRecord } from './index-file.js';
import { Budget } from '../util/budget.js';
import type { PreparedBlob } from './blob-prepare.js';
import { BlobType, newPack, type PackEntry, type PackWriter } from './pack.js';
import { PACK_FILE_WINDOW, PackFile } from './pack-file.js';
import type { Repository } from './repository.js';
import type { Writer } from './writers.js';

/** A pack written to a file for the backend's Staging. */
export interface StagedPack {
  file: string;
  size: number;
}

/** A pack assembled elsewhere (a backup worker's), named by the SHA-256 of its bytes. */
export interface FinishedPack {
  /** Its bytes, or where they were staged. */
  bytes: Buffer | StagedPack;
  entries: PackEntry[];
  id: Buffer;
  type: BlobType;
  envelope: Buffer;
  /** Called once the bytes are uploaded and no longer needed (so their memory can be reused). */
  release?: () => void;
}

/** An index object is written once this many new blobs are in uploaded packs, so a crash loses little. */
const INDEX_CHECKPOINT_BLOBS = 100_000;

/**
 * Batches new blobs into packs (data and trees never share a pack), uploads full packs with
 * bounded concurrency, and records them in the index: in memory at once, in the repository's
 * index objects at checkpoints and at flush. Packs are always stored before the index names them.
 */
export class Packer {
  /** The open pack of each type, and its file when the backend adopts files (see staging). */
  private readonly open = new Map<BlobType, { writer: PackWriter; file?: PackFile }>();
  /** This writer's staged files are named by a run's own prefix and a count. */
  private readonly filePrefix = randomBytes(8).toString('hex');
  private filesStaged = 0;
  /** Blobs written into a pack that is not yet uploaded, so duplicates within a run are stored once. */
  private readonly pending = new Set<string>();
  private readonly uploads = new Set<Promise<void>>();
  /** Records of stored packs not yet in an index object (see encodePackRecord). */
  private unindexed: Buffer[] = [];
  private unindexedBlobs = 0;
  private failure: unknown;
  /** Bytes of new packs written to the backend. */
  bytesStored = 0;

  /** Packs being finished or uploaded: each holds up to a pack size of memory. */
  private readonly uploadSlots: Budget;

  /**
   * Packs the blobs of `writer` (by default the key's own; a prune repacks any writer's blobs
   * into packs of that writer).
   */
  constructor(
    private readonly repo: Repository,
    private readonly owner: Writer = repo.self,
  ) {
    this.uploadSlots = new Budget(repo.backend.connections);
  }

  /**
   * Where data packs built elsewhere are to be written, when the backend adopts files: a
   * directory and a prefix for the files' names. Otherwise they are handed over in memory.
   */
  get staging(): { dir: string; prefix: string } | undefined {
    const staging = this.repo.backend.staging;
    return staging && { dir: staging.dir, prefix: staging.prefix };
  }

  /** Room for a full pack and the blob that fills it (pages never written cost no memory). */
  private get capacity(): number {
    return this.repo.config.packSize + 1024 * 1024;
  }

  /** Adds a blob unless this writer or an open pack already has it; true if it was added. */
  async add(type: BlobType, blob: PreparedBlob): Promise<boolean> {
    if (!this.claim(type, blob.id)) return false;
    await this.put(type, blob);
    return true;
  }

  /** Adds a blob claimed before; resolves when there is room for more. */
  async put(type: BlobType, blob: PreparedBlob): Promise<void> {
    const { writer } = this.packFor(type);
    writer.add(blob.id, blob.stored, blob.rawLength, blob.compressed);
    if (writer.bytes >= this.repo.config.packSize) await this.finish(type);
  }

  /**
   * True if the blob is new to this writer and to this run: the caller must then store it
   * (here, or in a pack of its own given to storePack). Later claims of the same blob are false.
   * Only the writer's own blobs count: IDs are keyed per writer, and a blob another writer
   * claims to have is never taken on its word.
   */
  claim(type: BlobType, id: Buffer): boolean {
    this.rethrow();
    const key = String.fromCharCode(type) + id.toString('latin1');
    if (this.repo.index.has(type, id, this.owner.no) || this.pending.has(key)) return false;
    this.pending.add(key);
    return true;
  }

  /**
   * The open pack of a type. On a backend that adopts files it is streamed to one, as the
   * workers' data packs are: a source tree's trees filled one pack of several MiB in memory,
   * held to the end of the backup.
   */
  private packFor(type: BlobType): { writer: PackWriter; file?: PackFile } {
    let pack = this.open.get(type);
    if (!pack) {
      const staging = this.staging;
      const file = staging && new PackFile(path.join(staging.dir, `${staging.prefix}${this.filePrefix}-${this.filesStaged++}`));
      const window = file ? PACK_FILE_WINDOW : this.capacity;
      this.open.set(type, (pack = { writer: newPack(type, this.repo.keys.sealPublic, this.owner.id, window, file), file }));
    }
    return pack;
  }

  private async finish(type: BlobType): Promise<void> {
    const pack = this.open.get(type);
    if (!pack) return;
    this.open.delete(type);
    const { writer, file } = pack;
    const { bytes, entries, id, size } = writer.finish();
    await this.storePack({ bytes: file ? file.close(size) : bytes, entries, id, type, envelope: writer.envelope });
  }

  /**
   * After a failed backup: the open packs will never be finished, and their files go. `reason`
   * also stops what is under way from being indexed (a target whose lock is lost or about to
   * be released: a prune may delete its packs before an index could name them).
   */
  abandon(reason?: unknown): void {
    if (reason !== undefined) this.failure ??= reason;
    for (const { file } of this.open.values()) file?.abandon();
    this.open.clear();
  }

  /**
   * Uploads a finished pack of claimed blobs in the background; resolves once an upload slot
   * is free, so producers wait while too many packs are in memory.
   */
  async storePack(pack: FinishedPack): Promise<void> {
    const { bytes, entries } = pack;
    if (this.failure === undefined) {
      await this.uploadSlots.admit(1);
      if (this.failure !== undefined) this.uploadSlots.release(1);
    }
    if (this.failure !== undefined) {
      // Nothing else would remove a staged file of a run that failed.
      if (!Buffer.isBuffer(bytes)) await fs.rm(bytes.file, { force: true });
      throw this.failure;
    }
    const info: PackInfo = { id: pack.id, type: pack.type, writer: this.owner.no, envelope: pack.envelope };
    const name = info.id.toString('hex');
    const upload = (
      Buffer.isBuffer(bytes)
        ? this.repo.backend.save('data', name, bytes, { metadata: info.type === BlobType.tree, sha256: name })
        : this.repo.backend.staging!.adopt('data', name, bytes.file)
    ).then(
      () => {
        this.bytesStored += Buffer.isBuffer(bytes) ? bytes.length : bytes.size;
        this.repo.index.addPack(info, entries);
        for (const e of entries) this.pending.delete(String.fromCharCode(pack.type) + e.id.toString('latin1'));
        this.unindexed.push(encodePackRecord({ ...info, writer: this.owner.id, markedAt: 0 }, entries));
        this.unindexedBlobs += entries.length;
        pack.release?.();
      },
      (err: unknown) => {
        this.failure ??= err;
      },
    );
    const tracked = upload.finally(() => {
      this.uploads.delete(tracked);
      this.uploadSlots.release(1);
    });
    this.uploads.add(tracked);
    await this.checkpoint(false);
  }

  private async checkpoint(force: boolean): Promise<void> {
    if (this.failure !== undefined || this.unindexed.length === 0 || (!force && this.unindexedBlobs < INDEX_CHECKPOINT_BLOBS)) return;
    const records = this.unindexed;
    this.unindexed = [];
    this.unindexedBlobs = 0;
    await this.repo.saveIndexFile(records);
  }

  /**
   * Uploads every open pack, waits for all uploads, then writes the index for them. After a
   * failure it still waits for every upload under way, so none is left writing (or leaving a
   * staged file behind) once it settles.
   */
  async flush(): Promise<void> {
    try {
      for (const type of [...this.open.keys()]) await this.finish(type);
    } finally {
      await Promise.all(this.uploads);
    }
    this.rethrow();
    await this.checkpoint(true);
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
