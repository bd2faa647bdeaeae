import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import { check } from '../src/checker/checker.js';
import { prune, type PruneOptions } from '../src/maintenance/prune.js';
import { addWriteOnlyKey } from '../src/repository/key-admin.js';
import { Lock, saveLock } from '../src/repository/lock.js';
import { loadMarks } from '../src/repository/marks.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/snapshot.js';
import { restore } from '../src/restorer/restorer.js';
import { initRepo, listObjects, openRepo, own, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';

const KiB = 1024;

/** Options as the command gives them, exclusive unless a lock says otherwise. */
function options(extra: Partial<PruneOptions> = {}): PruneOptions {
  return { maxUnused: { percent: 5 }, deleteAfterMs: 3_600_000, ...extra };
}

function dataBytes(dir: string): number {
  return listObjects(dir).filter((o) => o.startsWith('data/')).reduce((n, o) => n + fs.statSync(path.join(dir, o)).size, 0);
}

/** Writes `count` files of random bytes into `dir` (named by `prefix`). */
function files(dir: string, prefix: string, count: number, size: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, `${prefix}${i}`), randomBytes(size));
}

/** Restores every snapshot and compares it with the tree each was made of (kept in `copies`). */
async function assertAllRestore(dir: string, tmp: string, copies: Map<string, string>): Promise<void> {
  const repo = await openRepo(dir);
  for (const { id, snapshot } of await listSnapshots(repo)) {
    const target = path.join(tmp, `check-${id.slice(0, 8)}-${randomBytes(4).toString('hex')}`);
    const stats = await restore(own(repo), snapshot, { target, subpath: snapshot.paths[0] });
    assert.equal(stats.errors, 0, `snapshot ${id.slice(0, 8)}`);
    const copy = copies.get(id);
    if (copy) for (const f of fs.readdirSync(copy)) assert.deepEqual(fs.readFileSync(path.join(target, f)), fs.readFileSync(path.join(copy, f)), `${id.slice(0, 8)}: ${f}`);
  }
  assert.deepEqual((await check(await openRepo(dir, PASSWORD, { index: false }), { readData: true })).errors, []);
}

describe('prune', () => {
  let tmp: ReturnType<typeof scratch>;
  /** A pristine repository of three snapshots of a changing directory, and a copy of each state. */
  let pristine: string;
  let src: string;
  const copies = new Map<string, string>();
  let ids: string[];

  before(async () => {
    tmp = scratch('prune');
    pristine = path.join(tmp.dir, 'pristine');
    src = path.join(tmp.dir, 'src');
    await initRepo(pristine, { packSize: 256 * KiB });
    ids = [];
    for (let round = 0; round < 3; round++) {
      files(src, `r${round}-`, 6, 100 * KiB);
      if (round > 0) for (let i = 0; i < 4; i++) fs.rmSync(path.join(src, `r${round - 1}-${i}`));
      const { snapshotId } = await backup(await openRepo(pristine), { paths: [src] });
      const copy = path.join(tmp.dir, `copy-${round}`);
      fs.cpSync(src, copy, { recursive: true });
      copies.set(snapshotId!, copy);
      ids.push(snapshotId!);
    }
  });
  after(() => tmp.cleanup());

  const fresh = (name: string) => {
    const dir = path.join(tmp.dir, name);
    fs.cpSync(pristine, dir, { recursive: true });
    return dir;
  };

  test('with nothing forgotten it deletes nothing and rewrites nothing but the index', async () => {
    const dir = fresh('nothing');
    const before = listObjects(dir).filter((o) => o.startsWith('data/'));
    const stats = await prune(await openRepo(dir, PASSWORD, { index: false }), options());
    assert.equal(stats.packs.deleted + stats.packs.repacked, 0);
    assert.deepEqual(listObjects(dir).filter((o) => o.startsWith('data/')), before);
    await assertAllRestore(dir, tmp.dir, copies);
  });

  test('after a forget, the space of what only the forgotten snapshots held is given back; the rest restores', async () => {
    const dir = fresh('forget-two');
    for (const id of ids.slice(0, 2)) fs.rmSync(path.join(dir, 'snapshots', id));
    const before = dataBytes(dir);
    const stats = await prune(await openRepo(dir, PASSWORD, { index: false }), options({ maxUnused: { percent: 0.01 } }));
    assert.ok(stats.exclusive);
    assert.ok(stats.packs.deleted + stats.packs.repacked > 0, JSON.stringify(stats));
    // The first two rounds' files gone but two of the second: about 10 of 18 files' bytes.
    const after = dataBytes(dir);
    assert.ok(after < before * 0.6, `${after} of ${before} bytes`);
    assert.ok(stats.bytes.unusedAfter <= stats.bytes.used * 0.0001 + 1, `${stats.bytes.unusedAfter} unused bytes left`);
    assert.equal(listObjects(dir).filter((o) => o.startsWith('index/')).length > 0, true);
    await assertAllRestore(dir, tmp.dir, new Map([[ids[2]!, copies.get(ids[2]!)!]]));
  });

  test('--max-unused decides how much is repacked; a dry run changes nothing', async () => {
    const dir = fresh('max-unused');
    fs.rmSync(path.join(dir, 'snapshots', ids[0]!));
    const objects = listObjects(dir);
    const dry = await prune(await openRepo(dir, PASSWORD, { index: false }), options({ maxUnused: 'unlimited', dryRun: true }));
    assert.deepEqual(listObjects(dir), objects);
    assert.equal(dry.packs.repacked, 0, 'nothing repacked when any unused space is tolerated');
    const all = await prune(await openRepo(dir, PASSWORD, { index: false }), options({ maxUnused: { percent: 0.01 }, dryRun: true }));
    assert.ok(all.packs.repacked > 0 && all.bytes.unusedAfter < dry.bytes.unusedAfter);
  });

  test('junk of an interrupted run is removed under an exclusive lock', async () => {
    const dir = fresh('junk');
    const junk = path.join(dir, 'data', 'ab', 'ab' + '0'.repeat(62));
    fs.writeFileSync(junk, randomBytes(1000));
    assert.equal((await check(await openRepo(dir, PASSWORD, { index: false }))).unreferencedPacks, 1);
    const stats = await prune(await openRepo(dir, PASSWORD, { index: false }), options());
    assert.equal(stats.packs.junk, 1);
    assert.ok(!fs.existsSync(junk));
  });

  test('beside a running backup (a shared lock) unused packs are only marked; a later prune deletes them once no older lock lives', async () => {
    const dir = fresh('two-phase');
    fs.rmSync(path.join(dir, 'snapshots', ids[0]!));
    fs.rmSync(path.join(dir, 'snapshots', ids[1]!));
    const packsBefore = listObjects(dir).filter((o) => o.startsWith('data/'));
    // A backup of another process holds its shared lock (its pid: this one, alive).
    const running = await openRepo(dir);
    const backupLock = await saveLock(running, false);
    const repo = await openRepo(dir, PASSWORD, { index: false });
    const lock = await Lock.acquireForMaintenance(repo);
    assert.equal(lock.exclusive, false, 'an exclusive lock cannot be had beside a backup');
    const first = await prune(repo, options({ lock, maxUnused: { percent: 0.01 }, deleteAfterMs: 0 }));
    await lock.release();
    assert.equal(first.exclusive, false);
    assert.ok(first.packs.marked + first.packs.repacked > 0);
    assert.equal(first.packs.deleted, 0);
    // Nothing deleted yet: every pack is still there, and restores of every snapshot work.
    for (const p of packsBefore) assert.ok(fs.existsSync(path.join(dir, p)), p);
    const marked = new Set((await loadMarks(await openRepo(dir))).seen.keys());
    assert.ok(marked.size > 0, 'marks/ lists them for write-only keys');
    const reopened = await openRepo(dir);
    assert.ok(reopened.index.packs.some((p) => p.markedAt), 'the index marks them');
    // A backup now does not deduplicate against a marked pack: a file only a marked pack holds is stored again.
    const onlyMarked = path.join(tmp.dir, 'two-phase-src');
    fs.mkdirSync(onlyMarked);
    fs.copyFileSync(path.join(copies.get(ids[0]!)!, 'r0-0'), path.join(onlyMarked, 'r0-0'));
    const again = await backup(reopened, { paths: [onlyMarked] });
    assert.equal(again.snapshot.summary!.dataBlobs + again.snapshot.summary!.treeBlobs >= 1, true);
    // The backup that started before the mark still runs: the second prune must wait.
    const second = await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, deleteAfterMs: 0 })));
    assert.equal(second.packs.deleted, 0);
    assert.ok(second.waiting > 0);
    // It ends; now the marked packs go.
    await running.backend.remove('locks', backupLock);
    const third = await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, deleteAfterMs: 0 })));
    assert.equal(third.exclusive, true);
    assert.ok(third.packs.deleted > 0);
    assert.deepEqual((await loadMarks(await openRepo(dir))).seen.size, 0);
    await assertAllRestore(dir, tmp.dir, new Map([[ids[2]!, copies.get(ids[2]!)!]]));
  });

  test('a marked pack a snapshot uses again is unmarked, never deleted', async () => {
    const dir = fresh('resurrect');
    const kept = path.join(dir, 'kept-snapshot');
    fs.renameSync(path.join(dir, 'snapshots', ids[0]!), kept);
    const running = await saveLock(await openRepo(dir), false);
    await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, maxUnused: 'unlimited' })));
    // A backup that loaded the index before the mark wrote its snapshot, which uses the marked pack.
    fs.renameSync(kept, path.join(dir, 'snapshots', ids[0]!));
    await (await openRepo(dir)).backend.remove('locks', running);
    const stats = await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, deleteAfterMs: 0, maxUnused: 'unlimited' })));
    assert.ok(stats.packs.unmarked > 0);
    assert.equal(stats.packs.deleted, 0);
    await assertAllRestore(dir, tmp.dir, copies);
  });

  test('a write-only key does not count on packs marked for deletion', async () => {
    const dir = fresh('write-only');
    const records = path.join(tmp.dir, 'write-only-records');
    await addWriteOnlyKey(await openRepo(dir), 'wo', TEST_KDF_MS, 'h');
    const openWo = async () => {
      const repo = await Repository.open(new LocalBackend(dir), 'wo', { stateRoot: records });
      await repo.loadIndex();
      return repo;
    };
    const hostSrc = path.join(tmp.dir, 'write-only-src');
    files(hostSrc, 'f', 3, 100 * KiB);
    const first = await backup(await openWo(), { paths: [hostSrc] });
    fs.rmSync(path.join(dir, 'snapshots', first.snapshotId!));
    const running = await saveLock(await openRepo(dir), false);
    await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, maxUnused: 'unlimited' })));
    await (await openRepo(dir)).backend.remove('locks', running);
    // The host's record says the files' blobs are stored: they are, but marked. It stores them again.
    const second = await backup(await openWo(), { paths: [hostSrc] });
    assert.ok(second.snapshot.summary!.dataStored >= 300 * KiB, `${second.snapshot.summary!.dataStored} bytes stored`);
    await withMaintenance(dir, (repo, lock) => prune(repo, options({ lock, deleteAfterMs: 0, maxUnused: 'unlimited' })));
    const repo = await openRepo(dir);
    const entry = (await listSnapshots(repo)).find((e) => e.id === second.snapshotId)!;
    const target = path.join(tmp.dir, 'write-only-restored');
    assert.equal((await restore(repo.reader(entry.writer), entry.snapshot, { target, subpath: hostSrc })).errors, 0);
    for (const f of fs.readdirSync(hostSrc)) assert.deepEqual(fs.readFileSync(path.join(target, f)), fs.readFileSync(path.join(hostSrc, f)));
  });

  test('a damaged snapshot stops prune: what it needs would be unknown', async () => {
    const dir = fresh('damaged');
    const file = path.join(dir, 'snapshots', ids[1]!);
    const bytes = fs.readFileSync(file);
    bytes[60]! ^= 1;
    fs.writeFileSync(file, bytes);
    const objects = listObjects(dir);
    await assert.rejects(prune(await openRepo(dir, PASSWORD, { index: false }), options()), /prune would not know what is needed: snapshot/);
    assert.deepEqual(listObjects(dir), objects);
  });

});

async function withMaintenance<T>(dir: string, fn: (repo: Repository, lock: Lock) => Promise<T>): Promise<T> {
  const repo = await openRepo(dir, PASSWORD, { index: false });
  const lock = await Lock.acquireForMaintenance(repo);
  try {
    return await fn(repo, lock);
  } finally {
    await lock.release();
  }
}
