import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { openBackend } from '../src/backend/open.js';
import { LocalBackend } from '../src/backend/local.js';
import { FULL_WRITER } from '../src/crypto/access.js';
import { sha256 } from '../src/crypto/primitives.js';
import { signingKey } from '../src/crypto/signing.js';
import { addWriteOnlyKey } from '../src/repository/key-admin.js';
import { Repository } from '../src/repository/repository.js';
import { decodeObject, encodeObject, ObjectKind } from '../src/repository/sealed-object.js';
import { listSnapshots } from '../src/snapshot/snapshot.js';
import { assertCleanError, cliEnv, jsonLines, jsonMessage, scrate, type CopySummary } from './helpers/cli.js';
import { crashpointUnavailable, killLeftovers, repoPaths, Traced } from './helpers/crashpoint.js';
import { initRepo, openRepo, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';

/*
 * Copying into a repository for which the host holds only a write-only key (issue #24, design
 * §1.3, §2.2, §2.4 F3): a host with a full key to its local repository pushes its own
 * snapshots offsite with a `--share-full-keys` write-only key, and can read nothing there.
 */

const LOCAL_PW = 'local password';
const OFFSITE_PW = 'offsite full password';
const WO_PW = 'offsite write-only password';
const HOST = 'h1';
const unavailable = s3ServerForTests();

interface Listed {
  id: string;
  hostname: string;
  tree: string;
  original?: string;
  writer?: { id: string; access: string; hostname?: string };
}

describe('copy into a repository with a write-only key', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let server: S3Server;
  let data: string;
  const dir = (name: string) => path.join(tmp.dir, name);
  const local = () => dir('local');
  const env = (repo: string, password: string, extra: Record<string, string> = {}) =>
    cliEnv(repo, {
      SCRATE_PASSWORD: password,
      SCRATE_FROM_PASSWORD: LOCAL_PW,
      SCRATE_FROM_REPOSITORY: local(),
      XDG_CACHE_HOME: dir('cache'),
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      ...extra,
    });
  const ok = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = scrate(args, e);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const copy = (e: NodeJS.ProcessEnv, args: string[] = []) => jsonMessage<CopySummary>(ok(['copy', '--json', ...args], e).stdout, 'summary');
  const listed = (e: NodeJS.ProcessEnv, args: string[] = []) => jsonLines(ok(['snapshots', '--json', ...args], e).stdout)[0] as unknown as Listed[];
  const passwordFile = (name: string, password: string) => {
    fs.writeFileSync(dir(name), password + '\n');
    return dir(name);
  };
  /** The snapshot objects of a repository, as a bucket lists them. */
  const snapshotObjects = async (location: string) => {
    const names: string[] = [];
    for await (const { name } of (await openBackend(location)).list('snapshots')) names.push(name);
    return names.sort();
  };
  const dataPacks = async (location: string) => {
    let n = 0;
    for await (const _ of (await openBackend(location)).list('data')) n++;
    return n;
  };
  /** Every write-only writer's record on this machine (XDG_CACHE_HOME/scrate/<repository>/writer-<W>). */
  const records = () => {
    const root = path.join(dir('cache'), 'scrate');
    return fs.readdirSync(root).flatMap((repo) => (fs.statSync(path.join(root, repo)).isDirectory() ? fs.readdirSync(path.join(root, repo)).filter((n) => n.startsWith('writer-')).map((n) => path.join(root, repo, n)) : []));
  };

  before(async () => {
    tmp = scratch('copy-wo');
    server = await startS3ServerWithCredentials();
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    ok(['init'], env(local(), LOCAL_PW));
    ok(['backup', '--host', HOST, data], env(local(), LOCAL_PW));
    fs.writeFileSync(path.join(data, 'second.bin'), randomBytes(1024 * 1024));
    ok(['backup', '--host', HOST, data], env(local(), LOCAL_PW));
    ok(['backup', '--host', 'other', data], env(local(), LOCAL_PW));
  });
  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  for (const kind of ['local', 's3'] as const) {
    test(`${kind}: the host copies its own snapshots, reads nothing there, and a full key restores them bit-exact`, async () => {
      const offsite = kind === 'local' ? dir('offsite') : `s3:${server.endpoint}/scrate-copy-wo/offsite`;
      const full = env(offsite, OFFSITE_PW);
      const wo = env(offsite, WO_PW);
      ok(['init', '--from-repo', local(), '--copy-chunker-params'], full);
      ok(['key', 'add', '--write-only', '--host', HOST, '--share-full-keys', '--new-password-file', passwordFile(`wo-${kind}.pass`, WO_PW)], full);

      const sources = listed(env(local(), LOCAL_PW));
      const own = sources.filter((s) => s.hostname === HOST);
      const first = copy(wo);
      assert.deepEqual([first.snapshots_copied, first.snapshots_skipped, first.snapshots_failed], [2, 0, 0]);
      assert.ok(first.blobs_copied > 10, JSON.stringify(first));
      assert.match(ok(['copy'], wo).stdout, /1 snapshot\(s\) left out: this write-only key copies only host h1's/);

      const other = sources.find((s) => s.hostname === 'other')!;
      assertCleanError(scrate(['copy', other.id.slice(0, 8)], wo), 1, /is of host other, and this write-only key copies host h1's only/);

      // The host sees its copies (from its record), and reads nothing.
      const seen = listed(wo);
      assert.deepEqual(seen.map((s) => s.original).sort(), own.map((s) => s.id).sort());
      assert.deepEqual(seen.map((s) => s.tree).sort(), own.map((s) => s.tree).sort(), 'identity: the trees are the source\'s');
      for (const args of [['restore', 'latest', '--target', dir(`wo-restore-${kind}`)], ['ls', 'latest'], ['cat', 'snapshot', seen[0]!.id]]) {
        assertCleanError(scrate(args, wo), 1, /write-only/);
      }

      // A full key of the offsite repository: the host's writer's snapshots, bit-exact, clean.
      const copies = listed(full);
      assert.equal(copies.length, 2);
      assert.ok(copies.every((c) => c.hostname === HOST && c.writer?.access === 'write-only' && c.writer.hostname === HOST), JSON.stringify(copies));
      ok(['restore', 'latest', '--target', dir(`restored-${kind}`)], full);
      // A write-only writer's snapshot restores without set-id bits and device nodes (restore's rule for them); all else is bit-exact.
      const differences = compareTrees(data, path.join(dir(`restored-${kind}`), data));
      assert.deepEqual(differences.filter((d) => !/: mode [24]755 vs 0755$|: only in a \((block|char)-device\)$/.test(d)), []);
      assert.equal(differences.length, 5, differences.join('\n'));
      assert.match(ok(['check', '--read-data'], full).stdout, / 0 error\(s\)$/m);

      // A second copy moves nothing.
      const packs = await dataPacks(offsite);
      const objects = await snapshotObjects(offsite);
      const again = copy(wo);
      assert.deepEqual([again.snapshots_copied, again.snapshots_skipped, again.blobs_copied, again.bytes_read], [0, 2, 0, 0]);
      assert.equal(await dataPacks(offsite), packs);

      // The record lost (a new machine): the rerun finds each copy by name and writes none again.
      for (const record of records()) fs.rmSync(record, { recursive: true });
      assert.deepEqual(listed(wo), []);
      const rerun = copy(wo);
      assert.deepEqual([rerun.snapshots_copied, rerun.snapshots_skipped], [0, 2]);
      assert.deepEqual(await snapshotObjects(offsite), objects, 'no duplicate snapshot');
      assert.deepEqual(listed(wo).map((s) => s.id).sort(), objects, 'listed again');
    });
  }

  test('the host\'s next backup with the write-only key takes the copy as its parent', () => {
    const offsite = dir('parent-offsite');
    const full = env(offsite, OFFSITE_PW);
    const wo = env(offsite, WO_PW);
    ok(['init', '--from-repo', local(), '--copy-chunker-params'], full);
    ok(['key', 'add', '--write-only', '--host', HOST, '--share-full-keys', '--new-password-file', passwordFile('parent.pass', WO_PW)], full);
    copy(wo);
    const latest = listed(wo).at(-1)!;
    const r = jsonMessage<{ parent?: string; files_unmodified: number; data_added: number }>(ok(['backup', '--json', data], wo).stdout, 'summary');
    assert.equal(r.parent, latest.id);
    assert.ok(r.files_unmodified > 3, JSON.stringify(r));
    // Only the trees of the directories above the source, whose times changed, are new.
    assert.ok(r.data_added < 16 * 1024, JSON.stringify(r));
    ok(['check', '--read-data'], full);
  });

  test('killed after a copy is stored but before it is recorded: the rerun finds it by name and copies the rest', { skip: crashpointUnavailable() ?? false }, async () => {
    const offsite = dir('killed-offsite');
    const full = env(offsite, OFFSITE_PW);
    const wo = env(offsite, WO_PW);
    ok(['init', '--from-repo', local(), '--copy-chunker-params'], full);
    ok(['key', 'add', '--write-only', '--host', HOST, '--share-full-keys', '--new-password-file', passwordFile('killed.pass', WO_PW)], full);
    const p = repoPaths(offsite);
    const run = new Traced(['copy'], wo, { scope: p.all, stop: { when: 'after', op: 'rename', n: 1, path: p.object('snapshots') } });
    await run.stopped();
    assert.equal((await run.kill()).signal, 'SIGKILL');
    assert.equal((await snapshotObjects(offsite)).length, 1);
    assert.deepEqual(listed(wo), [], 'killed before the record');
    const again = copy(wo);
    assert.deepEqual([again.snapshots_copied, again.snapshots_skipped], [1, 1]);
    const objects = await snapshotObjects(offsite);
    assert.equal(objects.length, 2, 'no duplicate');
    assert.deepEqual(listed(wo).map((s) => s.id).sort(), objects);
    ok(['check', '--read-data'], full);
    await killLeftovers();
  });

  test('a write-only key without --share-full-keys re-chunks its copies with its own keys; a full key restores them bit-exact', async () => {
    const offsite = dir('plain-offsite');
    const full = env(offsite, OFFSITE_PW);
    const wo = env(offsite, WO_PW);
    ok(['init'], full);
    ok(['key', 'add', '--write-only', '--host', HOST, '--new-password-file', passwordFile('plain.pass', WO_PW)], full);
    const r = ok(['copy'], wo);
    assert.match(r.stdout, /files are re-chunked/);
    assert.match(r.stdout, /1 snapshot\(s\) left out: this write-only key copies only host h1's snapshots\n/);
    const copies = listed(wo);
    const own = listed(env(local(), LOCAL_PW)).filter((s) => s.hostname === HOST);
    assert.deepEqual(copies.map((c) => c.original).sort(), own.map((s) => s.id).sort());
    assert.ok(copies.every((c) => !own.some((s) => s.tree === c.tree)), 'trees rewritten under the write-only key');
    for (const cmd of [['ls', 'latest'], ['restore', 'latest', '--target', dir('nope')]]) assertCleanError(scrate(cmd, wo), 1, /write-only/);
    // Restored by a full key: the latest copy is the data tree as it is now.
    const restored = dir('plain-restored');
    ok(['restore', 'latest', '--host', HOST, '--target', restored, '--allow-privileged'], full);
    assert.deepEqual(compareTrees(data, path.join(restored, data)), []);
    ok(['check', '--read-data'], full);
    const again = copy(wo);
    assert.deepEqual([again.snapshots_copied, again.snapshots_skipped, again.blobs_copied, again.bytes_read], [0, 2, 0, 0]);
    // Key management stays with full keys.
    assertCleanError(scrate(['key', 'add', '--share-full-keys', '--new-password-file', dir('plain.pass')], full), 1, /--share-full-keys goes with --write-only/);
    assertCleanError(scrate(['key', 'add', '--write-only', '--host', HOST, '--share-full-keys', '--new-password-file', dir('plain.pass')], wo), 1, /write-only/);
  });
});

describe('write-only writers with the full writer\'s keys (keysOf) and deterministic copies', () => {
  let tmp: ReturnType<typeof scratch>;
  const dir = (name: string) => path.join(tmp.dir, name);
  before(() => {
    tmp = scratch('keysof');
  });
  after(() => tmp?.cleanup());

  const open = (repoDir: string, password: string, records?: string) => Repository.open(new LocalBackend(repoDir), password, records ? { stateRoot: records } : {});

  test('a shared-keys writer names blobs as the full writer does, yet still cannot tell whether the full writer stored a file', async () => {
    const repoDir = dir('oracle');
    const src = dir('oracle-data');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'secret.bin'), randomBytes(3 * 1024 * 1024));
    await initRepo(repoDir);
    const fullRepo = await openRepo(repoDir);
    await backup(fullRepo, { paths: [src], host: 'db1' });
    await addWriteOnlyKey(fullRepo, 'wo', TEST_KDF_MS, 'web1', true);
    const wo = await open(repoDir, 'wo', dir('oracle-records'));
    await wo.loadIndex();
    assert.ok(wo.keys.writer.chunkIdKey.equals(fullRepo.self.chunkIdKey) && wo.keys.writer.chunkerKey.equals(fullRepo.keys.writer.chunkerKey));
    const { snapshot } = await backup(wo, { paths: [src] });
    assert.ok(snapshot.summary!.dataAdded >= 3 * 1024 * 1024, `stored again in full: ${snapshot.summary!.dataAdded}`);
    // A full key sees the writer as sharing the full writer's keys, and its blobs verify under them.
    const again = await openRepo(repoDir);
    const writer = again.writers.all.find((w) => w.access === 'write-only')!;
    assert.ok(writer.keysOf?.equals(FULL_WRITER));
    assert.equal((await listSnapshots(again)).length, 2);
  });

  test('only an admin-signed registration gives a writer keysOf, and only the full writer\'s', async () => {
    const repoDir = dir('forged');
    await initRepo(repoDir);
    const fullRepo = await openRepo(repoDir);
    await addWriteOnlyKey(fullRepo, 'wo', TEST_KDF_MS, 'web1');
    const wo = await open(repoDir, 'wo', dir('forged-records'));
    // The host cannot register itself (or a writer of its own making) with keysOf.
    await assert.rejects(wo.saveWriterRecord({ writer: wo.self.hex, keysOf: FULL_WRITER.toString('hex') }), /write-only/);
    const forgedKey = signingKey(randomBytes(32));
    const forgedId = randomBytes(16).toString('hex');
    await wo.saveObject('writers', ObjectKind.writer, Buffer.from(JSON.stringify({ writer: forgedId, publicKey: forgedKey.public.toString('base64'), hostname: 'web1', keysOf: FULL_WRITER.toString('hex') })));
    await wo.saveObject('writers', ObjectKind.writer, Buffer.from(JSON.stringify({ writer: wo.self.hex, publicKey: wo.keys.writer.signing.public.toString('base64'), hostname: 'web1', keysOf: FULL_WRITER.toString('hex') })));
    // A registration altered in the bucket (stored under its new hash) does not open.
    const registration = (await fullRepo.listNames('writers'))[0]!;
    const bytes = fs.readFileSync(path.join(repoDir, 'writers', registration));
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 1;
    const tampered = sha256(bytes).toString('hex');
    await fullRepo.storeObject('writers', { name: tampered, bytes });
    // A full key naming a writer other than the full one in keysOf: malformed, skipped.
    const other = randomBytes(16).toString('hex');
    await fullRepo.saveWriterRecord({ writer: other, publicKey: signingKey(randomBytes(32)).public.toString('base64'), hostname: 'web2', keysOf: wo.self.hex });

    const warnings: string[] = [];
    const reopened = await Repository.open(new LocalBackend(repoDir), PASSWORD, { onWarning: (m) => warnings.push(m) });
    assert.equal(reopened.writers.get(Buffer.from(forgedId, 'hex')), undefined);
    assert.equal(reopened.writers.get(Buffer.from(other, 'hex')), undefined);
    const host = reopened.writers.get(wo.self.id)!;
    assert.equal(host.keysOf, undefined, 'its own key still names its blobs');
    assert.ok(host.chunkIdKey.equals(wo.keys.writer.chunkIdKey));
    assert.equal(warnings.filter((w) => /written by an unknown writer|not signed by the admin key/.test(w)).length, 2, warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes(`writers/${tampered.slice(0, 12)}`) && /authentication failed/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes(`malformed writer record for ${other}`)), warnings.join('\n'));
  });

  test('a copied writer\'s registration key cannot sign in the target', async () => {
    const srcDir = dir('sign-src');
    const dstDir = dir('sign-dst');
    const data = dir('sign-data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'f'), 'content\n');
    await initRepo(srcDir);
    const srcFull = await openRepo(srcDir);
    await addWriteOnlyKey(srcFull, 'web2', TEST_KDF_MS, 'web2');
    const web2 = await open(srcDir, 'web2', dir('sign-records'));
    await web2.loadIndex();
    await backup(web2, { paths: [data] });
    fs.writeFileSync(dir('sign.pass'), PASSWORD + '\n');
    const e = cliEnv(dstDir, { SCRATE_PASSWORD: PASSWORD, SCRATE_FROM_PASSWORD: PASSWORD, SCRATE_FROM_REPOSITORY: srcDir, XDG_CACHE_HOME: dir('sign-cache') });
    assert.equal(scrate(['init', '--from-repo', srcDir, '--copy-chunker-params'], e).code, 0);
    const r = scrate(['copy', '--json'], e);
    assert.equal(r.code, 0, r.stderr);
    const dst = await openRepo(dstDir);
    const copied = dst.writers.get(web2.self.id)!;
    assert.ok(copied, 'registered in the target under the same ID');
    // The source host signs a snapshot for the target with its key: refused there.
    const json = Buffer.from(JSON.stringify({ ...(await listSnapshots(dst))[0]!.snapshot, tags: ['planted'], writer: undefined }));
    const planted = encodeObject(ObjectKind.snapshot, json, dst.keys.sealPublic, { writer: web2.self.id, signing: web2.keys.writer.signing });
    await dst.storeObject('snapshots', { name: sha256(planted).toString('hex'), bytes: planted });
    const skipped: string[] = [];
    const all = await listSnapshots(dst, (_id, err) => skipped.push(err.message));
    assert.equal(all.length, 1);
    assert.ok(all.every((s) => !s.snapshot.tags.includes('planted')));
    assert.match(skipped.join('\n'), /signature of writer web2 \([0-9a-f]{8}\) does not verify/);
  });

  test('deterministic sealing: the same body by the same writer is the same bytes; another writer, even one sharing its keys, or another body is not', async () => {
    const repoDir = dir('det');
    await initRepo(repoDir);
    const fullRepo = await openRepo(repoDir);
    await addWriteOnlyKey(fullRepo, 'a', TEST_KDF_MS, 'web1', true);
    await addWriteOnlyKey(fullRepo, 'b', TEST_KDF_MS, 'web1', true);
    const a = await open(repoDir, 'a');
    const b = await open(repoDir, 'b');
    const body = Buffer.from(JSON.stringify({ time: new Date().toISOString(), paths: ['/x'], pad: 'y'.repeat(3000) }));
    const one = a.sealObject(ObjectKind.snapshot, body, true);
    assert.ok(one.bytes.equals(a.sealObject(ObjectKind.snapshot, body, true).bytes));
    const ephemeral = (x: Buffer) => x.subarray(5, 37).toString('hex');
    const others = [b.sealObject(ObjectKind.snapshot, body, true), fullRepo.sealObject(ObjectKind.snapshot, body, true), a.sealObject(ObjectKind.snapshot, Buffer.concat([body, Buffer.from(' ')]), true), a.sealObject(ObjectKind.snapshot, body)];
    assert.equal(new Set([one, ...others].map((o) => ephemeral(o.bytes))).size, 5);
    // Not compressed (zstd may change), and a full key opens and verifies it like any object.
    const reader = await openRepo(repoDir);
    const opened = decodeObject(ObjectKind.snapshot, one.bytes, reader.keys.read!.seal, 'test');
    assert.ok(opened.payload.equals(body));
    assert.ok(opened.signedBy(reader.writers.get(a.self.id)!.publicKey!));
    assert.ok(!opened.signedBy(reader.writers.get(b.self.id)!.publicKey!));
  });
});
