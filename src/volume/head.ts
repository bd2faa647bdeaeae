import os from 'node:os';
import { VERSION } from '../archiver/archiver.js';
import { IntegrityError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import { saveSnapshot, type BackupSummary, type Snapshot } from '../snapshot/snapshot.js';
import type { BlockMapRef, SaveMapNode } from '../tree/block-map.js';
import { encodeTree, type Node } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';
import { SECTOR, type VolumeRecord } from './record.js';

/** The tag every commit of a volume carries (`snapshots --tag volume`). */
export const VOLUME_TAG = 'volume';

/** Saves map nodes as tree blobs of this key's writer (deduplicated by ID). */
export function mapNodeSaver(repo: Repository): SaveMapNode {
  return async (plain) => (await repo.saveBlob(BlobType.tree, plain)).id;
}

/**
 * Saves the root tree of a head or commit: one file node named after the volume, its blocks
 * through `blockMap` (FORMAT §13/§14). `mtime` is when the volume was last written, not now, so
 * a commit with nothing new gives the same tree. Returns the tree's ID (hex).
 */
export async function volumeTree(repo: Repository, volume: Pick<VolumeRecord, 'name' | 'size'>, blockMap: BlockMapRef, mtime: Date): Promise<string> {
  const ns = BigInt(mtime.getTime()) * 1_000_000n;
  const node: Node = {
    name: Buffer.from(volume.name),
    type: 'file',
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtimeNs: ns,
    ctimeNs: ns,
    inode: 0n,
    deviceId: 0n,
    links: 1,
    size: volume.size,
    sparse: true,
    image: { blockSize: SECTOR },
    blockMap,
  };
  return (await repo.saveBlob(BlobType.tree, encodeTree([node]))).id.toString('hex');
}

export interface CommitSpec {
  volume: Pick<VolumeRecord, 'volume' | 'name'>;
  /** The root tree (volumeTree). */
  tree: string;
  /** The previous commit of the volume. */
  parent?: string | null;
  tags?: string[];
  summary?: BackupSummary;
}

/**
 * A commit: a snapshot of `/<name>` tagged `volume` and naming the volume, whose tree is a
 * head's. Pending packs are written first, as before any snapshot. Returns its ID.
 */
export async function saveCommit(repo: Repository, c: CommitSpec): Promise<string> {
  await repo.flush();
  const user = os.userInfo();
  const snapshot: Snapshot = {
    time: new Date().toISOString(),
    tree: c.tree,
    paths: [`/${c.volume.name}`],
    hostname: os.hostname(),
    username: user.username,
    uid: user.uid,
    gid: user.gid,
    tags: [...new Set([VOLUME_TAG, ...(c.tags ?? [])])],
    programVersion: `scrate ${VERSION}`,
    volume: c.volume.volume,
  };
  if (c.parent) snapshot.parent = c.parent;
  if (c.summary) snapshot.summary = c.summary;
  return saveSnapshot(repo, snapshot);
}

/** The one node of a head or commit tree, checked to be a volume's image. */
export async function volumeImage(reader: BlobReader, tree: string, what: string): Promise<Node & { blockMap: BlockMapRef }> {
  const nodes = await loadTree(reader, Buffer.from(tree, 'hex'));
  const node = nodes.length === 1 ? nodes[0] : undefined;
  if (!node?.blockMap) throw new IntegrityError(what, 'its tree is not a volume image (one file with a block map)');
  return node as Node & { blockMap: BlockMapRef };
}

/** The map a head or commit tree holds. */
export async function headMap(reader: BlobReader, tree: string, what: string): Promise<BlockMapRef> {
  return (await volumeImage(reader, tree, what)).blockMap;
}
