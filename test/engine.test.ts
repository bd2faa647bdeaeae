import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { check } from '../src/checker/checker.js';
import { LocalBackend } from '../src/backend/local.js';
import { ExitCode, IntegrityError, ScrateError } from '../src/errors.js';
import { BackupFilter } from '../src/filter/backup-filter.js';
import { RestoreFilter } from '../src/filter/restore-filter.js';
import { readEnvelope, readPackHeader, BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { calibrateKdf, KDF_FLOOR, kdfProblem, MAX_KDF_MEMORY } from '../src/crypto/kdf.js';
import { encodeConfig } from '../src/repository/config.js';
import { sha256 } from '../src/crypto/primitives.js';
import { restore } from '../src/restorer/restorer.js';
import { listSnapshots, loadSnapshot, type BackupSummary } from '../src/snapshot/snapshot.js';
import { encodeTree, type Node } from '../src/tree/node.js';
import { findNode, walkTree } from '../src/tree/walk.js';
import { addedBelow, flipByte, initRepo, listObjects, openRepo, own, PASSWORD, scratch } from './helpers/repo.js';
import { compareTrees, makeTree, TREE, treePath } from './helpers/tree.js';

describe('backup → restore round trip', () => {
  let tmp: ReturnType<typeof scratch>;
  let src: string;
  let repoDir: string;
  /** Restore targets go here, not beside the source: a new entry in an ancestor changes its tree. */
  const out = (name: string) => path.join(tmp.dir, 'out', name);

  before(async () => {
    tmp = scratch('engine');
    src = path.join(tmp.dir, 'src');
    repoDir = path.join(tmp.dir, 'repo');
    fs.mkdirSync(src);
    fs.mkdirSync(path.join(tmp.dir, 'out'));
    await makeTree(src);
    await initRepo(repoDir);
  });
  after(() => tmp.cleanup());

  test('a tree with every file type restores bit-exactly', async () => {
    const repo = await openRepo(repoDir);
    const { snapshotId, snapshot } = await backup(repo, { paths: [src] });
    assert.ok(snapshotId);
    assert.equal(snapshot.summary!.errors, 0);
    const target = out('restore-full');
    const stats = await restore(own(await openRepo(repoDir)), snapshot, { target });
    assert.equal(stats.errors, 0);
    // The snapshot holds the absolute source path; it is recreated below the target.
    assert.deepEqual(compareTrees(src, path.join(target, src)), []);
  });

  test('a second backup of an unchanged tree reads no file data and adds only a snapshot', async () => {
    const snapshotsBefore = (await listSnapshots(await openRepo(repoDir))).length;
    let parentId: string | undefined;
    let s: BackupSummary | undefined;
    const added = await addedBelow(repoDir, src, async () => {
      const r = await backup(await openRepo(repoDir), { paths: [src] });
      ({ parentId } = r);
      s = r.snapshot.summary;
      return r.snapshotId!;
    });
    assert.ok(parentId, 'the first snapshot is used as parent');
    assert.equal(s!.bytesRead, 0);
    assert.equal(s!.filesNew + s!.filesChanged, 0);
    assert.ok(s!.filesUnmodified > 20);
    assert.deepEqual(added, { dataPacks: 0, trees: 0 });
    assert.equal((await listSnapshots(await openRepo(repoDir))).length, snapshotsBefore + 1);
  });

  test('--force re-reads everything and still adds no data', async () => {
    let bytesRead = 0;
    const added = await addedBelow(repoDir, src, async () => {
      const r = await backup(await openRepo(repoDir), { paths: [src], force: true });
      bytesRead = r.snapshot.summary!.bytesRead;
      return r.snapshotId!;
    });
    assert.ok(bytesRead > 64 * 1024);
    assert.deepEqual(added, { dataPacks: 0, trees: 0 });
  });

  test('a changed file is re-read; the rest is reused', async () => {
    const leaf = treePath(src, TREE.deepLeaf);
    const st = fs.statSync(leaf);
    fs.appendFileSync(leaf, 'more\n');
    fs.utimesSync(leaf, st.atime, st.mtime); // same mtime: ctime and size still give it away
    const { snapshot } = await backup(await openRepo(repoDir), { paths: [src] });
    assert.equal(snapshot.summary!.filesChanged, 1);
    assert.equal(snapshot.summary!.bytesRead, st.size + 5);
    const target = out('restore-changed');
    await restore(own(await openRepo(repoDir)), snapshot, { target, subpath: src });
    assert.deepEqual(compareTrees(src, target), []);
  });

  test('partial restore: a subpath, includes and excludes', async () => {
    const repo = await openRepo(repoDir);
    const { snapshot } = (await listSnapshots(repo)).at(-1)!;
    const sub = out('restore-sub');
    await restore(own(repo), snapshot, { target: sub, subpath: path.join(src, 'deep/a') });
    assert.ok(fs.existsSync(path.join(sub, 'b/c/d/leaf.txt')));
    assert.ok(!fs.existsSync(path.join(sub, 'deep')));

    const inc = out('restore-include');
    await restore(own(repo), snapshot, { target: inc, subpath: src, filter: new RestoreFilter({ include: ['*.bin', '!dedup/*'] }) });
    assert.ok(fs.existsSync(path.join(inc, 'data/medium.bin')));
    assert.ok(!fs.existsSync(path.join(inc, 'dedup')), 'a directory whose every match a later ! pattern undoes');
    assert.ok(!fs.existsSync(path.join(inc, 'symlinks')), 'no empty directories for filtered-out content');
  });

  test('restore refuses to overwrite unless asked', async () => {
    const repo = await openRepo(repoDir);
    const { snapshot } = (await listSnapshots(repo)).at(-1)!;
    const target = out('restore-overwrite');
    const file = path.join(target, 'data/one-byte');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'local edit');
    await assert.rejects(restore(own(repo), snapshot, { target, subpath: src }), /refusing to overwrite/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'local edit');
    await restore(own(repo), snapshot, { target, subpath: src, overwrite: true });
    assert.deepEqual(compareTrees(src, target), []);
  });

  test('a dry run writes nothing', async () => {
    const before = listObjects(repoDir);
    fs.writeFileSync(path.join(src, 'dry-run-new'), 'x'.repeat(10000));
    try {
      const r = await backup(await openRepo(repoDir), { paths: [src], dryRun: true });
      assert.equal(r.snapshotId, undefined);
      assert.equal(r.snapshot.summary!.filesNew, 1);
      assert.deepEqual(listObjects(repoDir), before);
    } finally {
      fs.rmSync(path.join(src, 'dry-run-new'));
    }
  });

  test('excludes keep matching paths out of the snapshot', async () => {
    const { snapshot } = await backup(await openRepo(repoDir), { paths: [src], filter: new BackupFilter({ exclude: ['*.bin', 'special'] }, assert.fail) });
    const target = out('restore-excluded');
    await restore(own(await openRepo(repoDir)), snapshot, { target, subpath: src });
    assert.ok(!fs.existsSync(path.join(target, 'data/medium.bin')));
    assert.ok(!fs.existsSync(path.join(target, 'special')));
    assert.ok(fs.existsSync(path.join(target, 'data/one-byte')));
  });
});

describe('damage is detected, never restored silently', () => {
  let tmp: ReturnType<typeof scratch>;
  let src: string;
  let pristine: string;
  const files = ['f0', 'f1', 'f2', 'f3', 'f4'];

  before(async () => {
    tmp = scratch('damage');
    src = path.join(tmp.dir, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    // Incompressible, and packs of 256 KiB: each file lands in a pack of its own.
    for (const name of files) fs.writeFileSync(path.join(src, name), randomBytes(300_000));
    fs.writeFileSync(path.join(src, 'sub/g'), 'hello');
    pristine = path.join(tmp.dir, 'pristine');
    await initRepo(pristine, { packSize: 256 * 1024 });
    await backup(await openRepo(pristine), { paths: [src] });
  });
  after(() => tmp.cleanup());

  /** A fresh copy of the repository to damage. */
  function copy(name: string): string {
    const dir = path.join(tmp.dir, name);
    fs.cpSync(pristine, dir, { recursive: true });
    return dir;
  }

  async function packsOf(dir: string, type: 'data' | 'tree'): Promise<string[]> {
    const repo = await openRepo(dir);
    return repo.index.packs.filter((p) => p.type === (type === 'data' ? BlobType.data : BlobType.tree)).map((p) => p.id.toString('hex'));
  }

  const packFile = (dir: string, id: string) => path.join(dir, 'data', id.slice(0, 2), id);

  /** Restores the source; every file that is restored must be exact. Returns the errors. */
  async function restoreAll(dir: string, name: string): Promise<{ target: string; errors: string[] }> {
    const repo = await openRepo(dir);
    const { snapshot } = (await listSnapshots(repo)).at(-1)!;
    const errors: string[] = [];
    const target = path.join(tmp.dir, `restored-${name}`);
    const stats = await restore(own(repo), snapshot, { target, subpath: src, onError: (p, m) => errors.push(`${p}: ${m}`) });
    assert.equal(stats.errors, errors.length);
    if (fs.existsSync(target)) {
      for (const f of fs.readdirSync(target)) {
        if (f !== 'sub') assert.deepEqual(fs.readFileSync(path.join(target, f)), fs.readFileSync(path.join(src, f)), `${f} restored exactly`);
      }
    }
    return { target, errors };
  }

  test('a flipped byte in a blob fails exactly the file it belongs to', async () => {
    const dir = copy('blob');
    const packs = await packsOf(dir, 'data');
    assert.ok(packs.length >= 4, `files spread over packs (${packs.length})`);
    flipByte(packFile(dir, packs[0]!), 100);
    const { target, errors } = await restoreAll(dir, 'blob');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /failed authentication/);
    assert.equal(fs.readdirSync(target).filter((f) => f !== 'sub').length, files.length - 1, 'the other files are restored');
    assert.equal(fs.readFileSync(path.join(target, 'sub/g'), 'utf8'), 'hello');
  });

  for (const [where, at] of [['header', -10], ['key envelope', 20]] as const) {
    test(`a flipped byte in a pack's own ${where} is found when the pack is read whole`, async () => {
      const dir = copy(`pack-${at}`);
      const [pack] = await packsOf(dir, 'data');
      flipByte(packFile(dir, pack!), at);
      const repo = await openRepo(dir);
      const bytes = fs.readFileSync(packFile(dir, pack!));
      // The index keeps its own copy of the envelope, so blob reads are unaffected …
      const { errors } = await restoreAll(dir, `pack-${at}`);
      assert.deepEqual(errors, []);
      // … but the pack no longer verifies against its name or its own header.
      assert.notEqual(sha256(bytes).toString('hex'), pack);
      assert.throws(() => readPackHeader(bytes, repo.packKey(pack!, readEnvelope(bytes, 'pack')), 'pack'), IntegrityError);
    });
  }

  test('a flipped byte in a tree pack is reported, nothing below it is restored', async () => {
    const dir = copy('tree');
    const [pack] = await packsOf(dir, 'tree');
    flipByte(packFile(dir, pack!), 60);
    const { errors } = await restoreAll(dir, 'tree');
    assert.ok(errors.length >= 1);
    assert.match(errors.join(), /failed authentication|contents lost/);
  });

  test('a flipped byte in one tree costs only that directory, not the rest of its tree pack', async () => {
    const dir = copy('one-tree');
    const repo = await openRepo(dir);
    const { snapshot } = (await listSnapshots(repo)).at(-1)!;
    const sub = (await findNode(own(repo), Buffer.from(snapshot.tree, 'hex'), path.join(src, 'sub')))!;
    const loc = own(repo).find(BlobType.tree, sub.subtree!)!;
    assert.equal(loc.pack.type, BlobType.tree);
    assert.ok(repo.index.packs.filter((p) => p.type === BlobType.tree).length === 1, 'every tree in one pack');
    flipByte(packFile(dir, loc.pack.id.toString('hex')), loc.offset + 20);
    const { target, errors } = await restoreAll(dir, 'one-tree');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /sub: .*failed authentication/);
    assert.equal(fs.readdirSync(target).filter((f) => f !== 'sub').length, files.length, 'every file beside it is restored');
  });

  test('a flipped byte in an index file is detected: the index file is skipped with a warning, check reports it', async () => {
    const dir = copy('index');
    const [name] = fs.readdirSync(path.join(dir, 'index'));
    flipByte(path.join(dir, 'index', name!), -5);
    const repo = await Repository.open(new LocalBackend(dir), PASSWORD);
    const warnings: string[] = [];
    await repo.loadIndex((w) => warnings.push(w));
    assert.match(warnings.join('\n'), new RegExp(`index/${name!.slice(0, 12)}: content does not match its name`));
    assert.equal(repo.index.size, 0);
    assert.match((await check(await openRepo(dir, PASSWORD, { index: false }))).errors.map((e) => e.message).join('\n'), new RegExp(`index/${name!.slice(0, 12)}`));
  });

  test('a flipped byte in a snapshot is detected, and does not block listing or the next backup', async () => {
    const dir = copy('snapshot');
    const [name] = fs.readdirSync(path.join(dir, 'snapshots'));
    flipByte(path.join(dir, 'snapshots', name!), 50);
    await assert.rejects(loadSnapshot(await openRepo(dir), name!), IntegrityError);
    const damaged: string[] = [];
    assert.deepEqual(await listSnapshots(await openRepo(dir), (id) => damaged.push(id)), []);
    assert.deepEqual(damaged, [name]);
    const { snapshotId } = await backup(await openRepo(dir), { paths: [src] });
    assert.deepEqual((await listSnapshots(await openRepo(dir))).map((e) => e.id), [snapshotId]);
  });

  test('a flipped byte in the config is detected', async () => {
    const dir = copy('config');
    flipByte(path.join(dir, 'config'), 45);
    await assert.rejects(openRepo(dir), IntegrityError);
  });

  test('check finds each kind of damage, and none in a healthy repository', async () => {
    const healthy = await check(await openRepo(pristine, PASSWORD, { index: false }), { readData: true });
    assert.deepEqual(healthy.errors, []);
    assert.ok(healthy.packs >= 6 && healthy.trees >= 1 && healthy.snapshots === 1);

    const flipped = copy('check-flip');
    const [data] = await packsOf(flipped, 'data');
    flipByte(packFile(flipped, data!), 100);
    assert.deepEqual((await check(await openRepo(flipped, PASSWORD, { index: false }))).errors, [], 'without --read-data the data is not read');
    assert.match((await check(await openRepo(flipped, PASSWORD, { index: false }), { readData: true })).errors.map((e) => e.message).join('\n'), /does not match its name/);

    const lost = copy('check-lost');
    fs.rmSync(packFile(lost, (await packsOf(lost, 'data'))[0]!));
    assert.match((await check(await openRepo(lost, PASSWORD, { index: false }))).errors.map((e) => e.message).join('\n'), /listed in the index but missing/);

    const tree = copy('check-tree');
    flipByte(packFile(tree, (await packsOf(tree, 'tree'))[0]!), 60);
    assert.match((await check(await openRepo(tree, PASSWORD, { index: false }))).errors.map((e) => e.message).join('\n'), /tree .*failed authentication/);
  });

  test('a lost data pack costs only the files in it', async () => {
    const dir = copy('lost');
    const packs = await packsOf(dir, 'data');
    fs.rmSync(packFile(dir, packs[1]!));
    const { target, errors } = await restoreAll(dir, 'lost');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /missing/);
    assert.equal(fs.readdirSync(target).filter((f) => f !== 'sub').length, files.length - 1);
  });
});

describe('filesystem boundaries', () => {
  const asRoot = process.getuid?.() === 0;

  test('--one-file-system records a mount point but not what is mounted on it', { skip: asRoot ? false : 'needs root to mount a tmpfs' }, async () => {
    const tmp = scratch('onefs');
    const mnt = path.join(tmp.dir, 'src/mnt');
    fs.mkdirSync(mnt, { recursive: true });
    fs.writeFileSync(path.join(tmp.dir, 'src/here'), 'same filesystem');
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
    try {
      fs.writeFileSync(path.join(mnt, 'elsewhere'), 'other filesystem');
      await initRepo(path.join(tmp.dir, 'repo'));
      const list = async (oneFileSystem: boolean) => {
        const repo = await openRepo(path.join(tmp.dir, 'repo'));
        const { snapshot } = await backup(repo, { paths: [path.join(tmp.dir, 'src')], oneFileSystem, force: true });
        const names: string[] = [];
        for await (const e of walkTree(own(repo), Buffer.from(snapshot.tree, 'hex'))) names.push(e.path.map((c) => c.toString()).join('/'));
        return names.filter((n) => n.startsWith(tmp.dir.slice(1)));
      };
      const rel = (n: string) => path.join(tmp.dir, n).slice(1);
      assert.ok((await list(false)).includes(rel('src/mnt/elsewhere')));
      const one = await list(true);
      assert.ok(one.includes(rel('src/mnt')) && one.includes(rel('src/here')));
      assert.ok(!one.includes(rel('src/mnt/elsewhere')));
    } finally {
      execFileSync('umount', [mnt]);
      tmp.cleanup();
    }
  });
});

describe('hostile or awkward input', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => (tmp = scratch('awkward')));
  after(() => tmp.cleanup());

  test('a directory above a source reached through a symlink is recorded as the directory it is', async () => {
    const real = path.join(tmp.dir, 'real');
    fs.mkdirSync(path.join(real, 'b'), { recursive: true, mode: 0o750 });
    fs.chmodSync(real, 0o750);
    fs.writeFileSync(path.join(real, 'b/f'), 'x');
    fs.symlinkSync('real', path.join(tmp.dir, 'lnk'));
    await initRepo(path.join(tmp.dir, 'repo'));
    const repo = await openRepo(path.join(tmp.dir, 'repo'));
    const { snapshot } = await backup(repo, { paths: [path.join(tmp.dir, 'lnk/b')] });
    const node = await findNode(own(repo), Buffer.from(snapshot.tree, 'hex'), path.join(tmp.dir, 'lnk'));
    assert.equal(node?.type, 'dir');
    assert.equal(node?.mode, 0o750);
  });

  test('restore refuses a tree with entries named "..", "." or with a slash, and restores none of it', async () => {
    const repo = await openRepo(path.join(tmp.dir, 'repo'));
    const { id: content } = await repo.saveBlob(BlobType.data, Buffer.from('escaped'));
    const file = (name: string): Node => ({ name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 1n, deviceId: 1n, links: 1, size: 7, content: [content] });
    const { id: tree } = await repo.saveBlob(BlobType.tree, encodeTree([file('..'), file('.'), file('a/b'), file('fine')]));
    await repo.flush();
    const target = path.join(tmp.dir, 'hostile', 'target');
    fs.mkdirSync(target, { recursive: true });
    const errors: string[] = [];
    const snapshot = { time: '', tree: tree.toString('hex'), paths: ['/'], hostname: 'h', username: 'u', uid: 0, gid: 0, tags: [], programVersion: 'test' };
    const stats = await restore(own(repo), snapshot, { target, onError: (p, m) => errors.push(`${p}: ${m}`) });
    assert.deepEqual(errors, [`${target}: contents lost: invalid tree: name "." is not a single path component`]);
    assert.equal(stats.errors, 1);
    assert.deepEqual(fs.readdirSync(path.join(tmp.dir, 'hostile')), ['target']);
    assert.deepEqual(fs.readdirSync(target), []);
  });

  test('restore --overwrite with --include replaces a file standing where a directory goes', async () => {
    const src = path.join(tmp.dir, 'many');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'd', `f${i}`), `file ${i}`);
    const repo = await openRepo(path.join(tmp.dir, 'repo'));
    const { snapshot } = await backup(repo, { paths: [src] });
    const target = path.join(tmp.dir, 'over');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'd'), 'in the way');
    const stats = await restore(own(await openRepo(path.join(tmp.dir, 'repo'))), snapshot, { target, subpath: src, filter: new RestoreFilter({ include: ['f*'] }), overwrite: true });
    assert.equal(stats.errors, 0);
    assert.equal(fs.readdirSync(path.join(target, 'd')).length, 20);
  });
});

describe('passwords and keys', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => (tmp = scratch('keys')));
  after(() => tmp.cleanup());

  test('a wrong password is exit code 12, a missing repository 10', async () => {
    const dir = path.join(tmp.dir, 'repo');
    await initRepo(dir);
    await assert.rejects(Repository.open(new LocalBackend(dir), 'wrong'), (e: unknown) => e instanceof ScrateError && e.exitCode === ExitCode.wrongPassword);
    await assert.rejects(Repository.open(new LocalBackend(path.join(tmp.dir, 'nothing')), PASSWORD), (e: unknown) => e instanceof ScrateError && e.exitCode === ExitCode.noRepository);
  });

  test('a config of a newer format version is refused with a hint, not misread', async () => {
    const dir = path.join(tmp.dir, 'newer');
    const repo = await initRepo(dir);
    const stored = JSON.parse(fs.readFileSync(path.join(dir, 'config'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config'), encodeConfig({ ...stored, version: 4 }, repo.keys.writer.signing));
    await assert.rejects(Repository.open(new LocalBackend(dir), PASSWORD), (e: unknown) => e instanceof ScrateError && /format version 4 is not supported/.test(e.message) && /newer scrate/.test(e.hint ?? ''));
  });

  test('the key derivation never goes below N = 2^15, r = 8, and adds lanes for a longer target', async () => {
    for (const target of [1, 5]) {
      const quick = await calibrateKdf(target);
      assert.deepEqual([quick.N, quick.r, quick.p], [KDF_FLOOR.N, KDF_FLOOR.r, 1], 'the floor, however short the target');
    }
    const slow = await calibrateKdf(2000);
    assert.deepEqual([slow.N, slow.r], [KDF_FLOOR.N, KDF_FLOOR.r]);
    assert.ok(slow.N * 128 * slow.r <= MAX_KDF_MEMORY, `N=${slow.N} r=${slow.r}`);
    assert.ok(slow.p > 1, `p=${slow.p}: a 2 s derivation needs more lanes than one pass over 32 MiB`);
    assert.equal(kdfProblem(slow), null, 'within the bounds every key file is checked against');
  });

  test('init refuses an existing repository', async () => {
    const dir = path.join(tmp.dir, 'twice');
    await initRepo(dir);
    await assert.rejects(initRepo(dir), /already exists/);
  });
});

describe('large files among small ones', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => (tmp = scratch('large-files')));
  after(() => tmp.cleanup());

  test('large files, read beside the walk, restore exactly among the small files around them', async () => {
    // Several large files in a row and between small ones, one hard-linked: each is read while
    // the walk goes on, and its chunks and the small files' batches share the data in flight.
    const mixed = path.join(tmp.dir, 'src');
    for (const dir of ['a', 'b']) {
      fs.mkdirSync(path.join(mixed, dir), { recursive: true });
      for (let i = 0; i < 6; i++) {
        fs.writeFileSync(path.join(mixed, dir, `large${i}`), randomBytes((2 + i) * 1024 * 1024));
        for (let j = 0; j < 40; j++) fs.writeFileSync(path.join(mixed, dir, `large${i}-small${j}`), randomBytes(j * 97));
      }
    }
    fs.linkSync(path.join(mixed, 'a', 'large3'), path.join(mixed, 'b', 'linked'));
    await initRepo(path.join(tmp.dir, 'repo'));
    const repo = await openRepo(path.join(tmp.dir, 'repo'));
    const { snapshot } = await backup(repo, { paths: [mixed] });
    assert.equal(snapshot.summary!.errors, 0);
    const target = path.join(tmp.dir, 'out');
    const stats = await restore(own(await openRepo(path.join(tmp.dir, 'repo'))), snapshot, { target });
    assert.equal(stats.errors, 0);
    assert.deepEqual(compareTrees(mixed, path.join(target, mixed)), []);
  });
});
