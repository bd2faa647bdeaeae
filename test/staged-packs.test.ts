import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { check } from '../src/checker/checker.js';
import { sha256 } from '../src/crypto/primitives.js';
import { BlobType, PackWriter, readPackHeader } from '../src/repository/pack.js';
import { PackFile } from '../src/repository/pack-file.js';
import { restore } from '../src/restorer/restorer.js';
import { initRepo, listObjects, openRepo, own, PASSWORD, scratch } from './helpers/repo.js';
import { paddedLength } from '../src/repository/padding.js';

const KiB = 1024;
let tmp: ReturnType<typeof scratch>;
let src: string;

before(() => {
  tmp = scratch('staged');
  src = path.join(tmp.dir, 'src');
  fs.mkdirSync(src);
  // Small files for the workers' batches, large ones for chunks, enough of both to fill many small packs.
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, `small-${i}`), randomBytes(1 + ((i * 997) % (8 * KiB))));
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(src, `large-${i}`), randomBytes(1536 * KiB));
});

after(() => tmp.cleanup());

test('a pack streamed through a small window is the pack built in memory', () => {
  const key = randomBytes(32);
  const envelope = randomBytes(32);
  const writerId = randomBytes(16);
  const blobs = Array.from({ length: 40 }, (_, i) => randomBytes(i === 7 ? 100 * KiB : 1 + i * 331));
  const build = (writer: PackWriter) => {
    for (const b of blobs) writer.add(sha256(b), b, b.length, false);
    return writer.finish();
  };
  const whole = build(new PackWriter(key, envelope, BlobType.data, writerId, 1024 * KiB));
  const file = new PackFile(path.join(tmp.dir, 'streamed-pack'));
  // The window is smaller than one of the blobs: it grows for it.
  const streamed = build(new PackWriter(key, envelope, BlobType.data, writerId, 4 * KiB, file));
  const staged = file.close(streamed.size);
  const written = fs.readFileSync(staged.file);
  assert.equal(streamed.bytes.length, 0);
  assert.deepEqual(written, whole.bytes);
  assert.equal(staged.size, whole.bytes.length);
  assert.deepEqual(streamed.id, sha256(whole.bytes));
  assert.deepEqual(streamed.entries, whole.entries);
  const header = readPackHeader(written, key, 'pack');
  assert.equal(header.entries.length, blobs.length);
  assert.deepEqual(header.writer, writerId);
  assert.equal(whole.bytes.length, paddedLength(whole.bytes.length), 'padded');
});

test('a pack keeps its own copies of blob IDs, not the buffers they were sliced from', () => {
  const writer = new PackWriter(randomBytes(32), randomBytes(32), BlobType.tree, randomBytes(16), 64 * KiB);
  // As blobId() makes them: 32-byte slices of Node's shared Buffer pool.
  const ids = Array.from({ length: 600 }, (_, i) => Buffer.from(sha256(Buffer.from([i]))));
  ids.forEach((id) => writer.add(id, Buffer.from('{}'), 2, false));
  const { entries } = writer.finish();
  assert.equal(entries.length, ids.length);
  entries.forEach((e, i) => {
    assert.deepEqual(e.id, ids[i]);
    assert.notEqual(e.id.buffer, ids[i]!.buffer);
    assert.ok(e.id.buffer.byteLength <= 16 * KiB, 'IDs share small stores of their own');
  });
  ids[0]!.fill(0);
  assert.notDeepEqual(entries[0]!.id, ids[0]);
});

test('a local backup writes its packs as files adopted whole: none left behind, the repository checks and restores', async () => {
  const repoDir = path.join(tmp.dir, 'repo-ok');
  await initRepo(repoDir, { packSize: 64 * KiB });
  const { snapshot } = await backup(await openRepo(repoDir), { paths: [src] });
  assert.deepEqual(
    listObjects(repoDir).filter((o) => path.basename(o).startsWith('.tmp-')),
    [],
  );
  const result = await check(await openRepo(repoDir, PASSWORD, { index: false }), { readData: true });
  assert.deepEqual(result.errors, []);
  assert.ok(result.packs > 10, `${result.packs} packs`);
  const target = path.join(tmp.dir, 'restored');
  const stats = await restore(own(await openRepo(repoDir)), snapshot, { target });
  assert.equal(stats.errors, 0);
  for (const name of fs.readdirSync(src)) assert.deepEqual(fs.readFileSync(path.join(target, src, name)), fs.readFileSync(path.join(src, name)), name);
});

test('a backup whose packs cannot be stored fails, leaving neither staged files nor objects', async () => {
  const repoDir = path.join(tmp.dir, 'repo-fail');
  await initRepo(repoDir, { packSize: 64 * KiB });
  const repo = await openRepo(repoDir);
  // Adopting a pack renames it into data/<2 hex>/: with those gone, every pack fails to be stored.
  for (const d of fs.readdirSync(path.join(repoDir, 'data'))) fs.rmdirSync(path.join(repoDir, 'data', d));
  await assert.rejects(backup(repo, { paths: [src] }), /ENOENT/);
  // Uploads already under way settle here.
  await assert.rejects(repo.packer.flush(), /ENOENT/);
  assert.deepEqual(fs.readdirSync(path.join(repoDir, 'data')), []);
  assert.deepEqual(fs.readdirSync(path.join(repoDir, 'index')), []);
  assert.deepEqual(fs.readdirSync(path.join(repoDir, 'snapshots')), []);
});

test("a backup removes temporary files a killed writer left a day ago, and no one else's", async () => {
  const repoDir = path.join(tmp.dir, 'repo-sweep');
  await initRepo(repoDir, { packSize: 64 * KiB });
  const leftover = (file: string, ageMs: number) => {
    fs.writeFileSync(file, 'partial pack');
    const when = new Date(Date.now() - ageMs);
    fs.utimesSync(file, when, when);
    return file;
  };
  const day = 24 * 60 * 60 * 1000;
  const stale = [
    leftover(path.join(repoDir, 'data', '.tmp-0123abcd-0-7'), 2 * day),
    leftover(path.join(repoDir, 'data', 'ab', '.tmp-half-saved'), day + 60_000),
    leftover(path.join(repoDir, 'index', '.tmp-old-index'), 3 * day),
  ];
  // A writer still at work (touched an hour ago), and a file that is not a temporary one.
  const live = leftover(path.join(repoDir, 'data', '.tmp-live-writer'), 60 * 60 * 1000);
  const foreign = leftover(path.join(repoDir, 'data', 'ab', 'not-a-temp'), 5 * day);
  await backup(await openRepo(repoDir), { paths: [src] });
  for (const file of stale) assert.ok(!fs.existsSync(file), `${file} should be gone`);
  assert.ok(fs.existsSync(live), 'a recent temporary file is left to its writer');
  assert.ok(fs.existsSync(foreign), 'only temporary files are swept');
  const result = await check(await openRepo(repoDir, PASSWORD, { index: false }), { readData: false });
  assert.deepEqual(result.errors.filter((e) => !e.message.includes('not-a-temp')), []);
});

test('trees go to a staged file too, which a failed backup removes', async () => {
  const repoDir = path.join(tmp.dir, 'repo-trees');
  await initRepo(repoDir, { packSize: 64 * KiB });
  const repo = await openRepo(repoDir);
  const staged = () => listObjects(repoDir).filter((o) => path.basename(o).startsWith('.tmp-'));
  await repo.saveBlob(BlobType.tree, Buffer.from('{"nodes":[]}'));
  assert.equal(staged().length, 1, 'the open tree pack is a file, not a buffer');
  const interrupted = new AbortController();
  interrupted.abort();
  await assert.rejects(backup(repo, { paths: [src], signal: interrupted.signal }), /interrupted/);
  assert.deepEqual(staged(), []);
  assert.deepEqual(fs.readdirSync(path.join(repoDir, 'index')), []);
});
