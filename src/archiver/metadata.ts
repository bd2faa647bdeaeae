import { constants } from 'node:fs';
import type { OwnerDb } from '../platform/owners.js';
import type { Node, NodeType } from '../tree/node.js';
import type { EntryStat } from './dir-listing.js';

const TYPES = new Map<number, NodeType>([
  [constants.S_IFREG, 'file'],
  [constants.S_IFDIR, 'dir'],
  [constants.S_IFLNK, 'symlink'],
  [constants.S_IFIFO, 'fifo'],
  [constants.S_IFCHR, 'chardev'],
  [constants.S_IFBLK, 'blockdev'],
]);

/** The node type of an lstat result; null for what a snapshot does not hold (sockets). */
export function nodeType(st: EntryStat): NodeType | null {
  return TYPES.get(st.mode & constants.S_IFMT) ?? null;
}

/** A node with an entry's metadata from lstat, owners also by name; content and links are added by the caller. */
export function nodeFromStats(name: Buffer, st: EntryStat, type: NodeType, owners: OwnerDb): Node {
  const node: Node = {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    deviceId: st.dev,
    links: st.nlink,
    size: type === 'file' ? st.size : 0,
  };
  const user = owners.userName(node.uid);
  const group = owners.groupName(node.gid);
  if (user !== undefined) node.user = user;
  if (group !== undefined) node.group = group;
  return node;
}
