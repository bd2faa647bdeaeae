import { checkAborted, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import { decodeSealedBlob, type Repository } from '../repository/repository.js';
import { Writers } from '../repository/writers.js';
import { listSnapshots } from '../snapshot/snapshot.js';
import { displayName } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';

export interface CheckOptions {
  /** Also download every pack and verify every blob in it. */
  readData?: boolean;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
}

export interface CheckResult {
  snapshots: number;
  trees: number;
  packs: number;
  /** Packs in the repository that no index lists (left by an interrupted backup). */
  unreferencedPacks: number;
  /** One line per problem found. */
  errors: string[];
}

/**
 * Verifies a repository: every index file and snapshot is signed by a registered writer and
 * loads, every tree they reach loads (and is well-formed: sorted, unique, safe names), every
 * blob they refer to is indexed among their writer's packs, every indexed pack exists; with
 * `readData`, every pack is read whole, its header compared with the index, and every blob in
 * it decrypted and checked against its ID. Problems are collected, not thrown, so one damaged
 * or forged object does not hide the next. The index is loaded here (not by the caller), so
 * that index files it skips are reported.
 */
export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  repo.requireRead();
  const result: CheckResult = { snapshots: 0, trees: 0, packs: 0, unreferencedPacks: 0, errors: [] };
  const fail = (what: string, err: unknown) => {
    if (!(err instanceof IntegrityError) && !(err instanceof ScrateError && err.exitCode === ExitCode.fatal)) throw err;
    result.errors.push(`${what}: ${(err as Error).message}`);
  };
  const aborted = () => {
    checkAborted(opts.signal);
  };
  await repo.loadIndex((m) => result.errors.push(m));

  const sizes = new Map<string, number>();
  for await (const { name, size } of repo.backend.list('data')) sizes.set(name, size);
  for (const pack of repo.index.packs) {
    const id = pack.id.toString('hex');
    if (!sizes.has(id)) result.errors.push(`pack ${id.slice(0, 12)} is listed in the index but missing`);
  }
  const indexed = new Set(repo.index.packs.map((p) => p.id.toString('hex')));
  for (const name of sizes.keys()) if (!indexed.has(name)) result.unreferencedPacks++;

  const seenTrees = new Set<string>();
  const snapshots = await listSnapshots(repo, (id, err) => fail(`snapshot ${id.slice(0, 8)}`, err));
  for (const { id, snapshot, writer } of snapshots) {
    aborted();
    opts.onProgress?.(`snapshot ${id.slice(0, 8)}`);
    result.snapshots++;
    const reader = repo.reader(writer);
    const pending = [snapshot.tree];
    while (pending.length) {
      const t = pending.pop()!;
      // A tree is a writer's: the same ID under two writers is two trees.
      const key = `${writer.no}:${t}`;
      if (seenTrees.has(key)) continue;
      seenTrees.add(key);
      aborted();
      try {
        for (const node of await loadTree(reader, Buffer.from(t, 'hex'))) {
          if (node.subtree) pending.push(node.subtree.toString('hex'));
          for (const blob of node.content ?? []) {
            if (!reader.find(BlobType.data, blob)) result.errors.push(`blob ${blob.toString('hex').slice(0, 12)} of ${displayName(node.name)} (snapshot ${id.slice(0, 8)}) is not in the index`);
          }
        }
        result.trees++;
      } catch (err) {
        fail(`tree ${t.slice(0, 12)} (snapshot ${id.slice(0, 8)}, writer ${Writers.label(writer)})`, err);
      }
    }
  }

  if (opts.readData) {
    for (const pack of repo.index.packs) {
      aborted();
      const id = pack.id.toString('hex');
      if (!sizes.has(id)) continue;
      opts.onProgress?.(`pack ${id.slice(0, 8)}`);
      try {
        await checkPack(repo, id, pack.writer);
        result.packs++;
      } catch (err) {
        fail(`pack ${id.slice(0, 12)}`, err);
      }
    }
  }
  return result;
}

/** Reads a pack whole: its header must agree with the index, and every blob must decrypt to its ID under its writer's key. */
async function checkPack(repo: Repository, id: string, writerNo: number): Promise<void> {
  const what = `pack ${id.slice(0, 12)}`;
  const writer = repo.writers.byNo(writerNo);
  const { bytes, envelope, header } = await repo.loadPack(id);
  if (!header.writer.equals(writer.id)) throw new IntegrityError(what, `its header names writer ${header.writer.toString('hex').slice(0, 8)}, the index ${Writers.label(writer)}`);
  const packId = Buffer.from(id, 'hex');
  const key = repo.packKey(id, envelope);
  for (const e of header.entries) {
    const loc = repo.index.find(e.type, e.id, writerNo);
    if (loc?.pack.id.equals(packId) && (loc.offset !== e.offset || loc.length !== e.length || loc.rawLength !== e.rawLength || loc.compressed !== e.compressed)) {
      throw new IntegrityError(what, `the index disagrees with the pack's header about blob ${e.id.toString('hex').slice(0, 12)}`);
    }
    decodeSealedBlob(key, writer.chunkIdKey, e.id, e, bytes.subarray(e.offset, e.offset + e.length), id);
  }
}
