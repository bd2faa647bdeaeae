import { BlobType } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { saveSnapshot, type Snapshot } from '../../src/snapshot/snapshot.js';
import { mapDepthFor, MutableBlockMap, type BlockMapRef } from '../../src/tree/block-map.js';
import { encodeTree, type Node } from '../../src/tree/node.js';

export interface VolumeContent {
  /** Bytes of the image. */
  size: number;
  /** Default 64 KiB. */
  blockSize?: number;
  /** The present blocks: number and bytes (the last block of the image may be shorter). */
  blocks: Iterable<[number, Buffer]>;
  /** A parent commit's map to change instead of an empty one. */
  base?: BlockMapRef;
}

/**
 * Saves the blocks as data blobs and a map over them as map nodes (tree blobs) through this
 * repository's own key, as a volume commit stores them; returns the map. Blocks set to an empty
 * buffer are removed from `base`.
 */
export async function saveBlockMap(repo: Repository, content: VolumeContent): Promise<BlockMapRef> {
  const blockSize = content.blockSize ?? 65536;
  const reader = repo.reader(repo.self);
  const map = content.base
    ? MutableBlockMap.open(content.base, (id) => reader.loadBlob(BlobType.tree, id))
    : MutableBlockMap.create(mapDepthFor(content.size, blockSize), blockSize);
  for (const [block, data] of content.blocks) {
    await map.set(block, data.length === 0 ? null : (await repo.saveBlob(BlobType.data, data)).id);
  }
  return map.persist(async (plain) => (await repo.saveBlob(BlobType.tree, plain)).id);
}

/** The file node of a volume commit over `map`. */
export function volumeNode(name: string, size: number, map: BlockMapRef, fields: Partial<Node> = {}): Node {
  return {
    name: Buffer.from(name),
    type: 'file',
    mode: 0o600,
    uid: 0,
    gid: 0,
    mtimeNs: 1_700_000_000_000_000_000n,
    ctimeNs: 1_700_000_000_000_000_000n,
    inode: 0n,
    deviceId: 0n,
    links: 1,
    size,
    sparse: true,
    image: { blockSize: 512 },
    blockMap: map,
    ...fields,
  };
}

/**
 * A volume commit: a snapshot (paths ["/<name>"], tag "volume") whose root tree holds one file
 * node with the map as its content, as FORMAT §13 describes. Flushes the repository first.
 */
export async function saveVolumeSnapshot(
  repo: Repository,
  content: VolumeContent & { name?: string; parent?: string; tags?: string[]; time?: Date },
): Promise<{ id: string; snapshot: Snapshot; map: BlockMapRef; node: Node }> {
  const name = content.name ?? 'vol1';
  const map = await saveBlockMap(repo, content);
  const node = volumeNode(name, content.size, map);
  const { id: tree } = await repo.saveBlob(BlobType.tree, encodeTree([node]));
  await repo.flush();
  const snapshot: Snapshot = {
    time: (content.time ?? new Date()).toISOString(),
    tree: tree.toString('hex'),
    paths: [`/${name}`],
    hostname: 'volume-test',
    username: 'root',
    uid: 0,
    gid: 0,
    tags: content.tags ?? ['volume'],
    programVersion: 'test',
    ...(content.parent ? { parent: content.parent } : {}),
  };
  return { id: await saveSnapshot(repo, snapshot), snapshot, map, node };
}

/** The whole image the blocks make: zeros where no block is (for small test volumes). */
export function volumeImage(content: VolumeContent): Buffer {
  const blockSize = content.blockSize ?? 65536;
  const image = Buffer.alloc(content.size);
  for (const [block, data] of content.blocks) {
    image.fill(0, block * blockSize, Math.min(content.size, (block + 1) * blockSize));
    data.copy(image, block * blockSize);
  }
  return image;
}
