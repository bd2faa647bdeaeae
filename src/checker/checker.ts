import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { loadSnapshot } from '../snapshot/snapshot.js';
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
 * Verifies a repository: every snapshot loads, every tree they reach loads, every blob they
 * refer to is indexed, every indexed pack exists; with `readData`, every pack is read whole, its
 * header compared with the index, and every blob in it decrypted and checked against its ID. Problems are
 * collected, not thrown, so one damaged object does not hide the next.
 */
export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  const result: CheckResult = { snapshots: 0, trees: 0, packs: 0, unreferencedPacks: 0, errors: [] };
  const fail = (what: string, err: unknown) => {
    if (!(err instanceof IntegrityError) && !(err instanceof ScrateError && err.exitCode === ExitCode.fatal)) throw err;
    result.errors.push(`${what}: ${(err as Error).message}`);
  };
  const aborted = () => {
    if (opts.signal?.aborted) throw new ScrateError('interrupted', ExitCode.interrupted);
  };

  const sizes = new Map<string, number>();
  for await (const { name, size } of repo.backend.list('data')) sizes.set(name, size);
  for (const pack of repo.index.packs) {
    const id = pack.id.toString('hex');
    if (!sizes.has(id)) result.errors.push(`pack ${id.slice(0, 12)} is listed in the index but missing`);
  }
  const indexed = new Set(repo.index.packs.map((p) => p.id.toString('hex')));
  for (const name of sizes.keys()) if (!indexed.has(name)) result.unreferencedPacks++;

  const seenTrees = new Set<string>();
  for (const id of await repo.listNames('snapshots')) {
    aborted();
    opts.onProgress?.(`snapshot ${id.slice(0, 8)}`);
    let tree: string;
    try {
      tree = (await loadSnapshot(repo, id)).tree;
      result.snapshots++;
    } catch (err) {
      fail(`snapshot ${id.slice(0, 8)}`, err);
      continue;
    }
    const pending = [tree];
    while (pending.length) {
      const t = pending.pop()!;
      if (seenTrees.has(t)) continue;
      seenTrees.add(t);
      aborted();
      try {
        for (const node of await loadTree(repo, Buffer.from(t, 'hex'))) {
          if (node.subtree) pending.push(node.subtree.toString('hex'));
          for (const blob of node.content ?? []) {
            if (!repo.index.has(blob)) result.errors.push(`blob ${blob.toString('hex').slice(0, 12)} of ${node.name.toString()} (snapshot ${id.slice(0, 8)}) is not in the index`);
          }
        }
        result.trees++;
      } catch (err) {
        fail(`tree ${t.slice(0, 12)} (snapshot ${id.slice(0, 8)})`, err);
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
        await checkPack(repo, id);
        result.packs++;
      } catch (err) {
        fail(`pack ${id.slice(0, 12)}`, err);
      }
    }
  }
  return result;
}

async function checkPack(repo: Repository, id: string): Promise<void> {
  const what = `pack ${id.slice(0, 12)}`;
  const { bytes, envelope, entries } = await repo.loadPack(id);
  const packId = Buffer.from(id, 'hex');
  for (const e of entries) {
    const loc = repo.index.find(e.id);
    if (loc?.pack.id.equals(packId) && (loc.offset !== e.offset || loc.length !== e.length || loc.rawLength !== e.rawLength || loc.compressed !== e.compressed)) {
      throw new IntegrityError(what, `the index disagrees with the pack's header about blob ${e.id.toString('hex').slice(0, 12)}`);
    }
    repo.decodeBlob(e.id, { pack: { id: packId, type: e.type, envelope }, offset: e.offset, length: e.length, rawLength: e.rawLength, compressed: e.compressed }, bytes.subarray(e.offset, e.offset + e.length));
  }
}
