import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { openBackend } from '../src/backend/open.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restorer/restorer.js';
import { listSnapshots } from '../src/snapshot/snapshot.js';
import { walkTree } from '../src/tree/walk.js';
import { startFaultyProxy } from './helpers/faulty-proxy.js';
import { own, PASSWORD, scratch, TEST_KDF_MS } from './helpers/repo.js';
import { BlobType } from '../src/repository/pack.js';
import { s3ServerUnavailable, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';

const unavailable = s3ServerUnavailable();
let tmp: ReturnType<typeof scratch>;
let server: S3Server | undefined;

before(async () => {
  tmp = scratch('faults');
  if (unavailable) return;
  server = await startS3ServerWithCredentials();
});
after(async () => {
  await server?.stop();
  tmp.cleanup();
});

/** Every blob a snapshot refers to is in the index: nothing it needs was left unwritten. */
async function assertComplete(repo: Repository, tree: Buffer): Promise<number> {
  let blobs = 0;
  for await (const { node } of walkTree(own(repo), tree)) {
    for (const id of node.content ?? []) {
      assert.ok(own(repo).find(BlobType.data, id), `blob ${id.toString('hex').slice(0, 12)} of ${node.name} is indexed`);
      blobs++;
    }
  }
  return blobs;
}

test('a backup through a network that drops, delays and fails requests completes and restores exactly', { skip: unavailable ?? false }, async () => {
  const src = path.join(tmp.dir, 'src');
  fs.mkdirSync(src);
  await makeTree(src);
  const url = new URL(server!.endpoint);
  const proxy = await startFaultyProxy(
    { host: url.hostname, port: Number(url.port) },
    { slowDown: 0.06, serverError: 0.04, drop: 0.04, truncate: 0.05, delay: 0.05, delayMs: 300, first: ['slowDown', 'serverError', 'drop', 'truncate', 'delay'] },
  );
  try {
    // Small packs: many requests, so every kind of fault happens many times (trees are read a
    // whole pack at a time, so they add few).
    const location = `s3:${proxy.endpoint}/faults/repo`;
    await Repository.init(await openBackend(location), PASSWORD, { kdfMs: TEST_KDF_MS, packSize: 256 * 1024 });
    const repo = await Repository.open(await openBackend(location), PASSWORD);
    await repo.loadIndex();
    const { snapshot } = await backup(repo, { paths: [src] });

    const reader = await Repository.open(await openBackend(location), PASSWORD);
    await reader.loadIndex();
    const target = path.join(tmp.dir, 'restored');
    const stats = await restore(own(reader), snapshot, { target, subpath: src });
    assert.equal(stats.errors, 0);
    assert.deepEqual(compareTrees(src, target), []);

    const snapshots = await listSnapshots(reader);
    assert.equal(snapshots.length, 1);
    assert.ok((await assertComplete(reader, Buffer.from(snapshots[0]!.snapshot.tree, 'hex'))) > 10);
    const s = proxy.stats;
    assert.ok(s.requests > 50, `enough requests to matter (${s.requests})`);
    for (const kind of ['slowDown', 'serverError', 'drop', 'truncate', 'delay'] as const) assert.ok(s[kind] > 0, `${kind} injected: ${JSON.stringify(s)}`);
  } finally {
    await proxy.stop();
  }
});

test('a backup that cannot finish leaves no snapshot and nothing a snapshot refers to is missing', { skip: unavailable ?? false }, async () => {
  const src = path.join(tmp.dir, 'src2');
  fs.mkdirSync(src);
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, `f${i}`), Buffer.alloc(700_000, i + 1));
  const url = new URL(server!.endpoint);
  const proxy = await startFaultyProxy({ host: url.hostname, port: Number(url.port) }, { slowDown: 0, serverError: 0, drop: 0, truncate: 0, delay: 0, delayMs: 0 });
  try {
    const location = `s3:${proxy.endpoint}/faults/dying`;
    await Repository.init(await openBackend(location), PASSWORD, { kdfMs: TEST_KDF_MS, packSize: 512 * 1024 });
    const repo = await Repository.open(await openBackend(location), PASSWORD);
    await repo.loadIndex();
    // The server goes away in the middle of the backup and never comes back.
    let saves = 0;
    const save = repo.backend.save.bind(repo.backend);
    repo.backend.save = async (...args) => {
      if (++saves === 3) await proxy.stop();
      return save(...args);
    };
    await assert.rejects(backup(repo, { paths: [src] }), /still failing after|ECONNREFUSED/);
  } finally {
    await proxy.stop().catch(() => undefined);
  }
  const direct = await Repository.open(await openBackend(`s3:${server!.endpoint}/faults/dying`), PASSWORD);
  await direct.loadIndex();
  assert.deepEqual(await listSnapshots(direct), []);
});
