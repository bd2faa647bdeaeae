import { isUtf8 } from 'node:buffer';
import { IntegrityError } from '../errors.js';
import { ID_BYTES } from '../repository/ids.js';
import { MAP_FANOUT_BITS, MAP_MAX_DEPTH, type BlockMapRef } from './block-map.js';

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
  /** file (a volume's image): its blocks through a block map, in place of `content` (FORMAT §13). */
  blockMap?: BlockMapRef;
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
  content?: string[] | ContentMapJson;
  subtree?: string;
  linkTarget?: string;
  linkTargetRaw?: string;
  rdev?: string;
  sparse?: boolean;
  image?: { blockSize: number };
}

/** A block map as a node's `content`, with exactly these keys in this order. */
interface ContentMapJson {
  map: string;
  blockSize: number;
  depth: number;
}

/** The order of a tree's nodes: by the bytes of their names. */
export function byName(a: Node, b: Node): number {
  return Buffer.compare(a.name, b.name);
}

/**
 * A directory's entries sorted by name bytes; serialised deterministically so equal trees dedup.
 * The text is built directly rather than through JSON.stringify of NodeJson objects (bench/trees.ts:
 * ~8× less CPU), and must stay byte for byte what that gave: tree IDs are hashes of it
 * (test/tree-codec.test.ts keeps the object form as the reference).
 */
export function encodeTree(nodes: readonly Node[]): Buffer {
  const sorted = [...nodes].sort(byName);
  let json = '{"nodes":[';
  for (let i = 0; i < sorted.length; i++) json += (i === 0 ? '' : ',') + nodeJson(sorted[i]!);
  return Buffer.from(json + ']}');
}

function nodeJson(n: Node): string {
  let json =
    '{' + bytesField('name', n.name) +
    ',"type":' + jsonString(n.type) +
    ',"mode":' + jsonNumber(n.mode) +
    ',"uid":' + jsonNumber(n.uid) +
    ',"gid":' + jsonNumber(n.gid) +
    ',"mtime":"' + n.mtimeNs.toString() +
    '","ctime":"' + n.ctimeNs.toString() +
    '","inode":"' + n.inode.toString() +
    '","device":"' + n.deviceId.toString() +
    '","links":' + jsonNumber(n.links) +
    ',"size":' + jsonNumber(n.size);
  if (n.user !== undefined) json += ',"user":' + jsonString(n.user);
  if (n.group !== undefined) json += ',"group":' + jsonString(n.group);
  if (n.content) {
    json += ',"content":[';
    for (let i = 0; i < n.content.length; i++) json += (i === 0 ? '"' : ',"') + n.content[i]!.toString('hex') + '"';
    json += ']';
  }
  if (n.blockMap) json += ',"content":{"map":"' + n.blockMap.root.toString('hex') + '","blockSize":' + jsonNumber(n.blockMap.blockSize) + ',"depth":' + jsonNumber(n.blockMap.depth) + '}';
  if (n.subtree) json += ',"subtree":"' + n.subtree.toString('hex') + '"';
  if (n.linkTarget) json += ',' + bytesField('linkTarget', n.linkTarget);
  if (n.rdev !== undefined) json += ',"rdev":"' + n.rdev.toString() + '"';
  if (n.sparse) json += ',"sparse":true';
  if (n.image) json += ',"image":{"blockSize":' + jsonNumber(n.image.blockSize) + '}';
  return json + '}';
}

/** `"key":"text"`, or `"keyRaw":"base64"` when the bytes are not UTF-8. */
function bytesField(key: string, bytes: Buffer): string {
  if (isPlainAscii(bytes)) return '"' + key + '":"' + bytes.toString('latin1') + '"';
  if (isUtf8(bytes)) return '"' + key + '":' + JSON.stringify(bytes.toString('utf8'));
  return '"' + key + 'Raw":"' + bytes.toString('base64') + '"';
}

/** Printable ASCII other than `"` and `\`: the bytes are their own JSON string text. Most names are. */
function isPlainAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/** As JSON.stringify(s); owner names and types rarely need escaping, and the check is cheaper than the call. */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Control characters, quote, backslash, and surrogates (escaped when unpaired).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c & 0xf800) === 0xd800) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** As JSON.stringify(x): finite numbers print as String() prints them, the rest as null. */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
}

const NODE_TYPES: ReadonlySet<string> = new Set<NodeType>(['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev']);
const MAX_ID32 = 2 ** 32 - 1;
const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * A tree is read from the repository, which whoever holds a key (a compromised host with a
 * write-only one, say) may have written: anything but what encodeTree writes is refused here, as
 * damage, before a restore could act on it. Names above all: each one path component, in
 * strictly increasing byte order (no duplicates), so that every entry has a path of its own.
 */
export function decodeTree(data: Buffer): Node[] {
  let parsed: { nodes?: unknown } | null;
  try {
    parsed = JSON.parse(data.toString('utf8')) as { nodes?: unknown } | null;
  } catch {
    invalid('not JSON');
  }
  const list = parsed?.nodes;
  if (!Array.isArray(list)) invalid('no list of nodes');
  const nodes: Node[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) nodes[i] = fromJson(list[i] as NodeJson, i === 0 ? undefined : nodes[i - 1]!.name);
  return nodes;
}

function invalid(detail: string): never {
  throw new IntegrityError('invalid tree', detail);
}

function bad(name: Buffer, field: string): never {
  invalid(`${quoted(name)}: bad ${field}`);
}

/** A node from its JSON form, checked: `previous` is the name of the node before it. */
function fromJson(j: NodeJson, previous: Buffer | undefined): Node {
  if (typeof j !== 'object' || j === null) invalid('a node is not an object');
  const name = nodeName(j, previous);
  if (!NODE_TYPES.has(j.type)) bad(name, 'type');
  if (!isUint(j.mode, 0o7777)) bad(name, 'mode');
  if (!isUint(j.uid, MAX_ID32)) bad(name, 'uid');
  if (!isUint(j.gid, MAX_ID32)) bad(name, 'gid');
  if (!isUint(j.links, Number.MAX_SAFE_INTEGER)) bad(name, 'links');
  if (!isUint(j.size, Number.MAX_SAFE_INTEGER)) bad(name, 'size');
  const n: Node = {
    name,
    type: j.type,
    mode: j.mode,
    uid: j.uid,
    gid: j.gid,
    mtimeNs: bigInt(j.mtime) ?? bad(name, 'mtime'),
    ctimeNs: bigInt(j.ctime) ?? bad(name, 'ctime'),
    inode: bigInt(j.inode) ?? bad(name, 'inode'),
    deviceId: bigInt(j.device) ?? bad(name, 'device'),
    links: j.links,
    size: j.size,
  };
  if (j.user !== undefined) n.user = typeof j.user === 'string' ? j.user : bad(name, 'user');
  if (j.group !== undefined) n.group = typeof j.group === 'string' ? j.group : bad(name, 'group');
  if (Array.isArray(j.content)) n.content = j.content.map((h) => blobId(h) ?? bad(name, 'content'));
  else if (j.content !== undefined) n.blockMap = contentMap(j.content, n) ?? bad(name, 'content');
  if (j.subtree !== undefined) n.subtree = blobId(j.subtree) ?? bad(name, 'subtree');
  if (n.blockMap && n.subtree) bad(name, 'content');
  if (j.linkTarget !== undefined) n.linkTarget = typeof j.linkTarget === 'string' ? Buffer.from(j.linkTarget, 'utf8') : bad(name, 'linkTarget');
  if (j.linkTargetRaw !== undefined) n.linkTarget = typeof j.linkTargetRaw === 'string' ? Buffer.from(j.linkTargetRaw, 'base64') : bad(name, 'linkTarget');
  if (j.rdev !== undefined) n.rdev = bigInt(j.rdev) ?? bad(name, 'rdev');
  if (j.sparse !== undefined) {
    if (typeof j.sparse !== 'boolean') bad(name, 'sparse');
    if (j.sparse) n.sparse = true;
  }
  if (j.image !== undefined) {
    if (!isUint(j.image?.blockSize, MAX_ID32) || j.image.blockSize === 0) bad(name, 'image');
    n.image = { blockSize: j.image.blockSize };
  }
  return n;
}

const MIN_MAP_BLOCK = 4096;
const MAX_MAP_BLOCK = 1024 * 1024;

/**
 * A block map as content: only on a file, with a block size the writer can make and a depth that
 * reaches the file's size. Exactly the keys nodeJson writes, so the node encodes back to the same bytes.
 */
function contentMap(j: unknown, n: Node): BlockMapRef | undefined {
  if (n.type !== 'file' || typeof j !== 'object' || j === null) return undefined;
  const { map, blockSize, depth } = j as ContentMapJson;
  if (Object.keys(j).join() !== 'map,blockSize,depth') return undefined;
  const root = blobId(map);
  if (!root || !isUint(blockSize, MAX_MAP_BLOCK) || blockSize < MIN_MAP_BLOCK || (blockSize & (blockSize - 1)) !== 0) return undefined;
  if (!isUint(depth, MAP_MAX_DEPTH) || depth < 1 || n.size > blockSize * 2 ** (MAP_FANOUT_BITS * depth)) return undefined;
  return { root, blockSize, depth };
}

/** The node's name: one path component (not empty, no slash or NUL, not "." or ".."), after `previous`. */
function nodeName(j: NodeJson, previous: Buffer | undefined): Buffer {
  const raw = j.nameRaw !== undefined;
  const text = raw ? j.nameRaw : j.name;
  if (typeof text !== 'string') invalid('a node without a name');
  const name = raw ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  let component = name.length > 0;
  for (let i = 0; component && i < name.length; i++) component = name[i] !== SLASH && name[i] !== 0;
  if (!component || (name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT)))) {
    invalid(`name ${quoted(name)} is not a single path component`);
  }
  if (previous !== undefined) {
    const order = Buffer.compare(previous, name);
    if (order === 0) invalid(`duplicate name ${quoted(name)}`);
    if (order > 0) invalid(`names out of order: ${quoted(name)} after ${quoted(previous)}`);
  }
  return name;
}

/** A whole number in [0, max]. */
function isUint(x: unknown, max: number): x is number {
  return Number.isInteger(x) && (x as number) >= 0 && (x as number) <= max;
}

/** A 64-bit field as encodeTree writes it (decimal text), or undefined. */
function bigInt(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    return BigInt(text);
  } catch {
    return undefined;
  }
}

/** A blob ID from its hex form, or undefined. */
function blobId(hex: unknown): Buffer | undefined {
  if (typeof hex !== 'string' || hex.length !== 2 * ID_BYTES) return undefined;
  const id = Buffer.from(hex, 'hex');
  return id.length === ID_BYTES ? id : undefined;
}

/** A name in a one-line message. */
function quoted(name: Buffer): string {
  return JSON.stringify(displayName(name));
}

/** Not printable: anything but letters, marks, numbers, punctuation, symbols and the space (Go's unicode.IsPrint). */
const UNPRINTABLE = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;

/**
 * A name (or any text from a repository or a filesystem) as it may reach a terminal, after
 * restic's ui.Quote: unchanged when every character is printable; otherwise in double quotes,
 * with escapes for quotes, backslashes, control and other unprintable characters (\n, \x1b,
 * \u202e) and for each byte that is not part of valid UTF-8 (\xff). A name can then neither
 * drive the terminal (clear it, retitle it, move the cursor) nor forge a line of output.
 */
export function displayName(name: Buffer | string): string {
  if (typeof name === 'string') return UNPRINTABLE.test(name) ? `"${escapeText(name)}"` : name;
  if (isPrintableAscii(name)) return name.toString('latin1');
  if (isUtf8(name)) return displayName(name.toString('utf8'));
  let out = '';
  for (let i = 0; i < name.length; ) {
    const length = utf8Length(name[i]!);
    const sequence = name.subarray(i, i + length);
    if (length > 0 && sequence.length === length && isUtf8(sequence)) {
      out += escapeText(sequence.toString('utf8'));
      i += length;
    } else {
      out += hexEscape(name[i]!);
      i++;
    }
  }
  return `"${out}"`;
}

/** Printable ASCII: the bytes are their own display, as most names are. */
function isPrintableAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! < 0x20 || bytes[i]! > 0x7e) return false;
  return true;
}

/** The length of the UTF-8 sequence a byte starts, 0 for a byte that starts none. */
function utf8Length(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The inside of a quoted display: see displayName. */
function escapeText(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (SHORT_ESCAPES[ch]) out += SHORT_ESCAPES[ch];
    else if (!UNPRINTABLE.test(ch)) out += ch;
    else if (code < 0x80) out += hexEscape(code);
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return out;
}

function hexEscape(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}
