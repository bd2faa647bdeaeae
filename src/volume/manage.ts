import { IntegrityError, ScrateError } from '../errors.js';
import { volumeHolders } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots } from '../snapshot/snapshot.js';
import { MutableBlockMap, mapDepthFor } from '../tree/block-map.js';
import { mapAllocatedBytes } from '../tree/walk.js';
import { headMap, mapNodeSaver, saveCommit, volumeTree } from './head.js';
import {
  blockSizeProblem,
  checkVolumeName,
  deleteOlderRecords,
  listVolumeRecords,
  newSession,
  newVolumeId,
  recordStamp,
  saveVolumeRecord,
  sizeProblem,
  type VolumeEntry,
  type VolumeRecord,
} from './record.js';

export const DEFAULT_BLOCK_SIZE = 64 * 1024;

export interface CreateOptions {
  name: string;
  size: number;
  blockSize?: number;
  tags?: string[];
  /** Told of records skipped while looking for a volume of the same name. */
  onSkipped?: (name: string, err: IntegrityError) => void;
}

/**
 * Makes a volume: commit 0 (an empty map, its head tree, a snapshot), then record seq 1 naming
 * it. The commit is what a release that reads no records meets: it cannot read the map, so its
 * prune refuses to run rather than delete blocks that only a head names.
 */
export async function createVolume(repo: Repository, o: CreateOptions): Promise<{ record: VolumeRecord; name: string }> {
  checkVolumeName(o.name);
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  const problem = blockSizeProblem(blockSize) ?? sizeProblem(o.size, blockSize);
  if (problem) throw new ScrateError(problem);
  const existing = await listVolumeRecords(repo, o.onSkipped);
  if (existing.some((v) => v.record.name === o.name)) throw new ScrateError(`a volume named ${JSON.stringify(o.name)} exists already`, 1, 'choose another name, or `scrate volume rm` it first');
  const volume = newVolumeId();
  const now = new Date();
  const map = await MutableBlockMap.create(mapDepthFor(o.size, blockSize), blockSize).persist(mapNodeSaver(repo));
  const tree = await volumeTree(repo, { name: o.name, size: o.size }, map, now);
  const commit = await saveCommit(repo, { volume: { volume, name: o.name }, tree, tags: o.tags });
  const record: VolumeRecord = {
    volume,
    name: o.name,
    size: o.size,
    blockSize,
    created: now.toISOString(),
    seq: 1,
    session: newSession(),
    ...recordStamp(repo),
    tree,
    commit,
    pending: false,
  };
  return { record, name: await saveVolumeRecord(repo, record) };
}

/**
 * Forgets a volume (under its lock): every record of it, and with `forgetCommits` every commit
 * snapshot naming it. Blocks stay until a prune finds nothing needs them.
 */
export async function removeVolume(repo: Repository, v: VolumeEntry, forgetCommits: boolean): Promise<{ records: number; commits: number }> {
  const records = await deleteOlderRecords(repo, v.record.volume);
  let commits = 0;
  if (forgetCommits) {
    for (const { id, snapshot } of await listSnapshots(repo)) {
      if (snapshot.volume !== v.record.volume) continue;
      await repo.backend.remove('snapshots', id);
      commits++;
    }
  }
  return { records, commits };
}

export interface VolumeStatus {
  entry: VolumeEntry;
  /** Bytes of blocks present in the head, or null when its map does not load (the error then). */
  allocated: number | null;
  error?: string;
  /** Who serves it now, from its live lock. */
  servedBy?: { holder: string; since: string };
}

/** Each volume's live record with what its head holds and who serves it (the index must be loaded). */
export async function volumeStatuses(repo: Repository, onSkipped?: (name: string, err: IntegrityError) => void): Promise<VolumeStatus[]> {
  const holders = await volumeHolders(repo);
  const out: VolumeStatus[] = [];
  for (const entry of await listVolumeRecords(repo, onSkipped)) {
    const status: VolumeStatus = { entry, allocated: null };
    const servedBy = holders.get(entry.record.volume);
    if (servedBy) status.servedBy = servedBy;
    try {
      const reader = repo.reader(entry.writer);
      status.allocated = await mapAllocatedBytes(reader, await headMap(reader, entry.record.tree, `volume ${entry.record.name}`));
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      status.error = err.message;
    }
    out.push(status);
  }
  return out;
}
