import type { BlockMapRef } from './block-map.js';
import { byName, type Node } from './node.js';

/**
 * True when `fresh` (in any order) holds exactly the nodes of `stored`, a tree as decodeTree
 * returned it: then encodeTree(fresh) gives the stored tree's bytes, so its ID can be reused
 * without encoding, hashing or compressing anything.
 */
export function unchangedTree(fresh: readonly Node[], stored: readonly Node[]): boolean {
  if (fresh.length !== stored.length) return false;
  const sorted = [...fresh].sort(byName);
  for (let i = 0; i < sorted.length; i++) if (!sameNode(sorted[i]!, stored[i]!)) return false;
  return true;
}

/** Every field encodeTree writes, compared the way it decides whether to write it. */
function sameNode(a: Node, b: Node): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.user === b.user &&
    a.group === b.group &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.inode === b.inode &&
    a.deviceId === b.deviceId &&
    a.links === b.links &&
    a.size === b.size &&
    a.rdev === b.rdev &&
    !a.sparse === !b.sparse &&
    a.image?.blockSize === b.image?.blockSize &&
    a.name.equals(b.name) &&
    sameBytes(a.subtree, b.subtree) &&
    sameBytes(a.linkTarget, b.linkTarget) &&
    sameIds(a.content, b.content) &&
    sameBlockMap(a.blockMap, b.blockMap)
  );
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/** The same map: the root's ID names all of it. */
export function sameBlockMap(a: BlockMapRef | undefined, b: BlockMapRef | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.blockSize === b.blockSize && a.depth === b.depth && a.root.equals(b.root);
}

/** The archiver hands an unchanged file the parent's own list, so identity settles most. */
function sameIds(a: Buffer[] | undefined, b: Buffer[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!a[i]!.equals(b[i]!)) return false;
  return true;
}
