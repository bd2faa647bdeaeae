import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deriveKey } from '../crypto/primitives.js';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import type { Lock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { mapCapacity, MutableBlockMap, type BlockMapRef } from '../tree/block-map.js';
import { BlobType } from '../repository/pack.js';
import { VolumeCache } from './cache/volume-cache.js';
import { headMap, saveCommit, volumeTree } from './head.js';
import { recordStamp, saveVolumeRecord, type VolumeEntry, type VolumeRecord } from './record.js';
import { StoredBlocks } from './stored-blocks.js';
import { Uploader, type HeadWriter } from './uploader.js';
import { WritableVolume } from './writable.js';

export interface OpenVolumeOptions {
  /** Below it, the volume's write-back cache: <root>/<repository id>/volumes/<volume id>. */
  cacheRoot: string;
  /** The cache's log is kept under this many bytes; writes wait above 90 % of it. */
  cacheBytes: number;
  /** Decrypted blocks kept for reads. */
  readCacheBytes: number;
  writeDelayMs: number;
  checkpointMs: number;
  /** Forget what the local cache holds (writes never uploaded are lost). */
  discardCache: boolean;
  onWarning: (message: string) => void;
}

/** A volume open for writing: the export the front-ends serve, its uploader, and how to end. */
export interface OpenVolume {
  volume: WritableVolume;
  uploader: Uploader;
  record: () => VolumeRecord;
  cacheKey: Buffer;
  /** Writes replayed from the cache a previous process left. */
  replayed: number;
  /** Uploads every cached block, records the head and closes the cache. */
  close(): Promise<void>;
  /** Stops uploading and closes the cache as it is (what it holds is replayed by the next serve). */
  abandon(): Promise<void>;
}

/** The key of a volume's local cache, from the repository's ID key: nothing on the disk is readable without it. */
export function volumeCacheKey(repo: Repository, volume: string): Buffer {
  const read = repo.keys.read;
  if (!read) throw new ScrateError('volumes need a full key');
  return deriveKey(read.idRoot, Buffer.from(volume, 'hex'), 'scrate v3 volume cache');
}

export function volumeCacheDir(repo: Repository, cacheRoot: string, volume: string): string {
  return join(cacheRoot, repo.config.id, 'volumes', volume);
}

/**
 * Opens a volume for writing under `lock` (the volume's one-writer lock): replays what the
 * local cache holds from an earlier serve, after checking that the repository's head is the
 * one that cache was written over.
 */
export async function openVolume(repo: Repository, lock: Lock, entry: VolumeEntry, opts: OpenVolumeOptions): Promise<OpenVolume> {
  const start = entry.record;
  const dir = volumeCacheDir(repo, opts.cacheRoot, start.volume);
  if (opts.discardCache) await rm(dir, { recursive: true, force: true });
  const cacheKey = volumeCacheKey(repo, start.volume);
  const cache = await VolumeCache.open({ dir, key: cacheKey, volumeId: start.volume, size: start.size, blockSize: start.blockSize, limitBytes: opts.cacheBytes });
  try {
    checkCacheBase(cache, start);
    const reader = repo.reader(repo.self);
    const ref = await headMap(reader, start.tree, `volume ${start.name}`);
    // The tree a record names must be a map of the record's volume: anything else would fail every read and upload.
    if (ref.blockSize !== start.blockSize || mapCapacity(ref.depth) * ref.blockSize < start.size)
      throw new IntegrityError(`volume ${start.name}`, `its head's map (blocks of ${ref.blockSize}, depth ${ref.depth}) does not fit the volume`);
    const load = (id: Buffer) => reader.loadBlob(BlobType.tree, id);
    const map = MutableBlockMap.open(ref, load);
    const stored = new StoredBlocks(reader, start.size, start.blockSize, opts.readCacheBytes);
    const head = new RecordHead(repo, lock, start, entry.name, cache.session, opts.onWarning);
    let uploader: Uploader | undefined;
    const volume = new WritableVolume({ name: start.name, description: `scrate volume ${start.name}`, size: start.size, blockSize: start.blockSize }, cache, map, stored, () => {
      head.lastWrite = new Date();
      uploader?.poke();
    });
    uploader = new Uploader(repo, cache, map, stored, head, ref, start.seq, {
      writeDelayMs: opts.writeDelayMs,
      checkpointMs: opts.checkpointMs,
      urgentLogBytes: opts.cacheBytes / 2,
      parallel: 8,
      onMapped: (blocks) => (volume.mappedBlocks = blocks),
      onWarning: opts.onWarning,
    });
    volume.mappedBlocks = await map.allocatedBlocks();
    uploader.start();
    return {
      volume,
      uploader,
      record: () => head.record,
      cacheKey,
      replayed: cache.replayedRecords,
      close: async () => {
        await uploader.drain();
        await cache.close();
      },
      abandon: async () => {
        await uploader.stop();
        await cache.close();
      },
    };
  } catch (err) {
    await cache.close();
    throw err;
  }
}

/**
 * A cache holding writes is only replayed over the head it was written over: a newer head
 * from this host's own sessions means a crash after the record was saved (replaying is
 * idempotent), anything else means another writer moved on, or the repository went back.
 */
function checkCacheBase(cache: VolumeCache, head: VolumeRecord): void {
  if (cache.replayedRecords === 0) return;
  const { baseSeq, sessions } = cache.state;
  const hint = 'to drop the cached writes, serve with --discard-cache';
  if (head.seq < baseSeq) throw new ScrateError(`the repository's head of volume ${head.name} (#${head.seq}) is older than this host's cache (#${baseSeq}): was the repository rolled back?`, ExitCode.fatal, hint);
  if (head.seq > baseSeq && !sessions.includes(head.session))
    throw new ScrateError(`the local cache of volume ${head.name} holds writes made before another writer changed the volume`, ExitCode.fatal, hint);
}

/** Saves heads as volume records and commits as snapshots; renews the lock at each head. */
class RecordHead implements HeadWriter {
  lastWrite: Date;

  constructor(
    private readonly repo: Repository,
    private readonly lock: Lock,
    public record: VolumeRecord,
    private recordName: string,
    private readonly session: string,
    private readonly onWarning: (message: string) => void,
  ) {
    this.lastWrite = new Date(record.time);
  }

  async saveHead(map: BlockMapRef, commit?: string): Promise<number> {
    const tree = await volumeTree(this.repo, this.record, map, this.lastWrite);
    await this.repo.flush();
    const next: VolumeRecord = { ...this.record, ...recordStamp(this.repo), seq: this.record.seq + 1, tree, commit: commit ?? this.record.commit, session: this.session, pending: false };
    const name = await saveVolumeRecord(this.repo, next);
    const previous = this.recordName;
    this.record = next;
    this.recordName = name;
    // Superseded, so best effort: one left behind (a failure, a crash) has a lower seq and loses to this one.
    await this.repo.backend.remove('volumes', previous).catch((err: Error) => this.onWarning(`old volume record ${previous.slice(0, 8)} not removed: ${err.message}`));
    return next.seq;
  }

  async saveCommit(map: BlockMapRef, tags: readonly string[]): Promise<string> {
    const tree = await volumeTree(this.repo, this.record, map, this.lastWrite);
    return saveCommit(this.repo, { volume: this.record, tree, parent: this.record.commit, tags: [...tags] });
  }

  restartLock(t0: Date): Promise<void> {
    return this.lock.restart(t0);
  }
}

