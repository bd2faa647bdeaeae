/**
 * The one-writer lock of a volume (docs/FORMAT.md §9): a shared lock carrying the volume, signed
 * by the admin key. Two takers racing: exactly one wins; a holder killed with SIGKILL on this
 * host is gone at once; a claim without a valid signature is a plain shared lock; restart()
 * dates the lock anew, which lets a two-phase prune beside a long-running writer delete its marks.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { sha256 } from '../src/crypto/primitives.js';
import { prune } from '../src/maintenance/prune.js';
import { addWriteOnlyKey } from '../src/repository/key-admin.js';
import { encodeLock, listLocks, liveLockStarts, Lock, saveLock, type LockInfo, type VolumeClaim } from '../src/repository/lock.js';
import { ExitCode, ScrateError } from '../src/errors.js';
import { BlobType } from '../src/repository/pack.js';
import type { Repository } from '../src/repository/repository.js';
import { initRepo, openRepo, scratch, TEST_KDF_MS } from './helpers/repo.js';

let tmp: ReturnType<typeof scratch>;
let repo: Repository;
const vol1: VolumeClaim = { id: '11'.repeat(16), name: 'vol1' };
const vol2: VolumeClaim = { id: '22'.repeat(16), name: 'vol2' };

before(async () => {
  tmp = scratch('volume-lock');
  repo = await initRepo(tmp.dir);
});
after(() => tmp.cleanup());

async function noLocks(): Promise<void> {
  for (const { name } of await listLocks(repo)) await repo.backend.remove('locks', name);
}

test('two takers of one volume at the same moment: exactly one holds it, the other is told who; other volumes and plain locks coexist', async () => {
  for (let round = 0; round < 4; round++) {
    // Separate handles: each lists and writes on its own, as two processes would.
    const [a, b] = [await openRepo(tmp.dir), await openRepo(tmp.dir)];
    // Each one's first lock is written only once both have looked for others: the race is certain.
    let saves = 0;
    const wrote = new Set<Repository>();
    let bothLooked!: () => void;
    const barrier = new Promise<void>((resolve) => (bothLooked = resolve));
    for (const r of [a, b]) {
      const save = r.backend.save.bind(r.backend);
      let first = true;
      r.backend.save = async (type, ...rest) => {
        if (type === 'locks') wrote.add(r);
        if (type === 'locks' && ++saves === 2) bothLooked();
        if (type === 'locks' && first) {
          first = false;
          await barrier;
        }
        return save(type, ...rest);
      };
    }
    const results = await Promise.allSettled([Lock.acquire(a, false, undefined, vol1), Lock.acquire(b, false, undefined, vol1)]);
    const won = results.filter((r): r is PromiseFulfilledResult<Lock> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1, `round ${round}: one winner`);
    assert.ok(lost[0]!.reason instanceof ScrateError && lost[0]!.reason.exitCode === ExitCode.locked, String(lost[0]!.reason));
    assert.match((lost[0]!.reason as Error).message, /^vol1 is served by pid \d+ on \S+ \(\S+\) since \d{4}-/);
    assert.equal(wrote.size, 2, `round ${round}: both wrote a lock before either looked again`);
    const plain = await Lock.acquire(a, false);
    const other = await Lock.acquire(b, false, undefined, vol2);
    assert.equal((await listLocks(repo)).length, 3);
    for (const l of [won[0]!.value, plain, other]) await l.release();
    assert.deepEqual(await listLocks(repo), []);
  }
});

test('a holder killed with SIGKILL on this host does not hold the volume: it is taken at once', async () => {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  try {
    await once(child, 'spawn');
    const pid = child.pid!;
    await saveLock(repo, false, pid, new Date().toISOString(), vol1.id);
    await assert.rejects(Lock.acquire(repo, false, undefined, vol1), (err: Error) => err instanceof ScrateError && err.exitCode === ExitCode.locked && err.message.includes(`pid ${pid}`));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  const started = Date.now();
  const lock = await Lock.acquire(repo, false, undefined, vol1);
  assert.ok(Date.now() - started < 5000, 'no wait for the dead holder');
  await lock.release();
  await noLocks();
});

test('a volume claim that the admin key did not sign is a plain shared lock; a write-only key cannot hold a volume', async () => {
  const base = { time: new Date().toISOString(), started: new Date().toISOString(), exclusive: false, pid: process.pid, host: 'x', who: '' };
  const put = async (info: LockInfo) => {
    const bytes = encodeLock(repo, info);
    await repo.backend.save('locks', sha256(bytes).toString('hex'), bytes);
  };
  await put({ ...base, volume: vol1.id });
  // Signed, then the volume changed: the signature no longer covers it.
  const signedName = await saveLock(repo, false, process.pid, base.started, vol2.id);
  const signed = (await listLocks(repo)).find((l) => l.name === signedName)!.info;
  await repo.backend.remove('locks', signedName);
  await put({ ...signed, volume: vol1.id });
  const seen = await listLocks(repo);
  assert.equal(seen.length, 2);
  for (const { info } of seen) assert.equal(info.volume, undefined, 'read as a plain shared lock');
  const lock = await Lock.acquire(repo, false, undefined, vol1);
  await lock.release();
  await noLocks();

  await addWriteOnlyKey(repo, 'write-only password', TEST_KDF_MS, 'web1');
  const wo = await openRepo(tmp.dir, 'write-only password', { index: false });
  await assert.rejects(Lock.acquire(wo, false, undefined, vol1), /only a full key holds a volume/);
  assert.deepEqual(await listLocks(repo), []);
});

test('restart(t0) rewrites the lock as taken at t0, which is what a prune waits on', async () => {
  const lock = await Lock.acquire(repo, false, undefined, vol1);
  const before = lock.current;
  const [start] = await liveLockStarts(repo);
  const t0 = new Date(start! + 60_000);
  await lock.restart(t0);
  assert.notEqual(lock.current, before);
  const locks = await listLocks(repo);
  assert.equal(locks.length, 1, 'the old lock object is gone');
  assert.equal(locks[0]!.info.started, t0.toISOString());
  assert.equal(locks[0]!.info.volume, vol1.id, 'still the volume\'s, still signed');
  assert.deepEqual(await liveLockStarts(repo), [t0.getTime()]);
  // Never dated back.
  await lock.restart(new Date(0));
  assert.equal((await listLocks(repo))[0]!.info.started, t0.toISOString());
  await lock.release();
  assert.deepEqual(await listLocks(repo), []);
});

test('a prune beside a volume\'s writer deletes its marks only once the writer restarted its lock after them', async () => {
  const w = await openRepo(tmp.dir);
  await w.saveBlob(BlobType.data, randomBytes(5000));
  await w.flush();
  const writer = await Lock.acquire(w, false, undefined, vol1);
  const pruneOnce = async () => {
    const r = await openRepo(tmp.dir, undefined, { index: false });
    const lock = await Lock.acquireForMaintenance(r);
    try {
      assert.equal(lock.exclusive, false, 'beside the writer, a shared prune');
      return await prune(r, { maxUnused: { percent: 0 }, deleteAfterMs: 0, lock });
    } finally {
      await lock.release();
    }
  };
  const first = await pruneOnce();
  assert.equal(first.packs.marked, 1);
  const second = await pruneOnce();
  assert.deepEqual([second.packs.deleted, second.waiting], [0, 1], 'the writer started before the mark: it may refer to the pack');
  await writer.restart(new Date());
  const third = await pruneOnce();
  assert.deepEqual([third.packs.deleted, third.waiting], [1, 0], 'restarted after the mark: the pack goes');
  await writer.release();
  assert.deepEqual(await listLocks(repo), []);
});
