import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { posix } from '../src/native/posix.js';
import { TREE, TREE_MTIMES, compareTrees, describeTree, makeTree, makedev, treePath } from './helpers/tree.js';

const asRoot = process.getuid?.() === 0;
const SEED = 7;
const MiB = 1024 * 1024;

let tmp: string;
let a: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-tree-'));
  a = await freshTree('a');
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function freshTree(name: string, seed = SEED): Promise<string> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  await makeTree(dir, { seed });
  return dir;
}

const lstat = (p: Buffer) => fs.lstatSync(p, { bigint: true });

/** Independent of the helper's own walk, so that a bug there cannot hide itself. */
function listAll(root: string): Array<{ rel: Buffer; st: fs.BigIntStats }> {
  const out: Array<{ rel: Buffer; st: fs.BigIntStats }> = [];
  const visit = (relPath: Buffer) => {
    for (const name of fs.readdirSync(treePath(root, relPath), { encoding: 'buffer' })) {
      const child = relPath.length ? Buffer.concat([relPath, Buffer.from('/'), name]) : name;
      const st = lstat(treePath(root, child));
      out.push({ rel: child, st });
      if (st.isDirectory()) visit(child);
    }
  };
  visit(Buffer.alloc(0));
  return out;
}

/** Runs fn, then puts back p's times, so that a mutation changes only what it means to. */
function keepingTimes(p: Buffer, fn: () => void): void {
  const st = lstat(p);
  fn();
  posix.setTimes(p, st.atimeNs, st.mtimeNs, false);
}

/** Replaces an entry with what create() makes, restoring owner, mode and times of it and its directory. */
function replaceEntry(p: Buffer, create: () => void): void {
  keepingTimes(Buffer.from(path.dirname(p.toString('latin1')), 'latin1'), () => {
    const st = lstat(p);
    fs.unlinkSync(p);
    create();
    if (asRoot) fs.lchownSync(p, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) fs.chmodSync(p, Number(st.mode & 0o7777n));
    posix.setTimes(p, st.atimeNs, st.mtimeNs, false);
  });
}

function assertDiffs(diffs: string[], ...expected: RegExp[]): void {
  assert.equal(diffs.length, expected.length, `unexpected differences:\n${diffs.join('\n')}`);
  expected.forEach((re, i) => assert.match(diffs[i], re));
}

describe('makeTree', () => {
  test('creates every kind of entry', () => {
    const entries = listAll(a);
    const count = (pred: (st: fs.BigIntStats) => boolean) => entries.filter((e) => pred(e.st)).length;
    assert.deepEqual(
      {
        dirs: count((st) => st.isDirectory()),
        files: count((st) => st.isFile()),
        symlinks: count((st) => st.isSymbolicLink()),
        fifos: count((st) => st.isFIFO()),
        charDevices: count((st) => st.isCharacterDevice()),
        blockDevices: count((st) => st.isBlockDevice()),
      },
      { dirs: 21, files: 45, symlinks: 8, fifos: 1, charDevices: asRoot ? 1 : 0, blockDevices: asRoot ? 1 : 0 },
    );

    const size = (rel: Buffer) => lstat(treePath(a, rel)).size;
    assert.equal(size(TREE.empty), 0n);
    assert.equal(size(TREE.oneByte), 1n);
    assert.equal(size(TREE.medium), BigInt(3 * MiB));
    assert.ok(size(TREE.large) > BigInt(9 * MiB));
    assert.ok(fs.readFileSync(treePath(a, TREE.medium)).equals(fs.readFileSync(treePath(a, TREE.mediumCopy))));
    assert.notEqual(lstat(treePath(a, TREE.medium)).ino, lstat(treePath(a, TREE.mediumCopy)).ino);

    assert.ok(lstat(treePath(a, TREE.deepLeaf)).isFile());
    assert.deepEqual(fs.readdirSync(treePath(a, TREE.emptyDir)), []);

    const groups = new Map<bigint, string[]>();
    for (const { rel, st } of entries) {
      if (st.isFile()) groups.set(st.ino, [...(groups.get(st.ino) ?? []), rel.toString('latin1')]);
    }
    const linked = [...groups.values()].filter((g) => g.length > 1).sort((x, y) => x.length - y.length);
    assert.deepEqual(linked.map((g) => g.length), [2, 3]);
    assert.equal(new Set(linked[1].map((p) => path.dirname(p))).size, 3, 'the trio spans three directories');

    const target = (rel: string | Buffer) => fs.readlinkSync(treePath(a, Buffer.from(rel)), { encoding: 'buffer' });
    assert.deepEqual([...target(TREE.badTargetSymlink)], [0x74, 0xff, 0xfe, 0x2f, 0x78]);
    assert.equal(target('symlinks/absolute').toString(), '/etc/passwd');
    assert.equal(target(TREE.relativeSymlink).toString(), '../data/small.txt');
    assert.throws(() => fs.statSync(treePath(a, Buffer.from('symlinks/dangling'))), { code: 'ENOENT' });
    assert.ok(fs.statSync(treePath(a, Buffer.from('symlinks/to-dir'))).isDirectory());

    const notUtf8 = (rel: Buffer) => assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(rel), TypeError);
    notUtf8(TREE.badName);
    notUtf8(TREE.badDir);
    assert.ok(lstat(treePath(a, TREE.badName)).isFile());
    assert.ok(lstat(treePath(a, TREE.newlineName)).isFile());

    const mode = (rel: Buffer) => Number(lstat(treePath(a, rel)).mode & 0o7777n);
    assert.equal(mode(TREE.setuid), 0o4755);
    assert.equal(mode(TREE.setgidFile), 0o2755);
    assert.equal(mode(TREE.setgidDir), 0o2755);
    assert.equal(mode(TREE.stickyDir), 0o1777);
    assert.equal(mode(TREE.readOnly), 0o444);
    assert.equal(mode(TREE.privateDir), 0o700);
    assert.equal(mode(TREE.noOtherRead) & 0o004, 0);
  });

  test('owners and device nodes (root only)', (t) => {
    if (!asRoot) {
      t.skip('needs root: chown and mknod of device nodes');
      return;
    }
    const owner = (rel: Buffer) => {
      const st = lstat(treePath(a, rel));
      return `${st.uid}:${st.gid}`;
    };
    assert.equal(owner(TREE.otherOwner), '1234:5678');
    assert.equal(owner(TREE.nobodyDir), '65534:65534');
    assert.equal(owner(TREE.ownedSymlink), '4321:8765');
    assert.equal(owner(TREE.setuid), '1234:5678');
    assert.equal(Number(lstat(treePath(a, TREE.setuid)).mode & 0o7777n), 0o4755, 'setuid survives the chown');
    assert.ok(lstat(treePath(a, TREE.charDevice)).isCharacterDevice());
    assert.equal(lstat(treePath(a, TREE.charDevice)).rdev, makedev(1, 3));
    assert.ok(lstat(treePath(a, TREE.blockDevice)).isBlockDevice());
    assert.equal(lstat(treePath(a, TREE.blockDevice)).rdev, makedev(7, 200));
  });

  test('sparse files are really sparse', () => {
    const st = lstat(treePath(a, TREE.sparse));
    assert.equal(st.size, BigInt(64 * MiB));
    assert.ok(st.blocks * 512n < BigInt(MiB), `allocated ${st.blocks * 512n} bytes`);
    const data = fs.readFileSync(treePath(a, TREE.sparse));
    assert.ok(data.subarray(0, MiB).every((byte) => byte === 0), 'starts with a hole');
    assert.ok(data.subarray(17 * MiB + 100, 17 * MiB + 400).some((byte) => byte !== 0), 'has data mid-file');
    assert.equal(lstat(treePath(a, TREE.allHole)).blocks, 0n);
  });

  test('mtimes are exact to the nanosecond and distinct per inode', () => {
    const edge = new Map(TREE_MTIMES.edge.map(([rel, ns]) => [rel.toString('latin1'), ns]));
    const byInode = new Map<bigint, bigint>();
    for (const { rel, st } of listAll(a)) {
      byInode.set(st.ino, st.mtimeNs);
      const expected = edge.get(rel.toString('latin1'));
      if (expected !== undefined) {
        assert.equal(st.mtimeNs, expected, rel.toString());
      } else {
        assert.equal((st.mtimeNs - TREE_MTIMES.baseNs) % TREE_MTIMES.stepNs, 0n, rel.toString());
      }
    }
    assert.equal(new Set(byInode.values()).size, byInode.size);
  });
});

describe('compareTrees', () => {
  test('a tree equals itself', () => {
    assert.deepEqual(compareTrees(a, a), []);
  });

  test('trees from the same seed are equal although inode numbers differ', async () => {
    const b = await freshTree('same-seed');
    assert.notEqual(lstat(treePath(a, TREE.medium)).ino, lstat(treePath(b, TREE.medium)).ino);
    assert.deepEqual(compareTrees(a, b), []);
    assert.deepEqual(compareTrees(a, b, { compareRoot: true }), []);
  });

  test('a different seed changes contents only', async () => {
    const b = await freshTree('other-seed', SEED + 1);
    const diffs = compareTrees(a, b);
    assert.ok(diffs.length > 30, diffs.join('\n'));
    for (const line of diffs) assert.match(line, /: content differs \(sha256 /);
  });

  test('the root is compared only when asked', async () => {
    const b = await freshTree('root-mtime');
    posix.setTimes(Buffer.from(b), 0n, 1n, false);
    assert.deepEqual(compareTrees(a, b), []);
    assertDiffs(compareTrees(a, b, { compareRoot: true }), /^"\.": mtime \d+ns vs 1ns$/);
  });

  test('describeTree shows every entry, escaping odd names', () => {
    const lines = describeTree(a).split('\n');
    assert.equal(lines.length, listAll(a).length + 1);
    assert.ok(lines.some((l) => l.includes('"names/f\\xff\\xfe.bin"')));
    assert.ok(lines.some((l) => l.includes('"names/new\\nline"')));
    assert.ok(lines.some((l) => l.includes('"names/cafe\\u{301}"')), 'NFD differs visibly from NFC');
  });

  describe('detects', () => {
    const mutated: string[] = [];
    after(() => {
      for (const dir of mutated) fs.rmSync(dir, { recursive: true, force: true });
    });
    const mutant = async (name: string) => {
      const b = await freshTree(name);
      mutated.push(b);
      return b;
    };

    test('one changed byte with size and mtime kept', async () => {
      const b = await mutant('byte');
      const p = treePath(b, TREE.large);
      keepingTimes(p, () => {
        const fd = fs.openSync(p, 'r+');
        const byte = Buffer.alloc(1);
        fs.readSync(fd, byte, 0, 1, 5 * MiB);
        byte[0] ^= 0xff;
        fs.writeSync(fd, byte, 0, 1, 5 * MiB);
        fs.closeSync(fd);
      });
      assertDiffs(compareTrees(a, b), /^"data\/large\.bin": content differs/);
    });

    test('chmod', async () => {
      const b = await mutant('chmod');
      fs.chmodSync(treePath(b, TREE.setuid), 0o755);
      assertDiffs(compareTrees(a, b), /^"modes\/setuid": mode 4755 vs 0755$/);
    });

    test('chown', async (t) => {
      if (!asRoot) {
        t.skip('needs root: chown to another user');
        return;
      }
      const b = await mutant('chown');
      fs.lchownSync(treePath(b, TREE.otherOwner), 1234, 0);
      assertDiffs(compareTrees(a, b), /^"owners\/other": owner 1234:5678 vs 1234:0$/);
    });

    test('a symlink\'s own mtime', async () => {
      const b = await mutant('symlink-mtime');
      const p = treePath(b, TREE.relativeSymlink);
      posix.setTimes(p, 0n, lstat(p).mtimeNs + 1n, false);
      assertDiffs(compareTrees(a, b), /^"symlinks\/relative": mtime (\d+)ns vs \d+ns$/);
    });

    test('a directory\'s mtime', async () => {
      const b = await mutant('dir-mtime');
      const p = treePath(b, TREE.deepDir);
      posix.setTimes(p, 0n, lstat(p).mtimeNs - 1n, false);
      assertDiffs(compareTrees(a, b), /^"deep\/a\/b": mtime \d+ns vs \d+ns$/);
    });

    test('a retargeted symlink', async () => {
      const b = await mutant('retarget');
      const p = treePath(b, TREE.badTargetSymlink);
      replaceEntry(p, () => fs.symlinkSync('t/x', p));
      assertDiffs(compareTrees(a, b), /^"symlinks\/bad-utf8-target": symlink target "t\\xff\\xfe\/x" vs "t\/x"$/);
    });

    test('a broken hardlink', async () => {
      const b = await mutant('hardlink');
      const p = treePath(b, TREE.trio[2]);
      const content = fs.readFileSync(p);
      replaceEntry(p, () => fs.writeFileSync(p, content));
      assertDiffs(
        compareTrees(a, b),
        /^"deep\/a\/trio-2": hardlinks differ: a links \["deep\/a\/trio-2", "links\/trio-1", "names\/trio 3"\] vs b links \["deep\/a\/trio-2", "links\/trio-1"\]$/,
      );
    });

    test('a sparse file rewritten fully allocated', async () => {
      const b = await mutant('dense');
      const p = treePath(b, TREE.sparse);
      keepingTimes(p, () => fs.writeFileSync(p, fs.readFileSync(p), { flag: 'r+' }));
      assert.ok(lstat(p).blocks * 512n >= BigInt(64 * MiB));
      assertDiffs(compareTrees(a, b), /^"sparse\/holes\.img": sparseness lost: allocates \d+ vs \d+ bytes/);
    });

    test('a deleted entry', async () => {
      const b = await mutant('delete');
      const p = treePath(b, TREE.deepLeaf);
      keepingTimes(treePath(b, Buffer.from(path.dirname(TREE.deepLeaf.toString()))), () => fs.unlinkSync(p));
      assertDiffs(compareTrees(a, b), /^"deep\/a\/b\/c\/d\/leaf\.txt": only in a \(file\)$/);
    });

    test('an added entry with a non-UTF-8 name', async () => {
      const b = await mutant('add');
      const names = treePath(b, Buffer.from('names'));
      keepingTimes(names, () => fs.mkdirSync(Buffer.concat([names, Buffer.from([0x2f, 0x6e, 0x65, 0x77, 0x80])])));
      assertDiffs(compareTrees(a, b), /^"names\/new\\x80": only in b \(dir\)$/);
    });

    test('a changed file type', async () => {
      const b = await mutant('type');
      const p = treePath(b, TREE.fifo);
      replaceEntry(p, () => fs.writeFileSync(p, ''));
      assertDiffs(compareTrees(a, b), /^"special\/fifo": type fifo vs file$/);
    });

    test('changed device numbers', async (t) => {
      if (!asRoot) {
        t.skip('needs root: mknod of a character device');
        return;
      }
      const b = await mutant('rdev');
      const p = treePath(b, TREE.charDevice);
      replaceEntry(p, () => posix.mknod(p, 0o020000 | 0o666, makedev(1, 5)));
      assertDiffs(compareTrees(a, b), /^"special\/null": device 1:3 vs 1:5$/);
    });
  });
});
