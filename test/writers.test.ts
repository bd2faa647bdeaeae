import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import { check } from '../src/checker/checker.js';
import { agreeKey, recoverKey, x25519Keys } from '../src/crypto/keybox.js';
import { counterNonce, open, sha256 } from '../src/crypto/primitives.js';
import { signingKey } from '../src/crypto/signing.js';
import { deriveWrapKey } from '../src/crypto/kdf.js';
import { IntegrityError, ScrateError } from '../src/errors.js';
import { parseKeyFile } from '../src/repository/key-file.js';
import { addWriteOnlyKey, removeKey } from '../src/repository/key-admin.js';
import { BlobType, HEADER_NONCE, packKeyOf } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { decodeObject, encodeObject, ObjectKind } from '../src/repository/sealed-object.js';
import { listSnapshots, type Snapshot } from '../src/snapshot/snapshot.js';
import { addedBelow, initRepo, listObjects, openRepo, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';

const MiB = 1024 * 1024;
const WO_PASSWORD = 'write only password';

/**
 * Writers (docs/SECURITY.md): a write-only key stores backups it cannot read, dedups only
 * against itself, and full keys accept only what registered, unrevoked writers signed.
 */
describe('write-only keys and writers', () => {
  let tmp: ReturnType<typeof scratch>;
  let dir: string;
  let full: Repository;
  let woKeyId: string;
  const fullSrc = () => path.join(tmp.dir, 'full-src');
  const hostSrc = () => path.join(tmp.dir, 'host-src');
  const records = () => path.join(tmp.dir, 'records');
  const openWriteOnly = async () => {
    const repo = await Repository.open(new LocalBackend(dir), WO_PASSWORD, { stateRoot: records() });
    await repo.loadIndex();
    return repo;
  };

  before(async () => {
    tmp = scratch('writers');
    dir = path.join(tmp.dir, 'repo');
    fs.mkdirSync(path.join(fullSrc(), 'secret-project'), { recursive: true });
    fs.writeFileSync(path.join(fullSrc(), 'secret-project', 'payroll.xlsx'), randomBytes(3 * MiB));
    fs.mkdirSync(hostSrc());
    fs.writeFileSync(path.join(hostSrc(), 'access.log'), 'GET /\n'.repeat(50_000));
    fs.writeFileSync(path.join(hostSrc(), 'big.bin'), randomBytes(2 * MiB));
    await initRepo(dir);
    full = await openRepo(dir);
    await backup(full, { paths: [fullSrc()] });
    woKeyId = (await addWriteOnlyKey(full, WO_PASSWORD, TEST_KDF_MS, 'web1')).keyId;
  });
  after(() => tmp.cleanup());

  test('a write-only key backs up; its unchanged second backup adds a snapshot and nothing of its data', async () => {
    const first = await backup(await openWriteOnly(), { paths: [hostSrc()] });
    assert.ok(first.snapshot.summary!.dataStored > 2 * MiB);
    let second: Awaited<ReturnType<typeof backup>> | undefined;
    const added = await addedBelow(dir, hostSrc(), async () => {
      second = await backup(await openWriteOnly(), { paths: [hostSrc()] });
      return second.snapshotId!;
    });
    assert.equal(second!.parentId, first.snapshotId, 'the parent comes from the record');
    assert.equal(second!.snapshot.summary!.bytesRead, 0);
    assert.deepEqual(added, { dataPacks: 0, trees: 0 });
    // At most the trees of the directories above the source changed (their times): a few KiB.
    assert.ok(second!.snapshot.summary!.dataStored < 16 * 1024, `${second!.snapshot.summary!.dataStored} bytes stored`);
  });

  test('a copy of data a full key stored is stored again in full: no dedup across writers', async () => {
    const copy = path.join(tmp.dir, 'copy');
    fs.mkdirSync(copy);
    fs.copyFileSync(path.join(fullSrc(), 'secret-project', 'payroll.xlsx'), path.join(copy, 'payroll.xlsx'));
    const { snapshot } = await backup(await openWriteOnly(), { paths: [copy] });
    assert.ok(snapshot.summary!.dataStored >= 3 * MiB, `stored ${snapshot.summary!.dataStored}`);
  });

  test('the write-only key lists only its own snapshots, from its record', async () => {
    const mine = await listSnapshots(await openWriteOnly());
    assert.ok(mine.length >= 2);
    assert.ok(mine.every((e) => e.snapshot.paths[0] !== fullSrc()));
    const all = await listSnapshots(await openRepo(dir));
    assert.ok(all.some((e) => e.writer.access === 'full') && all.some((e) => e.writer.hostname === 'web1'), 'a full key sees both writers');
  });

  test('no key a write-only key file holds decrypts a pack, a blob, a tree, an index or a snapshot', async () => {
    // Every secret in the key file, as its password opens it.
    const file = parseKeyFile(fs.readFileSync(path.join(dir, 'keys', woKeyId)));
    const plain = open(await deriveWrapKey(WO_PASSWORD, file.kdf), Buffer.from(file.nonce, 'base64'), Buffer.from(file.data, 'base64'))!;
    const held = JSON.parse(plain.toString('utf8')) as Record<string, string>;
    assert.equal(held['access'], 'write-only');
    const secrets = Object.values(held).map((v) => (/^[0-9a-f]+$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64'))).filter((k) => k.length >= 16);
    assert.ok(secrets.length >= 7, `${secrets.length} keys`);
    const packs = listObjects(dir).filter((o) => o.startsWith('data/'));
    const objects = listObjects(dir).filter((o) => o.startsWith('index/') || o.startsWith('snapshots/'));
    assert.ok(packs.length > 2 && objects.length > 2);
    // Where each pack's first blob lies, and its real key, as a full key sees them: the attempts
    // below use exact ranges, and the real key opens them (so the test can fail).
    const fullRepo = await openRepo(dir);
    const opened = await Promise.all(
      packs.map(async (p) => {
        const { bytes, envelope, header } = await fullRepo.loadPack(path.basename(p));
        const first = header.entries[0]!;
        const blob = bytes.subarray(first.offset, first.offset + first.length);
        const headerLength = bytes.readUInt32LE(bytes.length - 4);
        const sealedHeader = bytes.subarray(bytes.length - 4 - headerLength, bytes.length - 4);
        assert.ok(open(fullRepo.packKey(path.basename(p), envelope), counterNonce(first.offset), blob));
        return { p, envelope, blob, offset: first.offset, sealedHeader };
      }),
    );
    for (const k of secrets) {
      const k32 = Buffer.concat([k, Buffer.alloc(32)]).subarray(0, 32);
      const asX25519 = x25519Keys(k32);
      for (const { p, envelope, blob, offset, sealedHeader } of opened) {
        for (const key of [packKeyOf(envelope, asX25519), k32]) {
          assert.equal(open(key!, HEADER_NONCE, sealedHeader), null, `${p}: header`);
          assert.equal(open(key!, counterNonce(offset), blob), null, `${p}: first blob`);
        }
      }
      for (const o of objects) {
        const kind = o.startsWith('index/') ? ObjectKind.index : ObjectKind.snapshot;
        assert.throws(() => decodeObject(kind, fs.readFileSync(path.join(dir, o)), asX25519, o), IntegrityError);
      }
    }
    const wo = await openWriteOnly();
    assert.throws(() => wo.reader(wo.self), /write-only/);
    await assert.rejects(check(wo), /write-only/);
  });

  test('a forged snapshot (unregistered writer, bad signature, revoked writer) is skipped and never a parent', async () => {
    const repo = await openRepo(dir);
    const [own] = (await listSnapshots(repo)).filter((e) => e.writer.access === 'full');
    const later: Snapshot = { ...own!.snapshot, time: new Date(Date.now() + 86_400_000).toISOString(), tree: randomBytes(32).toString('hex') };
    const plant = (writer: Buffer, seed: Buffer) => {
      const bytes = encodeObject(ObjectKind.snapshot, Buffer.from(JSON.stringify(later)), repo.keys.sealPublic, { writer, signing: signingKey(seed) });
      const name = sha256(bytes).toString('hex');
      fs.writeFileSync(path.join(dir, 'snapshots', name), bytes);
      return name;
    };
    // A writer nobody registered; the full writer's ID with a key that is not the admin key.
    const unknown = plant(randomBytes(16), randomBytes(32));
    const badSignature = plant(Buffer.alloc(16), randomBytes(32));
    const skipped: string[] = [];
    const listed = await listSnapshots(await openRepo(dir), (id, err) => skipped.push(`${id}: ${err.message}`));
    assert.ok(!listed.some((e) => e.id === unknown || e.id === badSignature));
    assert.match(skipped.find((s) => s.startsWith(unknown))!, /unknown writer/);
    assert.match(skipped.find((s) => s.startsWith(badSignature))!, /signature .* does not verify/);
    const next = await backup(await openRepo(dir), { paths: [fullSrc()] });
    assert.equal(next.parentId, own!.id, 'the newest of its own snapshots, not the forged later one');
    for (const name of [unknown, badSignature]) fs.rmSync(path.join(dir, 'snapshots', name));
  });

  test('a revoked writer: what it signed before stays, what it signs after is refused', async () => {
    const wo = await openWriteOnly();
    const beforeRevocation = (await listSnapshots(await openRepo(dir))).filter((e) => e.writer.hostname === 'web1').map((e) => e.id);
    assert.ok(beforeRevocation.length >= 3);
    await removeKey(await openRepo(dir), woKeyId);
    // The host kept its keys (an attacker would): it writes on.
    fs.writeFileSync(path.join(hostSrc(), 'planted'), 'after revocation');
    const after = await backup(wo, { paths: [hostSrc()] });
    const skipped: string[] = [];
    const repo = await openRepo(dir);
    const listed = (await listSnapshots(repo, (id, err) => skipped.push(`${id}: ${err.message}`))).map((e) => e.id);
    for (const id of beforeRevocation) assert.ok(listed.includes(id), 'snapshots from before stay');
    assert.ok(!listed.includes(after.snapshotId!));
    assert.match(skipped.join('\n'), /after it was revoked/);
    await assert.rejects(Repository.open(new LocalBackend(dir), WO_PASSWORD), (e: unknown) => e instanceof ScrateError && e.exitCode === 12, 'its key file is gone');
    const { errors } = await check(await openRepo(dir, PASSWORD, { index: false }));
    assert.ok(errors.some((e) => /after it was revoked/.test(e.message)), 'check reports what it refuses');
  });

  test('the index keys blobs by type: a data blob and a tree blob of the same bytes are two blobs', async () => {
    const repo = await openRepo(dir);
    const bytes = Buffer.from(`{"nodes":[]} ${randomBytes(8).toString('hex')}`);
    assert.equal((await repo.saveBlob(BlobType.data, bytes)).added, true);
    assert.equal((await repo.saveBlob(BlobType.tree, bytes)).added, true);
    await repo.flush();
    const again = await openRepo(dir);
    const reader = again.reader(again.self);
    const id = reader.blobId(bytes);
    assert.equal(reader.find(BlobType.data, id)!.pack.type, BlobType.data);
    assert.equal(reader.find(BlobType.tree, id)!.pack.type, BlobType.tree);
  });

  test('keys agreed for one recipient do not open for another', () => {
    const a = x25519Keys(randomBytes(32));
    const b = x25519Keys(randomBytes(32));
    const { key, ephemeral } = agreeKey(a.public, 'test');
    assert.deepEqual(recoverKey(ephemeral, a, 'test'), key);
    assert.notDeepEqual(recoverKey(ephemeral, b, 'test'), key);
    assert.equal(recoverKey(Buffer.alloc(32), a, 'test'), null, 'a low-order point gives no key');
  });
});
