import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import { fullKeys, newMasterSecret } from '../src/crypto/access.js';
import { sha256 } from '../src/crypto/primitives.js';
import { signMessage } from '../src/crypto/signing.js';
import { ExitCode, ScrateError } from '../src/errors.js';
import { DEFAULT_CHUNKER, DEFAULT_PACK_SIZE, encodeConfig } from '../src/repository/config.js';
import { BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { loadSnapshot } from '../src/snapshot/snapshot.js';
import { findNode } from '../src/tree/walk.js';
import { initRepo, openRepo, PASSWORD, scratch } from './helpers/repo.js';

/*
 * Attacks by a planter (docs/SECURITY.md §4: add, replace, delete objects; no password), and
 * what damage does to later backups. Every test here fails while the flaw it shows is present.
 */

const MiB = 1024 * 1024;
/** The most a key file may cost (16 times the floor): 1 to 2 s of one core each. */
const COSTLY_KDF = { name: 'scrypt', N: 2 ** 15, r: 8, p: 16 };

function plant(dir: string, type: string, bytes: Buffer): string {
  const name = sha256(bytes).toString('hex');
  fs.writeFileSync(path.join(dir, type, name), bytes);
  return name;
}

/** Opens with the right password on a machine that opened it before (`state`); returns the error and how long it took. */
async function openTimed(dir: string, state: string): Promise<{ err: unknown; ms: number }> {
  const start = performance.now();
  try {
    await Repository.open(new LocalBackend(dir), PASSWORD, { stateRoot: state });
    return { err: undefined, ms: performance.now() - start };
  } catch (err) {
    return { err, ms: performance.now() - start };
  }
}

describe('attacks by a planter', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => {
    tmp = scratch('attack-planter');
  });
  after(() => tmp.cleanup());

  test('a config replaced by one signed with another admin key is refused as such, without trying its key files', async () => {
    const dir = path.join(tmp.dir, 'replaced');
    const state = path.join(tmp.dir, 'replaced-state');
    await initRepo(dir);
    await Repository.open(new LocalBackend(dir), PASSWORD, { stateRoot: state });
    const planter = fullKeys(newMasterSecret(), randomBytes(32).toString('hex'));
    const config = { version: 3 as const, id: planter.repository, chunker: DEFAULT_CHUNKER, compression: 3, packSize: DEFAULT_PACK_SIZE, sealPublic: planter.sealPublic.toString('base64'), adminPublic: planter.adminPublic.toString('base64') };
    fs.writeFileSync(path.join(dir, 'config'), encodeConfig(config, planter.writer.signing));
    // Key files the planter's admin key signs, each as costly as the bounds allow.
    for (let i = 0; i < 3; i++) {
      const f = { version: 3, kdf: { ...COSTLY_KDF, salt: randomBytes(32).toString('base64') }, nonce: randomBytes(12).toString('base64'), data: randomBytes(64).toString('base64'), info: randomBytes(64).toString('base64') };
      const signature = signMessage(planter.writer.signing, Buffer.from('scrate v3 key file\0' + JSON.stringify(f))).toString('base64');
      plant(dir, 'keys', Buffer.from(JSON.stringify({ ...f, signature }, null, 2) + '\n'));
    }
    const { err, ms } = await openTimed(dir, state);
    assert.ok(err instanceof ScrateError);
    assert.notEqual(err.exitCode, ExitCode.wrongPassword, `"${err.message}" after ${Math.round(ms)} ms: the user is told the password is wrong`);
    assert.match(err.message, /config/);
    assert.ok(ms < 1000, `${Math.round(ms)} ms: planted key files were tried`);
  });

  test('a config replaced by bytes that are not JSON (the version 2 path) is refused as such, without trying planted key files', async () => {
    const dir = path.join(tmp.dir, 'downgraded');
    const state = path.join(tmp.dir, 'downgraded-state');
    await initRepo(dir);
    await Repository.open(new LocalBackend(dir), PASSWORD, { stateRoot: state });
    fs.writeFileSync(path.join(dir, 'config'), Buffer.concat([Buffer.from('SCOB'), randomBytes(100)]));
    // Version 2 key files were never signed: any well-formed one is tried.
    for (let i = 0; i < 3; i++) {
      const f = { version: 1, kdf: { ...COSTLY_KDF, salt: randomBytes(32).toString('base64') }, nonce: randomBytes(12).toString('base64'), data: randomBytes(64).toString('base64') };
      plant(dir, 'keys', Buffer.from(JSON.stringify(f)));
    }
    const { err, ms } = await openTimed(dir, state);
    assert.ok(err instanceof ScrateError);
    assert.notEqual(err.exitCode, ExitCode.wrongPassword, `"${err.message}" after ${Math.round(ms)} ms: the user is told the password is wrong`);
    assert.match(err.message, /config/);
    assert.ok(ms < 1000, `${Math.round(ms)} ms: planted key files were tried`);
  });
});

/** Why each content blob of `file` in snapshot `id` does not load (none: the file restores). */
async function unreadable(dir: string, id: string, file: string): Promise<string[]> {
  const repo = await openRepo(dir);
  const { snapshot, writer } = await loadSnapshot(repo, id);
  const reader = repo.reader(writer);
  const node = await findNode(reader, Buffer.from(snapshot.tree, 'hex'), file);
  assert.ok(node?.content?.length);
  const failures: string[] = [];
  for (const blob of node.content) await reader.loadBlob(BlobType.data, blob).catch((err: Error) => failures.push(err.message));
  return failures;
}

describe('damage and later backups of a full key', () => {
  let tmp: ReturnType<typeof scratch>;
  before(() => {
    tmp = scratch('attack-damage');
  });
  after(() => tmp.cleanup());

  test('once an index file is gone, the next backup does not reuse content lists whose blobs no index has', async () => {
    const dir = path.join(tmp.dir, 'repo-index');
    const src = path.join(tmp.dir, 'src-index');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(2 * MiB));
    await initRepo(dir);
    await backup(await openRepo(dir), { paths: [src] });
    const first = fs.readdirSync(path.join(dir, 'index'));
    // A second backup after a new file: its index file lists the trees of the changed directories.
    fs.writeFileSync(path.join(src, 'new.txt'), 'new\n');
    await backup(await openRepo(dir), { paths: [src] });
    // The planter deletes the first index file; every pack is still there.
    for (const name of first) fs.rmSync(path.join(dir, 'index', name));
    const second = await backup(await openRepo(dir), { paths: [src] });
    assert.deepEqual(await unreadable(dir, second.snapshotId!, path.join(src, 'big.bin')), [], 'the new backup refers to blobs that no index lists although the file was there to read');
  });

  test('once a data pack is gone, the next backup stores the unchanged files again rather than pointing at blobs no index has', async () => {
    const dir = path.join(tmp.dir, 'repo');
    const src = path.join(tmp.dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(2 * MiB));
    fs.writeFileSync(path.join(src, 'small.txt'), 'hello\n');
    await initRepo(dir);
    await backup(await openRepo(dir), { paths: [src] });
    // The planter deletes the data packs (or a disk loses them); the files are still on the host.
    const before = await openRepo(dir);
    for (const p of before.index.packs.filter((p) => p.type === BlobType.data)) {
      const id = p.id.toString('hex');
      fs.rmSync(path.join(dir, 'data', id.slice(0, 2), id));
    }
    const second = await backup(await openRepo(dir), { paths: [src] });
    assert.deepEqual(await unreadable(dir, second.snapshotId!, path.join(src, 'big.bin')), [], 'the new backup refers to blobs that are not in the repository although the file was there to read');
  });
});
