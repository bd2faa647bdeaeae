import { DamageFinder } from '../checker/damage.js';
import { checkAborted } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import { rewrittenSnapshot } from '../snapshot/rewrite.js';
import { listSnapshots, saveSnapshot, type SnapshotEntry } from '../snapshot/snapshot.js';
import { encodeTree, type Node } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';
import { requireFullKey, WriterPackers, type RepairOptions } from './repair-shared.js';

export interface RepairSnapshotsOptions extends RepairOptions {
  /** Remove each damaged snapshot once its repaired one is stored. */
  forget?: boolean;
  /** Only say what would be done. */
  dryRun?: boolean;
}

export interface RepairedSnapshot {
  original: string;
  /** The new snapshot (none in a dry run). */
  repaired?: string;
  /** Its root tree is lost: nothing is left to keep, and no new snapshot is written. */
  rootLost: boolean;
  /** The files and directories left out, and why. */
  lost: { path: string; why: string }[];
  forgotten: boolean;
}

/** The tag every repaired snapshot carries, as restic's. */
export const REPAIRED_TAG = 'repaired';

/**
 * Writes again each snapshot that has lost something (a blob no pack holds, a tree that does
 * not load), without what it lost, as restic's `repair snapshots`, with one difference: a file
 * that lost any of its blobs is left out whole, where restic keeps it without the missing parts
 * (shorter, its later bytes moved up), which no one could tell from the file it was. A restore of
 * a repaired snapshot therefore gives each file exact or not at all. A directory whose tree does
 * not load becomes empty; a snapshot whose root tree is lost is not written again.
 *
 * The new snapshot keeps every field, adds the tag "repaired", names the snapshot it replaces
 * (`original`) and is signed by this full key; its trees are its own writer's blobs (a full key
 * derives every writer's blob-ID key), which it names (`writer`) when that is not the full writer.
 * The trees are stored before the snapshots; the originals are removed only with `forget`.
 * `repair packs` first: a blob damaged inside a pack the index still lists is not lost here.
 */
export async function repairSnapshots(repo: Repository, opts: RepairSnapshotsOptions = {}): Promise<RepairedSnapshot[]> {
  requireFullKey(repo);
  const finder = new DamageFinder<string>(
    (reader, type, id) => (reader.find(type, id) ? undefined : `${type === BlobType.tree ? 'tree' : 'blob'} ${id.toString('hex').slice(0, 12)} is not in the index`),
    (_reader, _id, err) => err.message,
    opts.signal,
  );
  const trees = new TreeRewriter(repo, finder);
  const repairs: { entry: SnapshotEntry; root?: Buffer; report: RepairedSnapshot }[] = [];
  for (const entry of await listSnapshots(repo)) {
    opts.onProgress?.(`snapshot ${entry.id.slice(0, 8)}`);
    const reader = repo.reader(entry.writer);
    const root = Buffer.from(entry.snapshot.tree, 'hex');
    const losses = await finder.lossesBelow(reader, root);
    if (losses.length === 0) continue;
    const rootLost = losses.some((l) => l.path === '');
    const report: RepairedSnapshot = { original: entry.id, rootLost, lost: losses.map((l) => ({ path: l.path || '/', why: l.cause })), forgotten: false };
    repairs.push({ entry, report, root: rootLost || opts.dryRun ? undefined : await trees.rewrite(reader, root) });
  }
  if (opts.dryRun) return repairs.map((r) => r.report);
  // The trees are stored, and indexed, before the snapshots that refer to them.
  await trees.flush();
  for (const { entry, root, report } of repairs) {
    checkAborted(opts.signal);
    if (root) report.repaired = await saveSnapshot(repo, rewrittenSnapshot(repo, entry, { tree: root.toString('hex'), tags: withRepairedTag(entry.snapshot.tags) }));
    if (opts.forget) {
      await repo.backend.remove('snapshots', entry.id);
      report.forgotten = true;
    }
  }
  return repairs.map((r) => r.report);
}

function withRepairedTag(tags: string[]): string[] {
  return tags.includes(REPAIRED_TAG) ? tags : [...tags, REPAIRED_TAG];
}

/** Writes trees again without what they lost, each once per writer, as blobs of that writer. */
class TreeRewriter {
  private readonly rewritten = new Map<string, Buffer>();
  private readonly packers: WriterPackers;

  constructor(
    private readonly repo: Repository,
    private readonly finder: DamageFinder<string>,
  ) {
    this.packers = new WriterPackers(repo);
  }

  /** The ID of tree `id` without what it lost (itself, when it lost nothing). */
  async rewrite(reader: BlobReader, id: Buffer): Promise<Buffer> {
    const losses = await this.finder.lossesBelow(reader, id);
    if (losses.length === 0) return id;
    const key = `${reader.writer.no}:${id.toString('hex')}`;
    let done = this.rewritten.get(key);
    if (!done) {
      // A tree that does not load is an empty directory now.
      const nodes = losses.some((l) => l.path === '') ? [] : await this.kept(reader, id);
      const blob = this.repo.prepare(BlobType.tree, encodeTree(nodes), reader.writer);
      await this.packers.of(reader.writer).add(BlobType.tree, blob);
      this.rewritten.set(key, (done = blob.id));
    }
    return done;
  }

  flush(): Promise<void> {
    return this.packers.flush();
  }

  private async kept(reader: BlobReader, id: Buffer): Promise<Node[]> {
    const nodes: Node[] = [];
    for (const node of await loadTree(reader, id)) {
      if ((await this.finder.fileLosses(reader, node)).size > 0) continue;
      nodes.push(node.subtree ? { ...node, subtree: await this.rewrite(reader, node.subtree) } : node);
    }
    return nodes;
  }
}
