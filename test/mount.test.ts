import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, backupSnapshotId, cliEnv, scrate } from './helpers/cli.js';
import { detachLoop, loopDevicesUnavailable, makeExt4Image, mount, umount } from './helpers/disk.js';
import { cleanupMount, eventually, fuseUnavailable, isMounted, startMount, type RunningMount } from './helpers/fuse-mount.js';
import { flipByte, listObjects, scratch } from './helpers/repo.js';
import { compareTrees, makeTree, TREE, treePath } from './helpers/tree.js';

const unavailable = fuseUnavailable() ?? loopDevicesUnavailable();
// In CI every tool is installed and this runs as root: a missing one is a failure, not a skip.
if (unavailable && process.env['CI']) throw new Error(`scrate mount cannot be tested: ${unavailable}`);

/** restic's snapshot directory names: RFC 3339 local time to the second, "-N" for a repeated one. */
const TIME_NAME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)(-\d+)?$/;

function sha256(file: string | Buffer): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * `diff -r` of two trees, symlinks compared as links: its output, empty when they are alike.
 * diff does not compare special files and says so of each pair, alike or not ("File a is a fifo
 * while file b is a fifo"): a pair of the same type is left out (compareTrees compares them).
 */
function diffTrees(a: string, b: string): string {
  const r = spawnSync('diff', ['-r', '--no-dereference', a, b], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 1, `diff failed: ${r.stderr}`);
  const sameKind = /^File .* is an? (fifo|character special file|block special file) while file .* is an? \1$/;
  return (r.stdout + r.stderr).split('\n').filter((line) => line !== '' && !sameKind.test(line)).join('\n');
}

/** Differences in hard link counts of the non-directories of two trees (compareTrees leaves st_nlink out); names are bytes. */
function linkCountDifferences(a: string, b: string, rel: Buffer = Buffer.alloc(0)): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(treePath(a, rel), { encoding: 'buffer' })) {
    const p = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
    const [x, y] = [fs.lstatSync(treePath(a, p)), fs.lstatSync(treePath(b, p))];
    if (x.isDirectory()) out.push(...linkCountDifferences(a, b, p));
    else if (x.nlink !== y.nlink) out.push(`${p.toString('latin1')}: nlink ${x.nlink} vs ${y.nlink}`);
  }
  return out;
}

describe('scrate mount', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  let src: string;
  let mnt: string;
  /** Each snapshot's ID and a copy of the tree it was made of. */
  const versions: { id: string; copy: string }[] = [];

  const backup = (args: string[]) => {
    const r = scrate(['backup', '--json', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return backupSnapshotId(r.stdout);
  };
  /** A version of the tree at src, backed up and copied. */
  const version = async (seed: number, args: string[]) => {
    fs.rmSync(src, { recursive: true, force: true });
    fs.mkdirSync(src);
    await makeTree(src, { seed });
    const id = backup([...args, src]);
    const copy = path.join(tmp.dir, `copy-${versions.length}`);
    execFileSync('cp', ['-a', '--sparse=always', src, copy]);
    versions.push({ id, copy });
  };
  /** Where a snapshot's copy of src lies in the mount. */
  const inMount = (id: string) => path.join(mnt, 'ids', id.slice(0, 8), src);

  before(async () => {
    tmp = scratch('mount');
    // The mountpoint as /proc/self/mountinfo names it: no symlink on the way.
    tmp.dir = fs.realpathSync(tmp.dir);
    env = cliEnv(path.join(tmp.dir, 'repo'));
    src = path.join(tmp.dir, 'src');
    mnt = path.join(tmp.dir, 'mnt');
    fs.mkdirSync(mnt);
    assert.equal(scrate(['init'], env).code, 0);
    // Two snapshots in the same second: the second one's directory is numbered.
    await version(1, ['--host', 'alpha', '--tag', 'a', '--time', '2026-01-02 03:04:05']);
    await version(2, ['--host', 'x/y', '--tag', 'a,b', '--time', '2026-01-02 03:04:05']);
  });
  after(async () => {
    await cleanupMount(undefined, mnt);
    tmp?.cleanup();
  });

  test('each snapshot directory is the tree it was made of: diff -r, stat metadata, hardlinks, a large file', async () => {
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, env);
      for (const { id, copy } of versions) {
        const dir = inMount(id);
        assert.equal(diffTrees(copy, dir), '', `diff -r of snapshot ${id.slice(0, 8)}`);
        // Mode, owner, mtime to the ns, size, content, symlink targets, device numbers, hardlink
        // groups. Holes: a file of the mount allocates the bytes of its blobs that are not zero
        // blobs, and a blob around a few bytes of data is a whole chunk (up to 8 MiB), so that
        // allocation is more than the original's; it is still less than the file's size.
        const differences = compareTrees(copy, dir).filter((d) => !/: sparseness lost: /.test(d));
        assert.deepEqual(differences, [], `metadata of snapshot ${id.slice(0, 8)}`);
        for (const sparse of [TREE.sparse, TREE.allHole]) {
          const st = fs.statSync(treePath(dir, sparse));
          assert.ok(st.blocks * 512 < st.size, `${sparse}: ${st.blocks * 512} bytes allocated of ${st.size}`);
        }
        assert.deepEqual(linkCountDifferences(copy, dir), []);
        assert.equal(sha256(treePath(dir, TREE.large)), sha256(treePath(copy, TREE.large)));
        assert.equal(fs.readlinkSync(treePath(dir, TREE.relativeSymlink)), fs.readlinkSync(treePath(copy, TREE.relativeSymlink)));
        assert.equal(fs.lstatSync(treePath(dir, TREE.trio[0]!)).nlink, 3);
      }
      // Nothing of it can be changed.
      assert.throws(() => fs.writeFileSync(treePath(inMount(versions[0]!.id), TREE.large), 'x'), { code: 'EROFS' });
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('layout: snapshots/<time> with latest, ids/, hosts/ and tags/, hostile host names made safe', async () => {
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, env);
      assert.deepEqual(fs.readdirSync(mnt).sort(), ['hosts', 'ids', 'snapshots', 'tags']);
      const times = fs.readdirSync(path.join(mnt, 'snapshots')).filter((n) => n !== 'latest');
      assert.equal(times.length, 2);
      for (const t of times) assert.match(t, TIME_NAME);
      // The same second twice: the later one (by ID, as `latest` breaks ties) is numbered.
      assert.ok(times.some((t) => t.endsWith('-1')), `times ${times.join(' ')}`);
      const latest = fs.readlinkSync(path.join(mnt, 'snapshots', 'latest'));
      assert.ok(latest.endsWith('-1'), `latest -> ${latest}`);
      const newest = [...versions].sort((x, y) => x.id.localeCompare(y.id))[1]!;
      assert.equal(diffTrees(newest.copy, path.join(mnt, 'snapshots', 'latest', src)), '');
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'ids')).sort(), versions.map((v) => v.id.slice(0, 8)).sort());
      // "x/y" cannot be a directory name: it becomes one name, never a path.
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'hosts')).sort(), ['alpha', 'x_y']);
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'tags')).sort(), ['a', 'b']);
      assert.equal(fs.readdirSync(path.join(mnt, 'tags', 'a')).filter((n) => n !== 'latest').length, 2);
      const [onlyB] = fs.readdirSync(path.join(mnt, 'tags', 'b')).filter((n) => n !== 'latest');
      assert.equal(diffTrees(versions[1]!.copy, path.join(mnt, 'tags', 'b', onlyB!, src)), '');
      assert.equal(diffTrees(versions[0]!.copy, path.join(mnt, 'hosts', 'alpha', 'latest', src)), '');
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('a backup made while mounted appears without remounting, its content readable', async () => {
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, env);
      assert.equal(fs.readdirSync(path.join(mnt, 'ids')).length, 2);
      fs.writeFileSync(path.join(src, 'new-file'), 'written while mounted\n');
      const id = backup(['--host', '..', src]);
      assert.ok(await eventually(() => fs.readdirSync(path.join(mnt, 'ids')).includes(id.slice(0, 8)), 10_000), 'the new snapshot appears');
      assert.equal(fs.readFileSync(path.join(inMount(id), 'new-file'), 'utf8'), 'written while mounted\n');
      assert.equal(sha256(treePath(inMount(id), TREE.large)), sha256(treePath(src, TREE.large)));
      assert.ok(fs.readdirSync(path.join(mnt, 'hosts')).includes('_..'));
      fs.rmSync(path.join(src, 'new-file'));
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('a device snapshot is a file of the device: it loop-mounts read-only and diff -r against the original is empty', async () => {
    const image = path.join(tmp.dir, 'fs.img');
    const original = path.join(tmp.dir, 'original');
    const restored = path.join(tmp.dir, 'from-mount');
    const copy = versions[0]!.copy;
    // Files of every size, hardlinks, deep directories (ext4 refuses the tree's longest symlink target).
    makeExt4Image(image, 64, ['data', 'deep', 'links', 'sparse'].map((d) => path.join(copy, d)), path.join(tmp.dir, 'setup'));
    const id = backup(['--as-device', '--host', 'disk', image]);
    let m: RunningMount | undefined;
    const loops: string[] = [];
    const mounts: string[] = [];
    try {
      m = await startMount(mnt, env);
      const file = path.join(mnt, 'ids', id.slice(0, 8), image);
      const st = fs.statSync(file);
      assert.ok(st.isFile());
      assert.equal(st.size, fs.statSync(image).size);
      loops.push(execFileSync('losetup', ['-r', '-f', '--show', file], { encoding: 'utf8' }).trim());
      mount(loops[0]!, restored, true);
      mounts.push(restored);
      loops.push(execFileSync('losetup', ['-r', '-f', '--show', image], { encoding: 'utf8' }).trim());
      mount(loops[1]!, original, true);
      mounts.push(original);
      assert.equal(diffTrees(original, restored), '');
      assert.deepEqual(compareTrees(original, restored), []);
    } finally {
      for (const dir of mounts.reverse()) umount(dir);
      for (const dev of loops) detachLoop(dev);
      await cleanupMount(m, mnt);
    }
  });

  for (const [how, code] of [['SIGINT', 130], ['SIGTERM', 143], ['fusermount -u', 0]] as const) {
    test(`${how} unmounts, and the process ends with ${code}`, async () => {
      let m: RunningMount | undefined;
      try {
        m = await startMount(mnt, env);
        // A shell inside the mount (a busy mountpoint) does not keep it mounted.
        const inside = spawn('sleep', ['30'], { cwd: path.join(mnt, 'snapshots'), stdio: 'ignore' });
        try {
          if (how === 'fusermount -u') execFileSync('fusermount', ['-u', '-z', mnt]);
          else m.child.kill(how);
          const { code: exit, stderr } = await m.exited;
          assert.equal(exit, code, stderr);
          assert.equal(isMounted(mnt), false);
        } finally {
          inside.kill('SIGKILL');
        }
      } finally {
        await cleanupMount(m, mnt);
      }
    });
  }

  test('a reader killed mid-read leaves the mount serving; it then unmounts cleanly', async () => {
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, env);
      const big = treePath(inMount(versions[0]!.id), TREE.large);
      // Direct reads reach the filesystem each time (no page cache between).
      const reader = spawn('sh', ['-c', 'while :; do dd if="$0" of=/dev/null bs=64k iflag=direct 2>/dev/null; done', big.toString()], { stdio: 'ignore', detached: true });
      await new Promise((r) => setTimeout(r, 500));
      process.kill(-reader.pid!, 'SIGKILL');
      await new Promise((r) => reader.on('exit', r));
      assert.equal(sha256(big), sha256(treePath(versions[0]!.copy, TREE.large)));
      assert.equal(m.child.exitCode, null, 'still serving');
      execFileSync('fusermount', ['-u', mnt]);
      assert.equal((await m.exited).code, 0);
      assert.equal(isMounted(mnt), false);
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('a damaged blob fails its reads with EIO and a warning; the rest is served', async () => {
    const repoDir = path.join(tmp.dir, 'damaged-repo');
    const denv = cliEnv(repoDir);
    const data = path.join(tmp.dir, 'damaged-src');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'big'), randomBytes(3 * 1024 * 1024));
    fs.writeFileSync(path.join(data, 'small'), 'fine\n');
    assert.equal(scrate(['init'], denv).code, 0);
    assert.equal(scrate(['backup', data], denv).code, 0);
    // The largest pack holds the big file's blobs; a bit flipped in its middle breaks one of them.
    const packs = listObjects(repoDir, 'data').map((p) => path.join(repoDir, p));
    const largest = packs.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    flipByte(largest, Math.floor(fs.statSync(largest).size / 2));
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, denv);
      const snap = path.join(mnt, 'snapshots', 'latest', data);
      assert.throws(() => fs.readFileSync(path.join(snap, 'big')), { code: 'EIO' });
      assert.equal(fs.readFileSync(path.join(snap, 'small'), 'utf8'), 'fine\n');
      execFileSync('fusermount', ['-u', mnt]);
      const { code, stderr } = await m.exited;
      assert.equal(code, 0, stderr);
      assert.match(stderr, /blob \w+ in pack \w+: blob failed authentication/);
      assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('an unusable mountpoint is a one-line error', () => {
    assertCleanError(scrate(['mount', path.join(tmp.dir, 'absent')], env), 1, /mountpoint .*absent does not exist/);
    assertCleanError(scrate(['mount', treePath(src, TREE.large).toString()], env), 1, /is not a directory/);
    assertCleanError(scrate(['mount', src], env), 1, /is not empty/);
  });
});
