/**
 * Volume records and `volume create/list/rm` (issue #25, step 2): what an empty 256 TiB volume
 * costs, commit 0 as a snapshot, names and sizes refused, prune and check seeing heads, records
 * that are damaged or forged, write-only keys, and the same on S3.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OBJECT_TYPES, type Backend } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { openBackend } from '../src/backend/open.js';
import { sha256 } from '../src/crypto/primitives.js';
import { addWriteOnlyKey } from '../src/repository/key-admin.js';
import { BlobType } from '../src/repository/pack.js';
import { Lock } from '../src/repository/lock.js';
import { ObjectKind } from '../src/repository/sealed-object.js';
import { loadSnapshot } from '../src/snapshot/snapshot.js';
import { mapDepthFor, MutableBlockMap } from '../src/tree/block-map.js';
import { headMap, mapNodeSaver, volumeTree } from '../src/volume/head.js';
import { deleteOlderRecords, findVolume, listVolumeRecords, loadVolumeRecords, recordStamp, saveVolumeRecord } from '../src/volume/record.js';
import { assertCleanError, cliEnv, jsonLines, scrate } from './helpers/cli.js';
import { openRepo, scratch, TEST_KDF_MS } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';

let tmp: ReturnType<typeof scratch>;
before(() => {
  tmp = scratch('volume-records');
});
after(() => tmp.cleanup());

const PASSWORD = 'cli test password';
const ok = (args: string[], env: NodeJS.ProcessEnv) => {
  const r = scrate(args, env);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r;
};

/** Every object of the repository with its size, locks aside (a command's lock is gone when it ends). */
async function objectBytes(backend: Backend): Promise<{ bytes: number; objects: string[] }> {
  let bytes = 0;
  const objects: string[] = [];
  for (const type of OBJECT_TYPES) {
    for await (const { name, size } of backend.list(type)) {
      bytes += size;
      objects.push(`${type}/${name}`);
    }
  }
  return { bytes, objects };
}

interface ListedVolume {
  name: string;
  id: string;
  size: number;
  block_size: number;
  allocated: number;
  last_commit: string;
  seq: number;
  served_by: { holder: string; since: string } | null;
}

function listed(env: NodeJS.ProcessEnv): ListedVolume[] {
  return jsonLines(ok(['volume', 'list', '--json'], env).stdout)[0] as unknown as ListedVolume[];
}

describe('volumes in a local repository', () => {
  let repo: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    repo = path.join(tmp.dir, 'repo');
    env = cliEnv(repo);
    ok(['init'], env);
  });

  test('an empty 256 TiB volume stores at most 1 MiB: commit 0 is a snapshot tagged volume, record seq 1 names it', async () => {
    // A repository made before volumes has no volumes/ directory: listing it is empty, the first record makes it.
    fs.rmdirSync(path.join(repo, 'volumes'));
    const backend = new LocalBackend(repo);
    const before = await objectBytes(backend);
    assert.deepEqual(listed(env), []);
    const created = JSON.parse(ok(['volume', 'create', 'vol1', '--size', '256T', '--json'], env).stdout) as { id: string; commit: string; seq: number; size: number; block_size: number };
    const after = await objectBytes(backend);
    const grown = after.bytes - before.bytes;
    assert.ok(grown > 0 && grown <= 1024 * 1024, `${grown} bytes stored`);
    const added = after.objects.filter((o) => !before.objects.includes(o)).map((o) => o.split('/')[0]).sort();
    assert.deepEqual(added, ['data', 'index', 'snapshots', 'volumes'], 'one pack (the head tree and the empty map), its index, commit 0, the record');
    assert.equal(created.size, 2 ** 48);
    assert.equal(created.block_size, 65536);
    assert.equal(created.seq, 1);

    const snapshots = jsonLines(ok(['snapshots', '--json', '--tag', 'volume'], env).stdout)[0] as unknown as { id: string; paths: string[]; tags: string[]; volume: string }[];
    assert.equal(snapshots.length, 1);
    assert.equal(snapshots[0]!.id, created.commit);
    assert.deepEqual(snapshots[0]!.paths, ['/vol1']);
    assert.deepEqual(snapshots[0]!.tags, ['volume']);
    assert.equal(snapshots[0]!.volume, created.id);

    const r = await openRepo(repo, PASSWORD);
    const { snapshot, writer } = await loadSnapshot(r, created.commit);
    const map = await headMap(r.reader(writer), snapshot.tree, 'commit 0');
    assert.deepEqual({ blockSize: map.blockSize, depth: map.depth }, { blockSize: 65536, depth: 4 });
    const [head] = await listVolumeRecords(r);
    assert.equal(head!.record.tree, snapshot.tree, 'the head is commit 0');
    assert.equal(head!.record.commit, created.commit);

    const [vol] = listed(env);
    const { name, id, size, block_size, allocated, last_commit, seq, served_by } = vol!;
    assert.deepEqual({ name, id, size, block_size, allocated, last_commit, seq, served_by }, { name: 'vol1', id: created.id, size: 2 ** 48, block_size: 65536, allocated: 0, last_commit: created.commit, seq: 1, served_by: null });
    assert.match(ok(['volume', 'list'], env).stdout, new RegExp(`^vol1 +${created.id.slice(0, 8)} +256\\.0 TiB +64\\.0 KiB +0 B +${created.commit.slice(0, 8)}`, 'm'));
    ok(['check'], env);
  });

  test('restore of commit 0 gives a sparse file of the volume\'s size', async () => {
    const created = JSON.parse(ok(['volume', 'create', 'small', '--size', '1G', '--json'], env).stdout) as { commit: string };
    // As a device snapshot: the one image is restored as the target file.
    const target = path.join(tmp.dir, 'small.img');
    ok(['restore', created.commit, '--target', target], env);
    const st = fs.statSync(target);
    assert.equal(st.size, 1024 ** 3);
    assert.equal(st.blocks, 0, 'all holes');
    assert.equal(st.mode & 0o777, 0o600);
    ok(['volume', 'rm', 'small', '--forget-commits'], env);
  });

  test('names, sizes and block sizes refused with one line; a volume is found by name or ID prefix', async () => {
    const refused: [string[], RegExp][] = [
      [['vol1', '--size', '1G'], /a volume named "vol1" exists already/],
      [['a/b', '--size', '1G'], /cannot contain "\/"/],
      [['..', '--size', '1G'], /cannot be empty, "\." or "\.\."/],
      [['x'.repeat(256), '--size', '1G'], /at most 255 bytes/],
      [['v', '--size', '1000'], /multiple of 512/],
      [['v', '--size', '1G', '--block-size', '3K'], /power of two from 4K to 1M/],
      [['v', '--size', '1G', '--block-size', '2M'], /power of two from 4K to 1M/],
      [['v', '--size', '16777216T'], /at most 8 PiB/],
    ];
    for (const [args, pattern] of refused) assertCleanError(scrate(['volume', 'create', ...args], env), 1, pattern);
    assert.deepEqual(listed(env).map((v) => v.name), ['vol1'], 'nothing made by a refused create');
    const r = await openRepo(repo, PASSWORD, { index: false });
    const [v] = await listVolumeRecords(r);
    assert.equal((await findVolume(r, v!.record.volume.slice(0, 6))).name, v!.name);
    await assert.rejects(findVolume(r, 'nosuch'), /no volume "nosuch"/);
    assertCleanError(scrate(['volume', 'rm', 'nosuch'], env), 1, /no volume "nosuch"/);
  });

  test('a record that does not decode, or that a write-only writer signed, is skipped with a warning', async () => {
    const junk = randomBytes(700);
    const junkName = sha256(junk).toString('hex');
    fs.writeFileSync(path.join(repo, 'volumes', junkName), junk);
    await addWriteOnlyKey(await openRepo(repo, PASSWORD, { index: false }), 'wo password', TEST_KDF_MS, 'web1');
    const wo = await openRepo(repo, 'wo password', { index: false });
    // A write-only host that signs a record itself (the API refuses; the object does not care).
    const full = await openRepo(repo, PASSWORD, { index: false });
    const [real] = await listVolumeRecords(full);
    const forged = await wo.saveObject('volumes', ObjectKind.volume, Buffer.from(JSON.stringify({ ...real!.record, seq: 99, name: 'forged' })));
    const r = scrate(['volume', 'list'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`volume record ${junkName.slice(0, 8)} skipped: .*authentication failed|volume record ${junkName.slice(0, 8)} skipped: .*not a scrate object`));
    assert.match(r.stderr, new RegExp(`volume record ${forged.slice(0, 8)} skipped: .*not signed by the full writer`));
    assert.match(r.stdout, /^vol1 /m);
    assert.doesNotMatch(r.stdout, /forged/);
    // A damaged record: prune would not know what that head needs, and refuses; check names it.
    assertCleanError(scrate(['prune'], env), 1, new RegExp(`volume record ${junkName.slice(0, 8)}`));
    const check = scrate(['check'], env);
    assert.equal(check.code, 1);
    assert.match(check.stderr, new RegExp(junkName.slice(0, 8)));
    fs.rmSync(path.join(repo, 'volumes', junkName));
    fs.rmSync(path.join(repo, 'volumes', forged));

    // The write-only key: no volume command reads or writes, one line each.
    const woEnv = { ...env, SCRATE_PASSWORD: 'wo password' };
    assertCleanError(scrate(['volume', 'list'], woEnv), 1, /write-only/);
    assertCleanError(scrate(['volume', 'create', 'w', '--size', '1G'], woEnv), 1, /write-only/);
    assertCleanError(scrate(['volume', 'rm', 'vol1'], woEnv), 1, /write-only/);
    await assert.rejects(saveVolumeRecord(wo, { ...real!.record, seq: 2 }), /volumes need a full key/);
    await assert.rejects(listVolumeRecords(wo), /volumes need a full key/);
  });

  test('prune keeps the blocks a head names and no snapshot does; after volume rm they go', async () => {
    ok(['volume', 'create', 'vol2', '--size', '1G', '--block-size', '4K'], env);
    const r = await openRepo(repo, PASSWORD);
    const head = await findVolume(r, 'vol2');
    const block = randomBytes(4096);
    const { id } = await r.saveBlob(BlobType.data, block);
    const map = MutableBlockMap.create(mapDepthFor(head.record.size, head.record.blockSize), head.record.blockSize);
    await map.set(7, id);
    const ref = await map.persist(mapNodeSaver(r));
    const tree = await volumeTree(r, head.record, ref, new Date());
    await r.flush();
    const record = { ...head.record, ...recordStamp(r), seq: head.record.seq + 1, tree };
    await saveVolumeRecord(r, record);
    await deleteOlderRecords(r, record.volume, record.seq);
    assert.equal(record.seq, 2);
    assert.deepEqual((await loadVolumeRecords(r)).filter((e) => e.record.volume === record.volume).map((e) => e.record.seq), [2], 'the older record deleted');
    const has = async () => (await openRepo(repo, PASSWORD)).index.has(BlobType.data, id, r.self.no);

    ok(['prune'], env);
    assert.ok(await has(), 'the head\'s block survives a prune');
    ok(['check', '--read-data'], env);
    assert.equal(listed(env).find((v) => v.name === 'vol2')!.allocated, 4096);

    const rm = JSON.parse(ok(['volume', 'rm', 'vol2', '--forget-commits', '--json'], env).stdout) as { records_removed: number; commits_removed: number };
    assert.deepEqual(rm, { name: 'vol2', id: head.record.volume, records_removed: 1, commits_removed: 1 });
    ok(['prune'], env);
    assert.ok(!(await has()), 'gone with the volume');
    assert.deepEqual(listed(env).map((v) => v.name), ['vol1']);
    ok(['check'], env);
  });

  test('check names a head whose tree is gone; volume rm needs the volume\'s lock and keeps commits by default', async () => {
    const r = await openRepo(repo, PASSWORD, { index: false });
    const [vol1] = await listVolumeRecords(r);
    const lost = 'ab'.repeat(32);
    await saveVolumeRecord(r, { ...vol1!.record, ...recordStamp(r), seq: vol1!.record.seq + 1, tree: lost });
    const check = scrate(['check'], env);
    assert.equal(check.code, 1);
    assert.match(check.stderr, new RegExp(`tree ${lost.slice(0, 12)}`));
    await deleteOlderRecords(r, vol1!.record.volume, vol1!.record.seq + 1);

    // Held by someone else (this test process): rm is refused with exit 11, naming the holder.
    const lock = await Lock.acquire(r, false, undefined, { id: vol1!.record.volume, name: 'vol1' });
    assertCleanError(scrate(['volume', 'rm', 'vol1'], env), 11, /vol1 is served by pid \d+ on .* since /);
    const served = listed(env)[0]!.served_by;
    assert.match(served?.holder ?? '', new RegExp(`pid ${process.pid} on `));
    await lock.release();

    assert.match(ok(['volume', 'rm', 'vol1'], env).stdout, /removed volume vol1 \(ID [0-9a-f]{8}\): 1 record\(s\)/);
    assert.deepEqual(listed(env), []);
    const snapshots = jsonLines(ok(['snapshots', '--json', '--tag', 'volume'], env).stdout)[0] as unknown as unknown[];
    assert.equal(snapshots.length, 1, 'commit 0 of vol1 stays');
  });
});

describe('volumes on S3', () => {
  const unavailable = s3ServerForTests();
  let server: S3Server;
  before(async () => {
    if (!unavailable) server = await startS3ServerWithCredentials();
  });
  after(async () => {
    await server?.stop();
  });

  test('create, list and rm on S3; the empty volume stores at most 1 MiB', { skip: unavailable ?? false }, async () => {
    const location = `s3:${server.endpoint}/scrate-volumes/repo`;
    const env = cliEnv(location, { XDG_CACHE_HOME: path.join(tmp.dir, 'cache'), AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey });
    ok(['init'], env);
    const backend = await openBackend(location);
    const before = await objectBytes(backend);
    ok(['volume', 'create', 's3vol', '--size', '256T'], env);
    const grown = (await objectBytes(backend)).bytes - before.bytes;
    assert.ok(grown > 0 && grown <= 1024 * 1024, `${grown} bytes`);
    const [v] = listed(env);
    assert.deepEqual([v!.name, v!.size, v!.allocated, v!.seq], ['s3vol', 2 ** 48, 0, 1]);
    ok(['volume', 'rm', 's3vol'], env);
    assert.deepEqual(listed(env), []);
    ok(['check'], env);
  });
});
