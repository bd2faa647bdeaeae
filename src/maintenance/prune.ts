import { checkAborted, RefusedError, ScrateError } from '../errors.js';
import { encodePackRecord } from '../repository/index-file.js';
import { liveLockStarts, type Lock } from '../repository/lock.js';
import { loadMarks, saveMarks } from '../repository/marks.js';
import type { PackEntry } from '../repository/pack.js';
import { Packer } from '../repository/packer.js';
import { unsealBlob, type Repository } from '../repository/repository.js';
import { listSnapshots } from '../snapshot/snapshot.js';
import { headRoots, loadVolumeRecords } from '../volume/record.js';
import { computeUsage, type Lack } from './usage.js';
import type { ProgressMeter } from '../util/progress.js';

export interface PruneOptions {
  /** Unused bytes tolerated in packs kept as they are: a share of the used bytes (restic's `5%`), or bytes. */
  maxUnused: { percent: number } | { bytes: number } | 'unlimited';
  /** Bytes of packs repacked in one run at most. */
  maxRepackSize?: number;
  dryRun?: boolean;
  /** The lock held: exclusive, or shared beside backups (then unused packs are only marked). */
  lock?: Lock;
  /** How long a marked pack stays before a later prune may delete it (ms). */
  deleteAfterMs: number;
  signal?: AbortSignal;
  /** Told of index files the index was loaded without (damaged or refused). */
  onWarning?: (message: string) => void;
  onProgress?: (what: string) => void;
  /** The packs to repack (as files) and their used bytes, done of the total. */
  progress?: ProgressMeter;
}

export interface PruneStats {
  snapshots: number;
  packs: { total: number; kept: number; repacked: number; deleted: number; marked: number; unmarked: number; junk: number };
  bytes: { total: number; used: number; unused: number; freed: number; repacked: number; unusedAfter: number };
  /** Packs marked before and kept marked: their time has not come, or a backup older than the mark still runs. */
  waiting: number;
  /** Whether deletion was immediate (an exclusive lock) or two-phase (beside backups). */
  exclusive: boolean;
}

/** What happens to one pack. */
const enum Fate {
  keep,
  repack,
  /** Deleted now: unused, and nothing else runs (or its mark has expired). */
  delete,
  /** Marked for deletion by a later prune (unused, beside running backups). */
  mark,
}

interface PackUse {
  usedBytes: number;
  unusedBytes: number;
  used: number;
  fate: Fate;
  markedAt: number;
}

/**
 * Gives back the space of blobs no snapshot needs (docs/DESIGN.md, "Prune"). Computes what
 * every snapshot of every writer and every volume head needs (a byte per index entry), then per pack: keeps it,
 * repacks the blobs still used out of partly used ones, or deletes it. The new index is
 * written before anything is deleted, so a crash leaves at worst packs no index lists (junk a
 * later prune removes). With an exclusive lock nothing else runs and unused packs go at once;
 * beside running backups (a shared lock) they are first marked in the index and in a marks
 * object (no backup deduplicates against a marked pack), and a later prune deletes them once
 * still unused, `deleteAfterMs` after every backup starting sees the mark, and when no backup
 * that started before that is still alive. Refuses to run when any snapshot, volume record or tree is damaged
 * or a needed blob is missing: what it needs would be unknown.
 *
 * The repository comes without its index: the order of what is read decides what a backup
 * running beside can slip past. Locks first: a backup older than a mark that has ended since
 * has written its snapshot before removing its lock, so the snapshots listed next show it. The
 * index last: every snapshot listed has its blobs in index files written before it.
 */
export async function prune(repo: Repository, opts: PruneOptions): Promise<PruneStats> {
  repo.requireRead();
  const exclusive = opts.lock?.exclusive ?? true;
  const now = Date.now();
  const running = exclusive ? [] : await liveLockStarts(repo, opts.lock);
  const damaged: string[] = [];
  const snapshots = await listSnapshots(repo, (id, err) => {
    if (!(err instanceof RefusedError)) damaged.push(`snapshot ${id.slice(0, 8)}: ${err.message}`);
  });
  // Volume heads after the snapshots, before the index: a head names only blobs whose index
  // files were written before it, so the index read next lists them all.
  const heads = await loadVolumeRecords(repo, (name, err) => {
    if (!(err instanceof RefusedError)) damaged.push(`volume record ${name.slice(0, 8)}: ${err.message}`);
  });
  if (damaged.length) throw unsafe(damaged);
  await repo.loadIndex(opts.onWarning);
  const present = await repo.listNames('data');
  const { seen: marksSeen, objects: oldMarks } = await loadMarks(repo);
  opts.onProgress?.('finding what the snapshots need');
  const { used, lacks } = await computeUsage(repo, [...snapshots, ...headRoots(heads)], opts);
  if (lacks.length) throw unsafe(lacks.map(describeLack));

  const { index } = repo;
  const packCount = index.packs.length;
  const uses: PackUse[] = index.packs.map((p) => ({ usedBytes: 0, unusedBytes: 0, used: 0, fate: Fate.keep, markedAt: p.markedAt ?? 0 }));
  for (let n = 0; n < index.size; n++) {
    const { pack, length } = index.entry(n);
    const u = uses[pack]!;
    if (used[n]) {
      u.used++;
      u.usedBytes += length;
    } else {
      u.unusedBytes += length;
    }
  }
  const stats: PruneStats = {
    snapshots: snapshots.length,
    packs: { total: 0, kept: 0, repacked: 0, deleted: 0, marked: 0, unmarked: 0, junk: 0 },
    bytes: { total: 0, used: 0, unused: 0, freed: 0, repacked: 0, unusedAfter: 0 },
    waiting: 0,
    exclusive,
  };
  const indexedNames = new Set<string>();
  const candidates: number[] = [];
  for (let p = 0; p < packCount; p++) {
    const pack = index.packs[p]!;
    const u = uses[p]!;
    indexedNames.add(pack.id.toString('hex'));
    if (pack.missing) continue;
    stats.packs.total++;
    stats.bytes.total += u.usedBytes + u.unusedBytes;
    stats.bytes.used += u.usedBytes;
    stats.bytes.unused += u.unusedBytes;
    if (u.used > 0) {
      if (u.markedAt) stats.packs.unmarked++;
      u.markedAt = 0;
      if (u.unusedBytes > 0) candidates.push(p);
      continue;
    }
    const seen = marksSeen.get(pack.id.toString('hex')) ?? 0;
    if (u.markedAt === 0) {
      u.fate = exclusive ? Fate.delete : Fate.mark;
      u.markedAt = exclusive ? 0 : now;
    } else if (exclusive || (seen > 0 && now - seen >= opts.deleteAfterMs && running.every((started) => started >= seen))) {
      u.fate = Fate.delete;
    } else {
      u.fate = Fate.mark;
      stats.waiting++;
    }
  }
  chooseRepacks(uses, candidates, opts, stats);
  for (const u of uses.slice(0, packCount)) {
    if (u.fate === Fate.keep) stats.bytes.unusedAfter += u.unusedBytes;
    if (u.fate === Fate.delete) stats.bytes.freed += u.usedBytes + u.unusedBytes;
  }
  const junk = present.filter((name) => !indexedNames.has(name));
  // Packs no index lists: left by interrupted runs, or being uploaded by a running backup.
  if (exclusive) stats.packs.junk = junk.length;
  for (const u of uses) {
    if (u.fate === Fate.keep) stats.packs.kept++;
    if (u.fate === Fate.delete) stats.packs.deleted++;
    if (u.fate === Fate.mark && u.markedAt === now) stats.packs.marked++;
  }
  if (opts.dryRun) return stats;

  if (opts.progress) {
    opts.progress.totalFiles = stats.packs.repacked;
    opts.progress.totalBytes = stats.bytes.repacked;
    opts.progress.totalsFinal = true;
  }
  await repack(repo, uses, used, opts, exclusive, now);
  checkAborted(opts.signal);
  opts.onProgress?.('writing the new index');
  // The new index first, then the old index files go: a crash in between leaves both, listing the same packs.
  const marked = await writeIndex(repo, uses, packCount);
  await saveMarksSeen(repo, marked, marksSeen, opts.lock);
  for (const name of repo.indexFiles) await repo.backend.remove('index', name);
  for (const name of oldMarks) await repo.backend.remove('marks', name);
  opts.onProgress?.('deleting packs');
  for (let p = 0; p < packCount; p++) {
    if (uses[p]!.fate === Fate.delete || (uses[p]!.fate === Fate.repack && exclusive)) await repo.backend.remove('data', index.packs[p]!.id.toString('hex'));
  }
  if (exclusive) for (const name of junk) await repo.backend.remove('data', name);
  return stats;
}

/**
 * Writes the marks object: each mark with the time since which every backup that starts sees
 * it. A mark new to it (this prune's, or one whose marks object a crash prevented) is seen by
 * full keys from the end of the index write, before now; by write-only keys only once the
 * object is written. A backup that started while it was being written may have missed it:
 * then those marks are written again as not yet seen (0), for the next prune to date.
 */
async function saveMarksSeen(repo: Repository, marked: string[], before: ReadonlyMap<string, number>, own: Lock | undefined): Promise<void> {
  const indexed = Date.now();
  const seen = new Map(marked.map((id) => [id, before.get(id) || indexed]));
  const written = await saveMarks(repo, seen);
  if (!written || (await liveLockStarts(repo, own)).every((started) => started < indexed)) return;
  for (const id of marked) if (!before.get(id)) seen.set(id, 0);
  await saveMarks(repo, seen);
  await repo.backend.remove('marks', written);
}

function unsafe(problems: string[]): ScrateError {
  return new ScrateError(`prune would not know what is needed: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, 1, 'run `scrate check`, then `scrate repair` or forget the damaged snapshots');
}

function describeLack(l: Lack): string {
  return `snapshot ${l.snapshot.slice(0, 8)}, ${l.path}: ${l.what}`;
}

/**
 * As restic: repack the partly used packs with the most unused bytes first until what stays
 * unused is within `maxUnused` (a share of the used bytes), and within `maxRepackSize`.
 */
function chooseRepacks(uses: PackUse[], candidates: number[], opts: PruneOptions, stats: PruneStats): void {
  const allowed =
    opts.maxUnused === 'unlimited' ? Infinity : 'bytes' in opts.maxUnused ? opts.maxUnused.bytes : (stats.bytes.used * opts.maxUnused.percent) / (100 - opts.maxUnused.percent);
  let unused = candidates.reduce((n, p) => n + uses[p]!.unusedBytes, 0);
  let repacked = 0;
  for (const p of candidates.sort((a, b) => uses[b]!.unusedBytes / (uses[b]!.unusedBytes + uses[b]!.usedBytes) - uses[a]!.unusedBytes / (uses[a]!.unusedBytes + uses[a]!.usedBytes))) {
    const u = uses[p]!;
    if (unused <= allowed || repacked + u.usedBytes > (opts.maxRepackSize ?? Infinity)) break;
    u.fate = Fate.repack;
    unused -= u.unusedBytes;
    repacked += u.usedBytes;
    stats.packs.repacked++;
    stats.bytes.repacked += u.usedBytes;
    stats.bytes.freed += u.unusedBytes;
  }
}

/**
 * Copies the used blobs of the packs to repack into new packs of the same writers, each blob
 * decrypted, checked against its ID and sealed anew as stored (not recompressed). The old
 * packs are then deleted (exclusive) or marked.
 */
async function repack(repo: Repository, uses: PackUse[], used: Uint8Array, opts: PruneOptions, exclusive: boolean, now: number): Promise<void> {
  const { index } = repo;
  const byPack = entriesByPack(repo, uses.length);
  const packers = new Map<number, Packer>();
  for (let p = 0; p < uses.length; p++) {
    const u = uses[p]!;
    if (u.fate !== Fate.repack) continue;
    checkAborted(opts.signal);
    const pack = index.packs[p]!;
    const packId = pack.id.toString('hex');
    opts.onProgress?.(`repacking ${packId.slice(0, 8)}`);
    const writer = repo.writers.byNo(pack.writer);
    let packer = packers.get(pack.writer);
    if (!packer) packers.set(pack.writer, (packer = new Packer(repo, writer)));
    const { bytes, envelope } = await repo.loadPack(packId);
    const key = repo.packKey(packId, envelope);
    for (const n of packEntries(byPack, p)) {
      if (!used[n]) continue;
      const e = index.entry(n);
      if (opts.progress) opts.progress.bytesDone += e.length;
      const { stored } = unsealBlob(key, writer.chunkIdKey, e.id, e, bytes.subarray(e.offset, e.offset + e.length), packId);
      // Claimed as new: the index still finds the blob in the old pack.
      await packer.put(pack.type, { id: Buffer.from(e.id), stored: Buffer.from(stored), compressed: e.compressed, rawLength: e.rawLength });
    }
    if (!exclusive) u.markedAt = now;
    if (opts.progress) opts.progress.filesDone++;
  }
  for (const packer of packers.values()) await packer.flush();
}

/**
 * The entry numbers of each pack's blobs (of the first `packCount` packs): pack p's are
 * entries[starts[p] … starts[p + 1]). Four bytes an entry, sorted by counting.
 */
export function entriesByPack(repo: Repository, packCount: number): { entries: Int32Array; starts: Int32Array } {
  const { index } = repo;
  const starts = new Int32Array(packCount + 1);
  for (let n = 0; n < index.size; n++) {
    const { pack } = index.entry(n);
    if (pack < packCount) starts[pack + 1]!++;
  }
  for (let p = 0; p < packCount; p++) starts[p + 1]! += starts[p]!;
  const next = starts.slice(0, packCount);
  const entries = new Int32Array(starts[packCount]!);
  for (let n = 0; n < index.size; n++) {
    const { pack } = index.entry(n);
    if (pack < packCount) entries[next[pack]!++] = n;
  }
  return { entries, starts };
}

export function packEntries(byPack: { entries: Int32Array; starts: Int32Array }, p: number): Int32Array {
  return byPack.entries.subarray(byPack.starts[p]!, byPack.starts[p + 1]!);
}

/** Index files of every pack that stays (kept, or marked), in files of at most this many blobs. */
const BLOBS_PER_INDEX_FILE = 100_000;

/** Writes the index of the packs that stay; returns the names of those marked for deletion. */
async function writeIndex(repo: Repository, uses: PackUse[], packCount: number): Promise<string[]> {
  const { index } = repo;
  const byPack = entriesByPack(repo, packCount);
  const marked: string[] = [];
  let records: Buffer[] = [];
  let blobs = 0;
  for (let p = 0; p < packCount; p++) {
    const pack = index.packs[p]!;
    const u = uses[p]!;
    // Repacked packs stay listed (marked) until deleted: a backup beside may still read them.
    const stays = !pack.missing && (u.fate === Fate.keep || u.fate === Fate.mark || (u.fate === Fate.repack && u.markedAt > 0));
    if (!stays) continue;
    if (u.markedAt) marked.push(pack.id.toString('hex'));
    const entries: PackEntry[] = Array.from(packEntries(byPack, p), (n) => {
      const e = index.entry(n);
      return { type: pack.type, id: Buffer.from(e.id), offset: e.offset, length: e.length, rawLength: e.rawLength, compressed: e.compressed };
    });
    records.push(encodePackRecord({ id: pack.id, type: pack.type, writer: repo.writers.byNo(pack.writer).id, envelope: pack.envelope, markedAt: u.markedAt }, entries));
    blobs += entries.length;
    if (blobs >= BLOBS_PER_INDEX_FILE) {
      await repo.saveIndexFile(records);
      records = [];
      blobs = 0;
    }
  }
  if (records.length) await repo.saveIndexFile(records);
  return marked;
}
