import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import { check } from '../src/checker/checker.js';
import { deriveKey, sha256 } from '../src/crypto/primitives.js';
import { encodeIndexFile, encodePackRecord } from '../src/repository/index-file.js';
import { addWriteOnlyKey, removeKey } from '../src/repository/key-admin.js';
import { encodeLock, listLocks, Lock, removeLocks, saveLock } from '../src/repository/lock.js';
import { BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { encodeObject, ObjectKind } from '../src/repository/sealed-object.js';
import { findSnapshot, listSnapshots, loadSnapshot, saveSnapshot, type Snapshot } from '../src/snapshot/snapshot.js';
import { findNode, loadTree } from '../src/tree/walk.js';
import { cliEnv, scrate } from './helpers/cli.js';
import { initRepo, listObjects, openRepo, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';

/*
 * Attacks by a compromised write-only backup host (docs/SECURITY.md §2): it has its key file,
 * its password and read/write on the bucket, and uses only what that gives it. Every test here
 * fails while the flaw it shows is present.
 */

const WO_PASSWORD = 'write only password';
const MiB = 1024 * 1024;

interface Setup {
  dir: string;
  src: string;
  records: string;
  full: Repository;
  fullSnapshot: string;
  /** The compromised host's repository handle (write-only key). */
  wo: () => Promise<Repository>;
}

async function setup(tmp: string, name: string): Promise<Setup> {
  const dir = path.join(tmp, `${name}-repo`);
  const src = path.join(tmp, `${name}-db`);
  fs.mkdirSync(path.join(src, 'pgdata'), { recursive: true });
  fs.writeFileSync(path.join(src, 'pgdata', 'base.dat'), randomBytes(3 * MiB));
  fs.writeFileSync(path.join(src, 'pg_hba.conf'), 'local all all peer\n');
  await initRepo(dir);
  const full = await openRepo(dir);
  const { snapshotId } = await backup(full, { paths: [src], host: 'db1' });
  await addWriteOnlyKey(full, WO_PASSWORD, TEST_KDF_MS, 'web1');
  const records = path.join(tmp, `${name}-records`);
  const wo = async () => {
    const repo = await Repository.open(new LocalBackend(dir), WO_PASSWORD, { stateRoot: records });
    await repo.loadIndex();
    return repo;
  };
  return { dir, src, records, full, fullSnapshot: snapshotId!, wo };
}

describe('attacks by a write-only host', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => {
    tmp = scratch('attack-writers');
  });
  after(() => tmp.cleanup());

  test('an index file of the host claiming other writers\' packs does not hide their blobs from full keys', async () => {
    const s = await setup(tmp.dir, 'shadow');
    const wo = await s.wo();
    // Every pack in the bucket (names are visible to anyone who can list it), claimed with no
    // blobs and a made-up envelope, in an index file the host signs as itself.
    const packs = listObjects(s.dir).filter((o) => o.startsWith('data/')).map((o) => path.basename(o));
    assert.ok(packs.length >= 2);
    const records = packs.map((id) => encodePackRecord({ id: Buffer.from(id, 'hex'), type: BlobType.data, writer: wo.keys.writer.id, envelope: randomBytes(32), markedAt: 0 }, []));
    // Its name only has to sort before the index files that list those packs.
    const first = (await s.full.listNames('index')).sort()[0]!;
    let bytes: Buffer;
    let name: string;
    do {
      bytes = encodeObject(ObjectKind.index, encodeIndexFile(records), wo.keys.sealPublic, { writer: wo.keys.writer.id, signing: wo.keys.writer.signing });
      name = sha256(bytes).toString('hex');
    } while (name >= first);
    await wo.backend.save('index', name, bytes, { sha256: name });

    const victim = await openRepo(s.dir);
    const { snapshot } = await findSnapshot(victim, s.fullSnapshot);
    // The full key's own snapshot must still read: its blobs are in its own, signed index file.
    await loadTree(victim.reader(victim.self), Buffer.from(snapshot.tree, 'hex'));
    // What check reports is the host's claims, by the host's name, and nothing is lost.
    const { errors } = await check(await openRepo(s.dir, PASSWORD, { index: false }));
    assert.equal(errors.length, packs.length);
    for (const e of errors) {
      assert.equal(e.kind, 'pack-size');
      assert.match(e.message, /\(writer web1 \([0-9a-f]{8}\)\): \d+ bytes, but the index says \d+$/);
      assert.deepEqual(e.dependents, []);
    }
  });

  test('the host cannot make "latest --host db1" resolve to its own snapshot', async () => {
    const s = await setup(tmp.dir, 'latest');
    const evil = path.join(tmp.dir, 'latest-evil');
    fs.mkdirSync(path.join(evil, 'pgdata'), { recursive: true });
    fs.writeFileSync(path.join(evil, 'pg_hba.conf'), 'host all all 0.0.0.0/0 trust\n');
    // The ordinary command refuses another host's name …
    await assert.rejects(backup(await s.wo(), { paths: [evil], host: 'db1' }), /backs up host web1 only/);
    // … and snapshots signed by hand claiming it, or a time to come, are refused by full keys.
    const own = await backup(await s.wo(), { paths: [evil] });
    const wo = await s.wo();
    const claims = [
      { ...own.snapshot, hostname: 'db1', paths: [s.src] },
      { ...own.snapshot, paths: [s.src], time: '2099-01-01T00:00:00.000Z' },
      { ...own.snapshot, hostname: 'db1', time: 'Tue, 01 Jan 2019 00:00:00 GMT' },
    ];
    const forged = await Promise.all(claims.map((c) => saveSnapshot(wo, c as Snapshot)));
    const victim = await openRepo(s.dir);
    const skipped: string[] = [];
    const listed = (await listSnapshots(victim, (id, err) => skipped.push(`${id}: ${err.message}`))).map((e) => e.id);
    for (const id of forged) assert.ok(!listed.includes(id) && skipped.some((s) => s.startsWith(id)), `forged ${id.slice(0, 8)} is listed`);
    assert.match(skipped.join('\n'), /claims host db1, but its writer backs up web1/);
    assert.match(skipped.join('\n'), /in the future/);
    assert.match(skipped.join('\n'), /bad time/);
    for (const filter of [{ host: 'db1' }, { host: 'db1', paths: [s.src] }, {}]) {
      const found = await findSnapshot(victim, 'latest', filter);
      assert.equal(found.writer.access === 'full' || found.id === own.snapshotId, true, `latest ${JSON.stringify(filter)} is ${found.id.slice(0, 8)}`);
    }
  });

  test('a snapshot of the host cannot pass itself off as another in `snapshots --json` and `cat snapshot`', async () => {
    const s = await setup(tmp.dir, 'json-id');
    const wo = await s.wo();
    const evil = path.join(tmp.dir, 'json-id-evil');
    fs.mkdirSync(evil);
    const forged = await backup(wo, { paths: [evil] });
    // A field parseSnapshot does not know (here `id`) must not come out over the real ones.
    const id = await saveSnapshot(await s.wo(), { ...forged.snapshot, id: s.fullSnapshot } as Snapshot);
    const env = cliEnv(s.dir, { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: path.join(tmp.dir, 'json-id-cache') });
    const listed = JSON.parse(scrate(['snapshots', '--json'], env).stdout) as { id: string }[];
    assert.ok(listed.some((e) => e.id === id), `snapshot ${id.slice(0, 8)} is listed under the ID of ${s.fullSnapshot.slice(0, 8)}: ${listed.map((e) => e.id.slice(0, 8)).join(', ')}`);
    const shown = JSON.parse(scrate(['cat', 'snapshot', id], env).stdout) as { id: string };
    assert.equal(shown.id, id);
  });

  test('a host whose record lost its index log does not reuse recorded trees whose packs are gone', async () => {
    const s = await setup(tmp.dir, 'record');
    const hostSrc = path.join(tmp.dir, 'record-src');
    fs.mkdirSync(hostSrc);
    fs.writeFileSync(path.join(hostSrc, 'big.bin'), randomBytes(2 * MiB));
    await backup(await s.wo(), { paths: [hostSrc] });
    // The log is damaged (a full disk, bit rot in its first segment: segments() stops there);
    // trees/ is intact. Then the repository loses the host's data packs.
    const recordDir = path.join(s.records, s.full.config.id, fs.readdirSync(path.join(s.records, s.full.config.id))[0]!);
    fs.truncateSync(path.join(recordDir, 'index.log'), 0);
    const before = await openRepo(s.dir);
    const host = before.writers.all.find((w) => w.hostname === 'web1')!;
    for (const p of before.index.packs.filter((p) => p.type === BlobType.data && p.writer === host.no)) {
      const id = p.id.toString('hex');
      fs.rmSync(path.join(s.dir, 'data', id.slice(0, 2), id));
    }
    const second = await backup(await s.wo(), { paths: [hostSrc] });
    const repo = await openRepo(s.dir);
    const { snapshot, writer } = await loadSnapshot(repo, second.snapshotId!);
    const reader = repo.reader(writer);
    const node = await findNode(reader, Buffer.from(snapshot.tree, 'hex'), path.join(hostSrc, 'big.bin'));
    const failures: string[] = [];
    for (const blob of node!.content!) await reader.loadBlob(BlobType.data, blob).catch((err: Error) => failures.push(err.message));
    assert.deepEqual(failures, [], 'the host\'s new snapshot refers to blobs whose packs are gone, although it had the file to read');
  });

  test('a tree too large to decode is damage that check reports, not a crash', async () => {
    const s = await setup(tmp.dir, 'tree-bomb');
    const wo = await s.wo();
    // 300 MiB of spaces: a few hundred KiB once compressed, more than any tree may be.
    const { id } = await wo.saveBlob(BlobType.tree, Buffer.alloc(300 * MiB, 0x20));
    await wo.flush();
    const own = await backup(await s.wo(), { paths: [s.src] });
    await saveSnapshot(await s.wo(), { ...own.snapshot, tree: id.toString('hex') });
    const { errors, snapshots } = await check(await openRepo(s.dir, PASSWORD, { index: false }));
    assert.equal(snapshots, 3);
    assert.equal(errors.length, 1, errors.map((e) => e.message).join('\n'));
    assert.match(errors[0]!.message, /larger than any tree can be/);
  });

  test('the host cannot tell from a full key\'s lock which host holds it', async () => {
    const s = await setup(tmp.dir, 'lock-tag');
    await saveLock(s.full, false);
    const wo = await s.wo();
    const locks = await listLocks(wo);
    assert.equal(locks.length, 1, 'the write-only key decrypts the full key\'s lock');
    // A dictionary of likely host names, tried offline against the tag under the shared lock key.
    const candidates = ['db1', 'db2', 'backup', 'nas', os.hostname()];
    const tag = (h: string) => deriveKey(wo.keys.lockKey, Buffer.from(h), 'scrate v3 lock host').subarray(0, 16).toString('base64');
    const named = candidates.find((h) => tag(h) === locks[0]!.info.host);
    assert.equal(named, undefined, `the lock names its host: ${named} (pid ${locks[0]!.info.pid}, since ${locks[0]!.info.time})`);
  });

  test('a lock dated in the future by the host does not outlive `scrate unlock`', async () => {
    const s = await setup(tmp.dir, 'lock-future');
    const wo = await s.wo();
    const bytes = encodeLock(wo, { time: '9999-12-31T00:00:00.000Z', started: '9999-12-31T00:00:00.000Z', exclusive: true, pid: 1, host: 'x', who: '' });
    const name = sha256(bytes).toString('hex');
    await wo.backend.save('locks', name, bytes, { sha256: name });
    const full = await openRepo(s.dir);
    await removeLocks(full, false);
    const lock = await Lock.acquire(full, false);
    await lock.release();
  });
});

describe('key files and objects the bucket sees', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => {
    tmp = scratch('attack-bucket');
  });
  after(() => tmp.cleanup());

  test('a key file\'s size does not tell a full key from a write-only one', async () => {
    const dir = path.join(tmp.dir, 'sizes');
    const full = await initRepo(dir);
    const fullKey = JSON.parse(fs.readFileSync(path.join(dir, 'keys', full.keyId), 'utf8')) as Record<string, string>;
    const { keyId } = await addWriteOnlyKey(full, WO_PASSWORD, TEST_KDF_MS, 'w');
    const woKey = JSON.parse(fs.readFileSync(path.join(dir, 'keys', keyId), 'utf8')) as Record<string, string>;
    const bytes = (s: string) => Buffer.from(s, 'base64').length;
    assert.equal(bytes(woKey['data']!), bytes(fullKey['data']!), 'the length of `data` gives the access away');
  });

  test('a planted object too large to load is skipped, not fatal to listing snapshots or loading the index', async () => {
    const dir = path.join(tmp.dir, 'huge');
    const repo = await initRepo(dir);
    const src = path.join(tmp.dir, 'huge-src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'x');
    await backup(repo, { paths: [src] });
    // Sparse: costs the planter nothing on a local repository (on S3, one upload).
    for (const type of ['snapshots', 'index']) {
      const fd = fs.openSync(path.join(dir, type, randomBytes(32).toString('hex')), 'w');
      fs.ftruncateSync(fd, 2.5 * 1024 * MiB);
      fs.closeSync(fd);
    }
    const victim = await Repository.open(new LocalBackend(dir), PASSWORD);
    const warnings: string[] = [];
    assert.equal((await listSnapshots(victim, (id) => warnings.push(id))).length, 1);
    await victim.loadIndex((m) => warnings.push(m));
    assert.equal(warnings.length, 2);
    // A compromised host plants one to stop its own revocation (and every full key's backup).
    const { keyId } = await addWriteOnlyKey(repo, WO_PASSWORD, TEST_KDF_MS, 'web1');
    await removeKey(await openRepo(dir), keyId);
    await backup(await openRepo(dir), { paths: [src] });
    // In writers/, it stops every full key at open, `key` and `unlock` included.
    const fd = fs.openSync(path.join(dir, 'writers', randomBytes(32).toString('hex')), 'w');
    fs.ftruncateSync(fd, 2.5 * 1024 * MiB);
    fs.closeSync(fd);
    await openRepo(dir);
  });
});
