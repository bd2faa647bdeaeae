import { checkAborted, IntegrityError } from '../errors.js';
import type { PackInfo } from '../repository/blob-index.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import { Writers } from '../repository/writers.js';
import { listSnapshots } from '../snapshot/snapshot.js';
import { headRoots, loadVolumeRecords } from '../volume/record.js';
import { DamageFinder } from './damage.js';
import { aboutPack, indexedPacks, readPack, type IndexedPackEntries } from './pack-reading.js';
import { selectPacks, type ReadSubset } from './subset.js';
import type { ProgressMeter } from '../util/progress.js';

export interface CheckOptions {
  /** Also download packs (every one, or a subset) and verify every blob in them. */
  readData?: boolean | ReadSubset;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
  /** --read-data: packs (as files) and their bytes read of those chosen. */
  progress?: ProgressMeter;
}

export type CheckErrorKind =
  /** An index file that does not load or is refused. */
  | 'index'
  /** A snapshot that does not load or is refused. */
  | 'snapshot'
  /** A volume record that does not load or is refused. */
  | 'volume'
  /** A pack the index lists that the repository does not have. */
  | 'pack-missing'
  /** A pack whose size is not the one its index entries make. */
  | 'pack-size'
  /** A pack read (--read-data) that is damaged: its bytes, its header, or blobs in it. */
  | 'pack-damaged'
  /** A blob a snapshot needs that no index lists. */
  | 'blob-missing'
  /** A tree that does not load (damaged, or not well-formed). */
  | 'tree';

/** A file or directory of a snapshot that something lost takes with it. */
export interface Dependent {
  snapshot: string;
  /** Its path in the snapshot; a directory's when its tree is what is lost. */
  path: string;
}

export interface CheckError {
  kind: CheckErrorKind;
  /** The object at fault, in full: a pack, blob or tree ID, an index file's or a snapshot's name. */
  object: string;
  /** One line. */
  message: string;
  dependents: Dependent[];
}

export interface CheckResult {
  snapshots: number;
  trees: number;
  /** Packs the index lists and the repository has. */
  packs: number;
  /** Packs read whole (--read-data, or the subset chosen). */
  packsRead: number;
  /** Packs in the repository that no index lists (left by interrupted runs): not an error. */
  unreferencedPacks: number;
  errors: CheckError[];
}

const MISSING = 'listed in the index but missing';

/**
 * Verifies a repository: every index file and snapshot is signed by a registered writer and
 * loads, every indexed pack is present with the size its index entries make, every tree the
 * snapshots reach loads (and is well-formed: sorted, unique, safe names), and every blob they
 * refer to is indexed among their writer's packs; with `readData`, packs are read whole, their
 * header compared with the index, and every blob in them decrypted and checked against its ID.
 * Each problem is reported once, with every file and directory of every snapshot that it costs.
 * Problems are collected, not thrown, so one damaged or forged object does not hide the next.
 * The index is loaded here (not by the caller), so that index files it skips are reported.
 */
export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  repo.requireRead();
  const found = new Found();
  await repo.loadIndex((message, skipped) => {
    // Other warnings are about missing packs, which are reported one by one below.
    if (skipped) found.error('index', skipped, message);
  });
  const { index } = repo;
  const sizes = new Map<string, number>();
  for await (const { name, size } of repo.backend.list('data')) sizes.set(name, size);
  const indexedEntries = indexedPacks(repo);

  const result: CheckResult = { snapshots: 0, trees: 0, packs: 0, packsRead: 0, unreferencedPacks: 0, errors: [] };
  const present = new Map<string, number>();
  index.packs.forEach((pack, p) => {
    const id = pack.id.toString('hex');
    const size = sizes.get(id);
    if (size === undefined) {
      found.packError(repo, pack, 'pack-missing', MISSING);
      return;
    }
    present.set(id, size);
    const { entries } = indexedEntries(p);
    const end = entries.reduce((at, e) => Math.max(at, e.offset + e.length), 0);
    const expected = repo.codec.packSize(end, entries.length);
    if (size !== expected) found.packError(repo, pack, 'pack-size', `${size} bytes, but the index says ${expected}`);
  });
  result.packs = present.size;
  for (const name of sizes.keys()) if (!present.has(name)) result.unreferencedPacks++;

  if (opts.readData) {
    const chosen = opts.readData === true ? new Set(present.keys()) : selectPacks(present, opts.readData);
    const { progress } = opts;
    if (progress) {
      progress.totalFiles = chosen.size;
      for (const id of chosen) progress.totalBytes += present.get(id)!;
      progress.totalsFinal = true;
    }
    for (let p = 0; p < index.packs.length; p++) {
      const id = index.packs[p]!.id.toString('hex');
      if (!chosen.has(id)) continue;
      checkAborted(opts.signal);
      opts.onProgress?.(`pack ${id.slice(0, 8)}`);
      if (progress) progress.current[0] = `pack ${id.slice(0, 8)}`;
      await found.examine(repo, id, indexedEntries(p));
      if (progress) {
        progress.filesDone++;
        progress.bytesDone += present.get(id)!;
        progress.errors = found.errors.length;
      }
    }
    result.packsRead = chosen.size;
  }

  // Their messages name them.
  const snapshots = await listSnapshots(repo, (id, err) => found.error('snapshot', id, err.message));
  const missingPacks = packsOfMissingBlobs(repo);
  const lostBlob = (reader: BlobReader, type: BlobType, id: Buffer): CheckError | undefined => {
    const loc = reader.find(type, id);
    if (loc) return found.damagedIn(loc.pack, id);
    const gone = missingPacks.get(blobKey(reader.writer.no, type, id));
    if (gone) return found.packError(repo, gone, 'pack-missing', MISSING);
    return found.error('blob-missing', id.toString('hex'), `${type === BlobType.tree ? 'tree' : 'blob'} ${id.toString('hex').slice(0, 12)} of writer ${Writers.label(reader.writer)} is not in the index`);
  };
  const finder = new DamageFinder<CheckError>(
    lostBlob,
    (reader, id, err) => lostBlob(reader, BlobType.tree, id) ?? found.error('tree', id.toString('hex'), `tree ${id.toString('hex').slice(0, 12)} (writer ${Writers.label(reader.writer)}): ${err.message}`),
    opts.signal,
  );
  for (const { id, snapshot, writer } of snapshots) {
    opts.onProgress?.(`snapshot ${id.slice(0, 8)}`);
    if (opts.progress) opts.progress.current[0] = `snapshot ${id.slice(0, 8)}`;
    result.snapshots++;
    for (const { path, cause } of await finder.lossesBelow(repo.reader(writer), Buffer.from(snapshot.tree, 'hex'))) cause.dependents.push({ snapshot: id, path: path || '/' });
  }
  // Volume heads, as snapshots: the dependents of what they lose are named by their record.
  for (const { id, snapshot, writer } of headRoots(await loadVolumeRecords(repo, (name, err) => found.error('volume', name, err.message)))) {
    for (const { path, cause } of await finder.lossesBelow(repo.reader(writer), Buffer.from(snapshot.tree, 'hex'))) cause.dependents.push({ snapshot: id, path: path || '/' });
  }
  result.trees = finder.trees;
  result.errors = found.errors;
  return result;
}

/** The problems found, each once (keyed by what it is about), and the damaged blobs of the packs read. */
class Found {
  private readonly byKey = new Map<string, CheckError>();
  private readonly damaged = new Map<PackInfo, { error: CheckError; blobs: Set<string> }>();

  get errors(): CheckError[] {
    return [...this.byKey.values()];
  }

  error(kind: CheckErrorKind, object: string, message: string, key = `${kind}:${object}`): CheckError {
    let e = this.byKey.get(key);
    if (!e) this.byKey.set(key, (e = { kind, object, message, dependents: [] }));
    return e;
  }

  /** A pack's problem; a pack is listed per writer, and another writer's claim of it is another problem. */
  packError(repo: Repository, pack: PackInfo, kind: CheckErrorKind, detail: string): CheckError {
    const id = pack.id.toString('hex');
    const claim = pack.writer === repo.writers.full?.no ? '' : ` (writer ${Writers.label(repo.writers.byNo(pack.writer))})`;
    return this.error(kind, id, `pack ${id.slice(0, 12)}${claim}: ${detail}`, `${kind}:${pack.writer}:${id}`);
  }

  /** Reads a pack whole: a problem if anything in it is wrong, and which of its blobs are damaged. */
  async examine(repo: Repository, id: string, indexed: IndexedPackEntries): Promise<void> {
    try {
      const { problems, damaged } = await readPack(repo, id, indexed);
      if (problems.length === 0 && damaged.length === 0) return;
      const blobs = damaged.length ? [`${damaged.length} damaged blob(s) (${damaged[0]!.why}${damaged.length > 1 ? ', …' : ''})`] : [];
      const error = this.packError(repo, indexed.info, 'pack-damaged', [...problems, ...blobs].join('; '));
      this.damaged.set(indexed.info, { error, blobs: new Set(damaged.map((d) => d.entry.id.toString('hex'))) });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      // Nothing of it can be read: every blob the index lists in it is lost.
      const error = this.packError(repo, indexed.info, 'pack-damaged', aboutPack(id, err.message));
      this.damaged.set(indexed.info, { error, blobs: new Set(indexed.entries.map((e) => e.id.toString('hex'))) });
    }
  }

  /** The error of a pack read whole in which this blob is damaged, if it is. */
  damagedIn(pack: PackInfo, id: Buffer): CheckError | undefined {
    const d = this.damaged.get(pack);
    return d?.blobs.has(id.toString('hex')) ? d.error : undefined;
  }
}

function blobKey(writer: number, type: BlobType, id: Uint8Array): string {
  return `${writer}:${type}:${Buffer.from(id).toString('hex')}`;
}

/** The missing packs that listed each blob the index has lost with them. */
function packsOfMissingBlobs(repo: Repository): Map<string, PackInfo> {
  const { index } = repo;
  const out = new Map<string, PackInfo>();
  for (let n = 0; n < index.size; n++) {
    const e = index.entry(n);
    const pack = index.packs[e.pack]!;
    if (pack.missing) out.set(blobKey(pack.writer, pack.type, e.id), pack);
  }
  return out;
}
