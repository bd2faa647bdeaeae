import { isUtf8 } from 'node:buffer';
import type { Node, NodeType } from '../../tree/node.js';
import { jsonTime } from '../local-time.js';

/** restic's node type names (Go's): a block device is "dev". */
const TYPE_NAMES: Record<NodeType, string> = { file: 'file', dir: 'dir', symlink: 'symlink', fifo: 'fifo', chardev: 'chardev', blockdev: 'dev' };

/** Go's os.FileMode bits, which restic prints as a node's mode, and their letters in FileMode.String(). */
const GO_MODE_BITS: [bit: number, letter: string, test: (n: Node) => boolean][] = [
  [2 ** 31, 'd', (n) => n.type === 'dir'],
  [2 ** 27, 'L', (n) => n.type === 'symlink'],
  [2 ** 26, 'D', (n) => n.type === 'blockdev' || n.type === 'chardev'],
  [2 ** 25, 'p', (n) => n.type === 'fifo'],
  [2 ** 23, 'u', (n) => (n.mode & 0o4000) !== 0],
  [2 ** 22, 'g', (n) => (n.mode & 0o2000) !== 0],
  [2 ** 21, 'c', (n) => n.type === 'chardev'],
  [2 ** 20, 't', (n) => (n.mode & 0o1000) !== 0],
];

/** A node's mode as Go's os.FileMode (type and special bits high, permissions low) and as its String(). */
export function goFileMode(n: Node): { mode: number; permissions: string } {
  let mode = n.mode & 0o777;
  let letters = '';
  for (const [bit, letter, test] of GO_MODE_BITS) {
    if (!test(n)) continue;
    mode += bit;
    letters += letter;
  }
  const rwx = 'rwxrwxrwx'.replace(/./g, (c, i: number) => (n.mode & (0o400 >> i) ? c : '-'));
  return { mode, permissions: (letters || '-') + rwx };
}

/**
 * A name in JSON: exact when it is UTF-8 (JSON escapes what needs it), else each byte outside
 * printable ASCII as \xNN, as scrate always printed such names.
 */
export function jsonName(name: Buffer): string {
  if (isUtf8(name)) return name.toString('utf8');
  let out = '';
  for (const b of name) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/**
 * One entry of `ls --json`, as restic 0.14's node line, with scrate's inode and link target.
 * scrate stores no access time: there is no atime.
 */
export function nodeJson(n: Node, path: Buffer): Record<string, unknown> {
  const { mode, permissions } = goFileMode(n);
  return {
    name: jsonName(n.name),
    type: TYPE_NAMES[n.type],
    path: jsonName(path),
    uid: n.uid,
    gid: n.gid,
    ...(n.type === 'file' ? { size: n.size } : {}),
    mode,
    permissions,
    mtime: jsonTime(n.mtimeNs),
    ctime: jsonTime(n.ctimeNs),
    inode: Number(n.inode),
    ...(n.linkTarget ? { link_target: jsonName(n.linkTarget) } : {}),
    struct_type: 'node',
  };
}
