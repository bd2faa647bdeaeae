import type { BigIntStats } from 'node:fs';
import type { OwnerDb } from '../platform/owners.js';
import type { Node, NodeType } from '../tree/node.js';

/** The node type of an lstat result; null for what a snapshot does not hold (sockets). */
export function nodeType(st: BigIntStats): NodeType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return null;
}

/** A node with an entry's metadata from lstat, owners also by name; content and links are added by the caller. */
export function nodeFromStats(name: Buffer, st: BigIntStats, type: NodeType, owners: OwnerDb): Node {
  const node: Node = {
    name,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    deviceId: st.dev,
    links: Number(st.nlink),
    size: type === 'file' ? Number(st.size) : 0,
  };
  const user = owners.userName(node.uid);
  const group = owners.groupName(node.gid);
  if (user !== undefined) node.user = user;
  if (group !== undefined) node.group = group;
  return node;
}
