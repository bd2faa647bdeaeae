import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { posix } from '../../src/native/posix.js';

export interface MakeTreeOptions {
  /** Selects file contents; trees made with the same seed compare equal. Default 1. */
  seed?: number;
}

export interface CompareOptions {
  /**
   * Also compare the two roots' own metadata. Off by default because a restore
   * target's root is usually created by the test, not by the restore.
   */
  compareRoot?: boolean;
}

const MiB = 1024 * 1024;
const SLASH = Buffer.from('/');
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/**
 * A restorer that skips all-zero runs at filesystem-block granularity can still
 * allocate a bit more than the original: each data region's edges may round out
 * to whole blocks differently (ext4 blocks are 4 KiB), and st_blocks also counts
 * extent-tree blocks. 64 KiB (16 ext4 blocks) absorbs that, while any hole
 * larger than 64 KiB that was filled with written zeros is still caught.
 */
const SPARSE_SLACK_BYTES = 64n * 1024n;

/** Joins path components into one Buffer so that non-UTF-8 names survive. */
function rel(...parts: Array<string | Buffer>): Buffer {
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [SLASH, Buffer.from(p)])));
}

/** Absolute Buffer path of `relPath` (a TREE entry, say) under `root`; an empty relPath is the root. */
export function treePath(root: string | Buffer, relPath: Buffer): Buffer {
  const r = Buffer.from(root);
  return relPath.length === 0 ? r : Buffer.concat([r, SLASH, relPath]);
}

/** glibc's makedev(): the dev_t encoding that mknod(2) and st_rdev use on Linux. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

function majorMinor(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

const BAD_NAME = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "f\xff\xfe.bin"
const BAD_DIR = Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xc3, 0x28]); // "bad-\xc3(": truncated 2-byte sequence
const BAD_TARGET = Buffer.from([0x74, 0xff, 0xfe, 0x2f, 0x78]); // "t\xff\xfe/x"

/** Relative paths of notable entries, for tests that inspect or mutate them. */
export const TREE = {
  empty: rel('data/empty'),
  oneByte: rel('data/one-byte'),
  medium: rel('data/medium.bin'),
  large: rel('data/large.bin'),
  mediumCopy: rel('dedup/medium-copy.bin'),
  deepLeaf: rel('deep/a/b/c/d/leaf.txt'),
  deepDir: rel('deep/a/b'),
  emptyDir: rel('deep/a/b/empty-dir'),
  trio: [rel('links/trio-1'), rel('deep/a/trio-2'), rel('names/trio 3')],
  pair: [rel('links/pair-1'), rel('deep/a/b/c/pair-2')],
  relativeSymlink: rel('symlinks/relative'),
  badTargetSymlink: rel('symlinks/bad-utf8-target'),
  ownedSymlink: rel('owners/symlink'),
  fifo: rel('special/fifo'),
  charDevice: rel('special/null'),
  blockDevice: rel('special/loop200'),
  setuid: rel('modes/setuid'),
  setgidFile: rel('modes/setgid'),
  setgidDir: rel('modes/setgid-dir'),
  stickyDir: rel('modes/sticky'),
  readOnly: rel('modes/read-only'),
  privateDir: rel('modes/private'),
  noOtherRead: rel('modes/no-other-read'),
  otherOwner: rel('owners/other'),
  nobodyDir: rel('owners/nobody'),
  badName: rel('names', BAD_NAME),
  badDir: rel('names', BAD_DIR),
  newlineName: rel('names/new\nline'),
  sparse: rel('sparse/holes.img'),
  allHole: rel('sparse/all-hole.img'),
  preEpoch: rel('times/pre-epoch'),
  y2100: rel('times/y2100'),
  wholeSecond: rel('times/whole-second'),
};

/**
 * makeTree gives entry i of a children-first walk the mtime baseNs + i*stepNs
 * (the step moves both seconds and nanoseconds), except the `edge` entries.
 */
export const TREE_MTIMES = {
  baseNs: 1600000000_123456789n,
  stepNs: 1_000_000_007n,
  edge: [
    [TREE.preEpoch, -1234567890_987654321n], // 1930: negative seconds
    [TREE.y2100, 4102444800_999999999n], // past the 32-bit time_t limit
    [TREE.wholeSecond, 1700000000_000000000n], // zero nanoseconds must not be mistaken for "unknown"
  ] as ReadonlyArray<readonly [Buffer, bigint]>,
};

interface Owner {
  uid: number;
  gid: number;
}

type Spec =
  | { kind: 'dir'; path: Buffer; mode: number; owner?: Owner }
  | { kind: 'file'; path: Buffer; mode: number; content: Buffer; owner?: Owner }
  | { kind: 'sparse'; path: Buffer; mode: number; size: number; data: Array<[offset: number, bytes: Buffer]> }
  | { kind: 'hardlink'; path: Buffer; to: Buffer }
  | { kind: 'symlink'; path: Buffer; target: Buffer; owner?: Owner }
  | { kind: 'node'; path: Buffer; type: number; rdev: bigint; mode: number; owner?: Owner; rootOnly: boolean };

/** Deterministic incompressible bytes: AES-256-CTR keystream keyed by seed and label. */
export function pseudoRandom(seed: number, label: string, length: number): Buffer {
  const key = createHash('sha256').update(`scrate-tree/${seed}/${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

function layout(seed: number): Spec[] {
  const rnd = (label: string, length: number) => pseudoRandom(seed, label, length);
  const dir = (path: string | Buffer, mode = 0o755, owner?: Owner): Spec => ({ kind: 'dir', path: rel(path), mode, owner });
  const file = (path: string | Buffer, content: Buffer, mode = 0o644, owner?: Owner): Spec =>
    ({ kind: 'file', path: rel(path), mode, content, owner });
  const symlink = (path: string | Buffer, target: string | Buffer, owner?: Owner): Spec =>
    ({ kind: 'symlink', path: rel(path), target: Buffer.from(target), owner });

  const medium = rnd('medium', 3 * MiB);
  const pairContent = rnd('pair', 5000);
  // Not a multiple of any power of two, so repeats land at different offsets relative to chunk boundaries.
  const block = rnd('repeated-block', 700_001);
  const other = { uid: 1234, gid: 5678 };
  const nobody = { uid: 65534, gid: 65534 };

  return [
    dir('data'),
    file(TREE.empty, Buffer.alloc(0)),
    file(TREE.oneByte, rnd('one-byte', 1)),
    file('data/small.txt', rnd('small', 4321)),
    file(TREE.medium, medium),
    // Spans several 1 MiB-average chunks, and is not a whole number of them.
    file(TREE.large, rnd('large', 9 * MiB + 12345)),

    // Content that a deduplicating store should only keep once.
    dir('dedup'),
    file(TREE.mediumCopy, medium),
    // Shifted by a few bytes: content-defined chunking must resynchronise.
    file('dedup/medium-shifted.bin', Buffer.concat([rnd('shift-head', 7), medium, rnd('shift-tail', 1000)])),
    file('dedup/repeated.bin', Buffer.concat([block, block, block, block])),
    // Same bytes as the hardlink pair but its own inode: a restore must not link it to them.
    file('dedup/pair-lookalike', pairContent),

    dir('deep'),
    dir('deep/a'),
    dir(TREE.deepDir),
    dir('deep/a/b/c'),
    dir('deep/a/b/c/d'),
    file(TREE.deepLeaf, rnd('leaf', 100)),
    file('deep/a/b/c/empty-file', Buffer.alloc(0)),
    dir(TREE.emptyDir),

    dir('links'),
    file(TREE.trio[0], rnd('trio', 3000), 0o640, other),
    { kind: 'hardlink', path: TREE.trio[1], to: TREE.trio[0] },
    file(TREE.pair[0], pairContent),
    { kind: 'hardlink', path: TREE.pair[1], to: TREE.pair[0] },

    dir('symlinks'),
    symlink(TREE.relativeSymlink, '../data/small.txt'),
    symlink('symlinks/absolute', '/etc/passwd'),
    symlink('symlinks/dangling', 'does/not/exist'),
    symlink('symlinks/to-dir', '../deep/a'),
    symlink(TREE.badTargetSymlink, BAD_TARGET),
    symlink('symlinks/self-loop', 'self-loop'),
    symlink('symlinks/long-target', 'long/'.repeat(400) + 'end'),

    dir('special'),
    { kind: 'node', path: TREE.fifo, type: S_IFIFO, rdev: 0n, mode: 0o620, owner: other, rootOnly: false },
    // Same numbers as /dev/null, and a loop device that need not exist: only the node matters.
    { kind: 'node', path: TREE.charDevice, type: S_IFCHR, rdev: makedev(1, 3), mode: 0o666, rootOnly: true },
    { kind: 'node', path: TREE.blockDevice, type: S_IFBLK, rdev: makedev(7, 200), mode: 0o660, owner: { uid: 0, gid: 6 }, rootOnly: true },

    dir('modes'),
    file(TREE.setuid, rnd('setuid', 200), 0o4755, other),
    file(TREE.setgidFile, rnd('setgid', 200), 0o2755, other),
    dir(TREE.setgidDir, 0o2755, other),
    // Created inside a setgid directory, so it inherits the directory's group.
    file('modes/setgid-dir/inherits-group', rnd('inherits', 10)),
    dir(TREE.stickyDir, 0o1777),
    file('modes/sticky/inside', rnd('sticky', 10), 0o666, nobody),
    file(TREE.readOnly, rnd('read-only', 300), 0o444),
    dir(TREE.privateDir, 0o700),
    file('modes/private/secret', rnd('secret', 64), 0o600),
    file(TREE.noOtherRead, rnd('no-other-read', 64), 0o640),

    dir('owners'),
    file(TREE.otherOwner, rnd('other', 50), 0o644, other),
    dir(TREE.nobodyDir, 0o755, nobody),
    file('owners/nobody/inner', rnd('inner', 50), 0o600, nobody),
    symlink(TREE.ownedSymlink, 'other', { uid: 4321, gid: 8765 }),

    dir('names'),
    file(TREE.badName, rnd('bad-name', 10)),
    dir(TREE.badDir),
    file(rel(TREE.badDir, 'inside'), rnd('bad-dir', 10)),
    { kind: 'hardlink', path: TREE.trio[2], to: TREE.trio[0] },
    file('names/with space.txt', rnd('space', 10)),
    file('names/ leading and trailing ', rnd('spaces', 10)),
    file(TREE.newlineName, rnd('newline', 10)),
    file('names/tab\there', rnd('tab', 10)),
    file('names/日本語.txt', rnd('cjk', 10)),
    // NFC and NFD spellings of "café": distinct names that must not be normalised into one.
    file('names/caf\u00e9', rnd('nfc', 10)),
    file('names/cafe\u0301', rnd('nfd', 10)),
    file('names/emoji-\u{1F642}', rnd('emoji', 10)),
    file('names/-leading-dash', rnd('dash', 10)),
    file('names/back\\slash', rnd('backslash', 10)),
    file('names/*?[glob]', rnd('glob', 10)),
    file('names/.hidden', rnd('hidden', 10)),
    file('names/' + 'L'.repeat(255), rnd('long-name', 10)),

    dir('sparse'),
    // Starts and ends with a hole, and one region is not block-aligned.
    {
      kind: 'sparse', path: TREE.sparse, mode: 0o644, size: 64 * MiB,
      data: [[1 * MiB, rnd('sparse-1', 4096)], [17 * MiB + 100, rnd('sparse-2', 300)], [40 * MiB, rnd('sparse-3', 64 * 1024)]],
    },
    { kind: 'sparse', path: TREE.allHole, mode: 0o644, size: 8 * MiB, data: [] },

    dir('times'),
    ...TREE_MTIMES.edge.map(([path]) => file(path, rnd(path.toString(), 10))),
  ];
}

async function create(root: Buffer, spec: Spec): Promise<void> {
  const abs = treePath(root, spec.path);
  switch (spec.kind) {
    case 'dir':
      await fsp.mkdir(abs);
      break;
    case 'file':
      await fsp.writeFile(abs, spec.content);
      break;
    case 'sparse': {
      const fh = await fsp.open(abs, 'w');
      try {
        for (const [offset, bytes] of spec.data) await fh.write(bytes, 0, bytes.length, offset);
        await fh.truncate(spec.size);
      } finally {
        await fh.close();
      }
      const st = await fsp.stat(abs, { bigint: true });
      const data = spec.data.reduce((sum, [, bytes]) => sum + BigInt(bytes.length), 0n);
      if (st.blocks * 512n > data + SPARSE_SLACK_BYTES) {
        throw new Error(`${showPath(abs)} is not sparse (${st.blocks * 512n} bytes allocated): this filesystem lacks holes`);
      }
      break;
    }
    case 'hardlink':
      await fsp.link(treePath(root, spec.to), abs);
      break;
    case 'symlink':
      await fsp.symlink(spec.target, abs);
      break;
    case 'node':
      posix.mknod(abs, spec.type | spec.mode, spec.rdev);
      break;
  }
}

/**
 * Fills the empty directory `root` with every kind of entry a backup must
 * preserve. Ownership changes and device nodes need root and are left out
 * otherwise (entries then keep the caller's uid/gid).
 */
export async function makeTree(root: string, opts: MakeTreeOptions = {}): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const rootBuf = Buffer.from(root);
  for (const spec of layout(opts.seed ?? 1)) {
    if (spec.kind === 'node' && spec.rootOnly && !asRoot) continue;
    await create(rootBuf, spec);
    const abs = treePath(rootBuf, spec.path);
    // chown before chmod: chown clears setuid/setgid bits.
    if (asRoot && 'owner' in spec && spec.owner) await fsp.lchown(abs, spec.owner.uid, spec.owner.gid);
    // umask trimmed the creation mode; symlinks have no mode of their own on Linux.
    if (spec.kind !== 'hardlink' && spec.kind !== 'symlink') await fsp.chmod(abs, spec.mode);
  }

  const edge = new Map(TREE_MTIMES.edge.map(([path, ns]) => [path.toString('latin1'), ns]));
  // Children before their parent: adding an entry bumps its directory's mtime,
  // while setting a child's times does not.
  walk(rootBuf).reverse().forEach((entry, i) => {
    const ns = edge.get(entry.key) ?? TREE_MTIMES.baseNs + BigInt(i) * TREE_MTIMES.stepNs;
    posix.setTimes(entry.abs, ns, ns, false);
  });
}

type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char-device' | 'block-device' | 'socket';

interface Entry {
  /** Relative path bytes as a latin1 string: lossless, and sorts in byte order. */
  key: string;
  abs: Buffer;
  st: fs.BigIntStats;
  type: EntryType;
}

function typeOf(st: fs.BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'socket';
}

/** Every entry under root, root first (key ''), parents before children, names in byte order. */
function walk(root: Buffer): Entry[] {
  const out: Entry[] = [];
  const visit = (abs: Buffer, key: string) => {
    const st = fs.lstatSync(abs, { bigint: true });
    const entry: Entry = { key, abs, st, type: typeOf(st) };
    out.push(entry);
    if (entry.type !== 'dir') return;
    for (const name of fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const nameKey = name.toString('latin1');
      visit(Buffer.concat([abs, SLASH, name]), key === '' ? nameKey : `${key}/${nameKey}`);
    }
  };
  visit(root, '');
  return out;
}

/** Length of the valid UTF-8 sequence at buf[i], or 0 if there is none. */
function utf8SequenceLength(buf: Buffer, i: number): number {
  const lead = buf[i];
  if (lead < 0x80) return 1;
  const [n, min] = lead >= 0xc2 && lead <= 0xdf ? [2, 0x80] : lead >= 0xe0 && lead <= 0xef ? [3, 0x800]
    : lead >= 0xf0 && lead <= 0xf4 ? [4, 0x10000] : [0, 0];
  if (n === 0 || i + n > buf.length) return 0;
  let cp = lead & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    if ((buf[i + k] & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (buf[i + k] & 0x3f);
  }
  return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/** Quoted, with invalid UTF-8 bytes and control characters as escapes, so every name is visible and unambiguous. */
function showPath(bytes: Buffer): string {
  let s = '';
  for (let i = 0; i < bytes.length;) {
    const n = utf8SequenceLength(bytes, i);
    const hex = () => `\\x${bytes[i].toString(16).padStart(2, '0')}`;
    if (n === 0) {
      s += hex();
      i += 1;
      continue;
    }
    const ch = bytes.toString('utf8', i, i + n);
    // Combining marks are escaped so that NFC and NFD spellings of a name look different.
    s += ch === '\\' || ch === '"' ? `\\${ch}` : ch === '\n' ? '\\n' : ch === '\t' ? '\\t'
      : ch < ' ' || ch === '\x7f' ? hex() : /\p{M}/u.test(ch) ? `\\u{${ch.codePointAt(0)!.toString(16)}}` : ch;
    i += n;
  }
  return `"${s}"`;
}

const showKey = (key: string) => (key === '' ? '"."' : showPath(Buffer.from(key, 'latin1')));
const octal = (mode: bigint) => (mode & 0o7777n).toString(8).padStart(4, '0');

function sha256(path: Buffer): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function compareEntry(x: Entry, y: Entry): string[] {
  const p = showKey(x.key);
  if (x.type !== y.type) return [`${p}: type ${x.type} vs ${y.type}`];
  const out: string[] = [];
  if ((x.st.mode & 0o7777n) !== (y.st.mode & 0o7777n)) out.push(`${p}: mode ${octal(x.st.mode)} vs ${octal(y.st.mode)}`);
  if (x.st.uid !== y.st.uid || x.st.gid !== y.st.gid) {
    out.push(`${p}: owner ${x.st.uid}:${x.st.gid} vs ${y.st.uid}:${y.st.gid}`);
  }
  if (x.st.mtimeNs !== y.st.mtimeNs) out.push(`${p}: mtime ${x.st.mtimeNs}ns vs ${y.st.mtimeNs}ns`);
  if (x.type === 'file') {
    if (x.st.size !== y.st.size) {
      out.push(`${p}: size ${x.st.size} vs ${y.st.size}`);
    } else {
      const [hx, hy] = [sha256(x.abs), sha256(y.abs)];
      if (hx !== hy) out.push(`${p}: content differs (sha256 ${hx.slice(0, 16)}… vs ${hy.slice(0, 16)}…)`);
    }
    const [allocX, allocY] = [x.st.blocks * 512n, y.st.blocks * 512n];
    if (allocX < x.st.size && (allocY >= y.st.size || allocY > allocX + SPARSE_SLACK_BYTES)) {
      out.push(`${p}: sparseness lost: allocates ${allocX} vs ${allocY} bytes of ${x.st.size} vs ${y.st.size}`);
    }
  }
  if (x.type === 'symlink') {
    const [tx, ty] = [fs.readlinkSync(x.abs, { encoding: 'buffer' }), fs.readlinkSync(y.abs, { encoding: 'buffer' })];
    if (!tx.equals(ty)) out.push(`${p}: symlink target ${showPath(tx)} vs ${showPath(ty)}`);
  }
  if ((x.type === 'char-device' || x.type === 'block-device') && x.st.rdev !== y.st.rdev) {
    out.push(`${p}: device ${majorMinor(x.st.rdev)} vs ${majorMinor(y.st.rdev)}`);
  }
  return out;
}

/** Each non-directory path in `keys` → the sorted paths in `keys` sharing its inode. */
function linkGroups(entries: Map<string, Entry>, keys: string[]): Map<string, string[]> {
  const byInode = new Map<string, string[]>();
  for (const key of keys) {
    const { st, type } = entries.get(key)!;
    if (type === 'dir') continue;
    const inode = `${st.dev}:${st.ino}`;
    byInode.set(inode, [...(byInode.get(inode) ?? []), key]);
  }
  return new Map([...byInode.values()].flatMap((group) => group.map((key) => [key, group] as const)));
}

/**
 * Hardlinks are compared among the paths present in both trees (a missing path
 * is already reported), one line per differing group rather than per member.
 */
function compareHardlinks(ea: Map<string, Entry>, eb: Map<string, Entry>, common: string[]): string[] {
  const [ga, gb] = [linkGroups(ea, common), linkGroups(eb, common)];
  const reported = new Set<string>();
  const out: string[] = [];
  const show = (group: string[]) => `[${group.map(showKey).join(', ')}]`;
  for (const key of common) {
    const [x, y] = [ga.get(key), gb.get(key)];
    if (!x || !y || reported.has(key) || x.join('\0') === y.join('\0')) continue;
    for (const k of [...x, ...y]) reported.add(k);
    out.push(`${showKey(key)}: hardlinks differ: a links ${show(x)} vs b links ${show(y)}`);
  }
  return out;
}

/**
 * Every difference a faithful restore must not have, one readable line each,
 * ordered by path ("a" values first): entries in only one tree, type,
 * mode & 0o7777, owner, mtime to the ns (symlinks and directories too), size
 * and SHA-256 of regular files, holes of sparse files, symlink targets, device
 * numbers and hardlink groups. atime, ctime and inode numbers are ignored.
 */
export function compareTrees(a: string, b: string, opts: CompareOptions = {}): string[] {
  const ea = new Map(walk(Buffer.from(a)).map((e) => [e.key, e]));
  const eb = new Map(walk(Buffer.from(b)).map((e) => [e.key, e]));
  const out: string[] = [];
  const common: string[] = [];
  for (const key of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
    if (key === '' && !opts.compareRoot) continue;
    const [x, y] = [ea.get(key), eb.get(key)];
    if (x && y) {
      common.push(key);
      out.push(...compareEntry(x, y));
    } else {
      out.push(`${showKey(key)}: only in ${x ? 'a' : 'b'} (${(x ?? y)!.type})`);
    }
  }
  return [...out, ...compareHardlinks(ea, eb, common)];
}

/** One line per entry with the metadata compareTrees looks at, for debugging failed comparisons. */
export function describeTree(root: string): string {
  return walk(Buffer.from(root)).map(({ key, abs, st, type }) => {
    const detail = type === 'file' ? `size=${st.size} allocated=${st.blocks * 512n} ino=${st.ino} nlink=${st.nlink}`
      : type === 'symlink' ? `-> ${showPath(fs.readlinkSync(abs, { encoding: 'buffer' }))}`
      : type === 'char-device' || type === 'block-device' ? `device=${majorMinor(st.rdev)}`
      : '';
    return `${type.padEnd(12)} ${octal(st.mode)} ${st.uid}:${st.gid} mtime=${st.mtimeNs} ${showKey(key)} ${detail}`.trimEnd();
  }).join('\n');
}
