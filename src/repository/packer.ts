import { newSealedKey } from '../crypto/keybox.js';
import { sha256Async } from '../crypto/primitives.js';
import type { IndexFile, PackInfo } from './blob-index.js';
import { Budget } from '../util/budget.js';
import type { PreparedBlob } from './blob-prepare.js';
import { BlobType, KeyKind, PackWriter, type PackEntry } from './pack.js';
import type { Repository } from './repository.js';

/** An index object is written once this many new blobs are in uploaded packs, so a crash loses little. */
const INDEX_CHECKPOINT_BLOBS = 100_000;

/**
 * Batches new blobs into packs (data and trees never share a pack), uploads full packs with
 * bounded concurrency, and records them in the index: in memory at once, in the repository's
 * index objects at checkpoints and at flush. Packs are always stored before the index names them.
 */
export class Packer {
  private readonly open = new Map<BlobType, PackWriter>();
  /** Blobs written into a pack that is not yet uploaded, so duplicates within a run are stored once. */
  private readonly pending = new Set<string>();
  private readonly uploads = new Set<Promise<void>>();
  private unindexed: IndexFile = { packs: [] };
  private unindexedBlobs = 0;
  private failure: unknown;
  /** Bytes of new packs written to the backend. */
  bytesStored = 0;

  /** Packs being finished or uploaded: each holds up to a pack size of memory. */
  private readonly uploadSlots: Budget;

  constructor(private readonly repo: Repository) {
    this.uploadSlots = new Budget(repo.backend.connections);
  }

  /** Adds a blob unless the repository or an open pack already has it; true if it was added. */
  async add(type: BlobType, blob: PreparedBlob): Promise<boolean> {
    this.rethrow();
    const key = blob.id.toString('latin1');
    if (this.repo.index.has(blob.id) || this.pending.has(key)) return false;
    this.pending.add(key);
    const writer = this.writerFor(type);
    writer.add(type, blob.id, blob.stored, blob.rawLength, blob.compressed);
    if (writer.bytes >= this.repo.config.packSize) await this.finish(type);
    return true;
  }

  private writerFor(type: BlobType): PackWriter {
    let writer = this.open.get(type);
    if (!writer) {
      if (type === BlobType.tree) {
        const { key, envelope } = this.repo.newTreePackKey();
        writer = new PackWriter(key, envelope);
      } else {
        const { key, sealed } = newSealedKey(this.repo.keys.dataPublicKey);
        writer = new PackWriter(key, Buffer.concat([Buffer.from([KeyKind.sealed]), sealed]));
      }
      this.open.set(type, writer);
    }
    return writer;
  }

  private async finish(type: BlobType): Promise<void> {
    const writer = this.open.get(type);
    if (!writer) return;
    this.open.delete(type);
    await this.uploadSlots.admit(1);
    let bytes: Buffer;
    let entries: PackEntry[];
    let pack: PackInfo;
    try {
      this.rethrow();
      ({ bytes, entries } = await writer.finish());
      pack = { id: await sha256Async(bytes), type, envelope: writer.envelope };
    } catch (err) {
      this.uploadSlots.release(1);
      throw err;
    }
    const upload = this.repo.backend.save('data', pack.id.toString('hex'), bytes, { metadata: type === BlobType.tree }).then(
      () => {
        this.bytesStored += bytes.length;
        this.repo.index.addPack(pack, entries);
        for (const e of entries) this.pending.delete(e.id.toString('latin1'));
        this.unindexed.packs.push({ pack, entries });
        this.unindexedBlobs += entries.length;
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
    if (this.unindexed.packs.length === 0 || (!force && this.unindexedBlobs < INDEX_CHECKPOINT_BLOBS)) return;
    const file = this.unindexed;
    this.unindexed = { packs: [] };
    this.unindexedBlobs = 0;
    await this.repo.saveIndexFile(file);
  }

  /** Uploads every open pack, waits for all uploads, then writes the index for them. */
  async flush(): Promise<void> {
    for (const type of [...this.open.keys()]) await this.finish(type);
    await Promise.all(this.uploads);
    this.rethrow();
    await this.checkpoint(true);
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
