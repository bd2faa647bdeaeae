import { checkAborted, IntegrityError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { SnapshotEntry } from '../snapshot/snapshot.js';
import { displayName } from '../tree/node.js';
import type { BlockMapRef } from '../tree/block-map.js';
import { loadTree, openBlockMap } from '../tree/walk.js';

/** A blob a snapshot needs that the index has not (or a tree that did not load): why, and who needs it. */
export interface Lack {
  snapshot: string;
  /** The path in the snapshot (for a lost tree, its directory's). */
  path: string;
  what: string;
}

/**
 * What the snapshots need, as a byte per index entry (1: used), walking every tree of every
 * snapshot once: a tree already marked is not read again, so trees shared between snapshots
 * cost one read. Memory: the bytes, and one tree at a time.
 */
export interface Usage {
  used: Uint8Array;
  /** Trees that did not load and blobs the index lacks: what deleting by this usage could lose. */
  lacks: Lack[];
}

export async function computeUsage(repo: Repository, snapshots: SnapshotEntry[], opts: { signal?: AbortSignal; onProgress?: (what: string) => void } = {}): Promise<Usage> {
  const { index } = repo;
  const used = new Uint8Array(index.size);
  const lacks: Lack[] = [];
  for (const { id, snapshot, writer } of snapshots) {
    opts.onProgress?.(`snapshot ${id.slice(0, 8)}`);
    const reader = repo.reader(writer);
    const pending: { tree: Buffer; path: string }[] = [{ tree: Buffer.from(snapshot.tree, 'hex'), path: '/' }];
    while (pending.length) {
      checkAborted(opts.signal);
      const { tree, path } = pending.pop()!;
      const n = index.entryOf(BlobType.tree, tree, writer.no);
      if (n >= 0 && used[n]) continue;
      if (n >= 0) used[n] = 1;
      let nodes;
      try {
        nodes = await loadTree(reader, tree);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        lacks.push({ snapshot: id, path, what: err.message });
        continue;
      }
      for (const node of nodes) {
        const child = `${path === '/' ? '' : path}/${displayName(node.name)}`;
        const lack = (what: string) => lacks.push({ snapshot: id, path: child, what });
        if (node.subtree) pending.push({ tree: node.subtree, path: child });
        for (const blob of node.content ?? []) useData(blob, lack);
        if (node.blockMap) await useMap(node.blockMap, lack);
      }
    }

    function useData(blob: Buffer, lack: (what: string) => void): void {
      const e = index.entryOf(BlobType.data, blob, writer.no);
      if (e >= 0) used[e] = 1;
      else lack(`blob ${blob.toString('hex').slice(0, 12)} is not in the index`);
    }

    /** A volume's map: its nodes as trees (a subtree already marked is not read again), its blocks as data. */
    async function useMap(map: BlockMapRef, lack: (what: string) => void): Promise<void> {
      const visitNode = (node: Buffer) => {
        checkAborted(opts.signal);
        const n = index.entryOf(BlobType.tree, node, writer.no);
        if (n < 0) lack(`map node ${node.toString('hex').slice(0, 12)} is not in the index`);
        else if (used[n]) return false;
        else used[n] = 1;
        return n >= 0;
      };
      try {
        await openBlockMap(reader, map, { cacheBytes: 0 }).walk(visitNode, (blob) => useData(blob, lack));
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        lack(err.message);
      }
    }
  }
  return { used, lacks };
}
