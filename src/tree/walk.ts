import { ScrateError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { BlockMapReader, type BlockMapRef } from './block-map.js';
import { decodeTree, displayName, type Node } from './node.js';

/** A tree of the reader's writer, decoded. */
export async function loadTree(reader: BlobReader, id: Buffer): Promise<Node[]> {
  return decodeTree(await reader.loadBlob(BlobType.tree, id));
}

/**
 * A volume file's block map, its nodes read as the reader's tree blobs. A walk, which reads each
 * node once, needs no cache of decoded nodes (`cacheBytes: 0`); random reads do.
 */
export function openBlockMap(reader: BlobReader, ref: BlockMapRef, opts?: { cacheBytes?: number }): BlockMapReader {
  return new BlockMapReader(ref, (id) => reader.loadBlob(BlobType.tree, id), opts);
}

/** Bytes of a volume file's present blocks: its map root's count. */
export async function mapAllocatedBytes(reader: BlobReader, ref: BlockMapRef): Promise<number> {
  return (await openBlockMap(reader, ref, { cacheBytes: 0 }).allocatedBlocks()) * ref.blockSize;
}

/** Splits an absolute or relative snapshot path into name components. */
export function pathComponents(p: string): Buffer[] {
  return p.split('/').filter((c) => c !== '' && c !== '.').map((c) => Buffer.from(c, 'utf8'));
}

/**
 * Finds the node at `path` inside a snapshot's root tree. The root itself has no node:
 * for '/', null is returned and the caller uses the root tree.
 */
export async function findNode(reader: BlobReader, root: Buffer, path: string): Promise<Node | null> {
  let tree = root;
  let node: Node | null = null;
  const parts = pathComponents(path);
  for (const [i, part] of parts.entries()) {
    const nodes = await loadTree(reader, tree);
    node = nodes.find((n) => n.name.equals(part)) ?? null;
    if (!node) throw new ScrateError(`path ${path} is not in the snapshot`);
    if (i < parts.length - 1) {
      if (node.type !== 'dir' || !node.subtree) throw new ScrateError(`${displayName(part)} in ${path} is not a directory`);
      tree = node.subtree;
    }
  }
  return node;
}

export interface WalkEntry {
  /** Path components from the start of the walk. */
  path: Buffer[];
  node: Node;
}

/** Depth-first, in name order; yields a directory before its contents. */
export async function* walkTree(reader: BlobReader, tree: Buffer, prefix: Buffer[] = []): AsyncGenerator<WalkEntry> {
  for (const node of await loadTree(reader, tree)) {
    const path = [...prefix, node.name];
    yield { path, node };
    if (node.type === 'dir' && node.subtree) yield* walkTree(reader, node.subtree, path);
  }
}

export function joinPath(parts: Buffer[]): Buffer {
  return Buffer.concat(parts.flatMap((p) => [Buffer.from('/'), p]));
}
