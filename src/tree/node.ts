import { isUtf8 } from 'node:buffer';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev';

/** One entry of a directory in a snapshot. Names and link targets are bytes: Linux allows any. */
export interface Node {
  name: Buffer;
  type: NodeType;
  /** Permission bits including setuid, setgid and sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  deviceId: bigint;
  /** Hard link count at backup time; >1 makes the restorer look for the other names. */
  links: number;
  size: number;
  /** file: blob IDs of its chunks, in order. */
  content?: Buffer[];
  /** dir: the ID of its tree blob. */
  subtree?: Buffer;
  linkTarget?: Buffer;
  /** fifo and device nodes. */
  rdev?: bigint;
  /** The file had holes; the restorer recreates them where the content is zero. */
  sparse?: boolean;
  /** The content of a block device (or a disk image backed up as one), with its logical block size. */
  image?: { blockSize: number };
}

/** JSON form: bytes that are not UTF-8 go base64 in a `…Raw` field; 64-bit numbers as decimal strings. */
interface NodeJson {
  name?: string;
  nameRaw?: string;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtime: string;
  ctime: string;
  inode: string;
  device: string;
  links: number;
  size: number;
  content?: string[];
  subtree?: string;
  linkTarget?: string;
  linkTargetRaw?: string;
  rdev?: string;
  sparse?: boolean;
  image?: { blockSize: number };
}

function toJson(n: Node): NodeJson {
  const j: NodeJson = {
    ...(isUtf8(n.name) ? { name: n.name.toString('utf8') } : { nameRaw: n.name.toString('base64') }),
    type: n.type,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    mtime: n.mtimeNs.toString(),
    ctime: n.ctimeNs.toString(),
    inode: n.inode.toString(),
    device: n.deviceId.toString(),
    links: n.links,
    size: n.size,
  };
  if (n.user !== undefined) j.user = n.user;
  if (n.group !== undefined) j.group = n.group;
  if (n.content) j.content = n.content.map((id) => id.toString('hex'));
  if (n.subtree) j.subtree = n.subtree.toString('hex');
  if (n.linkTarget) {
    if (isUtf8(n.linkTarget)) j.linkTarget = n.linkTarget.toString('utf8');
    else j.linkTargetRaw = n.linkTarget.toString('base64');
  }
  if (n.rdev !== undefined) j.rdev = n.rdev.toString();
  if (n.sparse) j.sparse = true;
  if (n.image) j.image = { blockSize: n.image.blockSize };
  return j;
}

function fromJson(j: NodeJson): Node {
  const n: Node = {
    name: j.nameRaw !== undefined ? Buffer.from(j.nameRaw, 'base64') : Buffer.from(j.name ?? '', 'utf8'),
    type: j.type,
    mode: j.mode,
    uid: j.uid,
    gid: j.gid,
    mtimeNs: BigInt(j.mtime),
    ctimeNs: BigInt(j.ctime),
    inode: BigInt(j.inode),
    deviceId: BigInt(j.device),
    links: j.links,
    size: j.size,
  };
  if (j.user !== undefined) n.user = j.user;
  if (j.group !== undefined) n.group = j.group;
  if (j.content) n.content = j.content.map((h) => Buffer.from(h, 'hex'));
  if (j.subtree) n.subtree = Buffer.from(j.subtree, 'hex');
  if (j.linkTarget !== undefined) n.linkTarget = Buffer.from(j.linkTarget, 'utf8');
  if (j.linkTargetRaw !== undefined) n.linkTarget = Buffer.from(j.linkTargetRaw, 'base64');
  if (j.rdev !== undefined) n.rdev = BigInt(j.rdev);
  if (j.sparse) n.sparse = true;
  if (j.image) n.image = { blockSize: j.image.blockSize };
  return n;
}

/** A directory's entries sorted by name bytes; serialised deterministically so equal trees dedup. */
export function encodeTree(nodes: Node[]): Buffer {
  const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
  return Buffer.from(JSON.stringify({ nodes: sorted.map(toJson) }));
}

export function decodeTree(data: Buffer): Node[] {
  return (JSON.parse(data.toString('utf8')) as { nodes: NodeJson[] }).nodes.map(fromJson);
}

/** Shows a name for humans: invalid UTF-8 bytes as \xNN escapes. */
export function displayName(name: Buffer): string {
  if (isUtf8(name)) return name.toString('utf8');
  let out = '';
  for (const b of name) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}
