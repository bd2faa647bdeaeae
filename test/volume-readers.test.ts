import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BlobType } from '../src/repository/pack.js';
import type { Repository } from '../src/repository/repository.js';
import { saveSnapshot } from '../src/snapshot/snapshot.js';
import type { BlockMapRef } from '../src/tree/block-map.js';
import { encodeTree, type Node } from '../src/tree/node.js';
import { assertCleanError, cliEnv, jsonLines, jsonMessage, scrate } from './helpers/cli.js';
import { cleanupMount, fuseUnavailable, startMount, type RunningMount } from './helpers/fuse-mount.js';
import { initRepo, openRepo, PASSWORD, scratch } from './helpers/repo.js';
import { pseudoRandom } from './helpers/tree.js';
import { saveBlockMap, saveVolumeSnapshot, volumeImage, volumeNode, type VolumeContent } from './helpers/volume-snapshot.js';

const B = 65536;
/** 1101 blocks, the last one of 1000 bytes: a map of depth 2 with two leaves. */
const SIZE = 1100 * B + 1000;
const block = (label: string, length = B) => pseudoRandom(25, label, length);

/** Commit a: blocks 0, 1, 5 (the same bytes as 0), 700, 1024 and the short last one. */
const A: [number, Buffer][] = [
  [0, block('zero')],
  [1, block('one')],
  [5, block('zero')],
  [700, block('700')],
  [1024, block('1024')],
  [1100, block('last', 1000)],
];
/** Commit b over a: block 1 rewritten, 700 trimmed, 1050 written. */
const CHANGES: [number, Buffer][] = [
  [1, block('one again')],
  [700, Buffer.alloc(0)],
  [1050, block('1050')],
];
const imageA = volumeImage({ size: SIZE, blocks: A });
const imageB = volumeImage({ size: SIZE, blocks: [...A, ...CHANGES] });

function packFile(dir: string, repo: Repository, type: BlobType, id: Buffer): string {
  const loc = repo.index.find(type, id, repo.self.no);
  assert.ok(loc, 'blob in the index');
  const pack = loc.pack.id.toString('hex');
  return path.join(dir, 'data', pack.slice(0, 2), pack);
}

/** A snapshot of a directory holding a volume image among other files. */
async function snapshotWithDir(repo: Repository, map: BlockMapRef): Promise<string> {
  const { id: note } = await repo.saveBlob(BlobType.data, Buffer.from('a note'));
  const noteNode: Node = { ...volumeNode('note', 6, map), mode: 0o644, content: [note], blockMap: undefined, image: undefined, sparse: undefined };
  const { id: images } = await repo.saveBlob(BlobType.tree, encodeTree([volumeNode('disk.img', SIZE, map)]));
  const dirNode: Node = { ...volumeNode('images', 0, map), type: 'dir', mode: 0o755, subtree: images, blockMap: undefined, image: undefined, sparse: undefined };
  const { id: root } = await repo.saveBlob(BlobType.tree, encodeTree([dirNode, noteNode]));
  await repo.flush();
  return saveSnapshot(repo, { time: new Date().toISOString(), tree: root.toString('hex'), paths: ['/'], hostname: 'volume-test', username: 'root', uid: 0, gid: 0, tags: [], programVersion: 'test' });
}

describe('volume commits through every reader', () => {
  let tmp: ReturnType<typeof scratch>;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let repo: Repository;
  const ids: Record<'a' | 'b' | 'dir', string> = { a: '', b: '', dir: '' };
  let mapA: BlockMapRef;
  let mapB: BlockMapRef;
  const cli = (...args: string[]) => scrate(args, env);

  before(async () => {
    tmp = scratch('volume-readers');
    dir = path.join(tmp.dir, 'repo');
    repo = await initRepo(dir);
    env = cliEnv(dir, { SCRATE_PASSWORD: PASSWORD });
    const a = await saveVolumeSnapshot(repo, { size: SIZE, blocks: A, time: new Date(Date.now() - 60_000) });
    const b = await saveVolumeSnapshot(repo, { size: SIZE, blocks: CHANGES, base: a.map, parent: a.id });
    [ids.a, ids.b, mapA, mapB] = [a.id, b.id, a.map, b.map];
    ids.dir = await snapshotWithDir(repo, mapB);
  });
  after(() => tmp.cleanup());

  test('restore writes each commit bit-exact and sparse, verified', () => {
    for (const [id, image] of [[ids.a, imageA], [ids.b, imageB]] as const) {
      const target = path.join(tmp.dir, `restored-${id.slice(0, 8)}.img`);
      const r = cli('restore', id, '--target', target, '--verify', '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonMessage<{ verified: boolean }>(r.stdout, 'summary').verified, true);
      assert.ok(fs.readFileSync(target).equals(image));
      const st = fs.statSync(target);
      assert.ok(st.blocks * 512 <= 8 * B, `holes stay holes: ${st.blocks * 512} bytes allocated of ${st.size}`);
    }
  });

  test('a volume image inside a directory restore is written through its map', () => {
    const target = path.join(tmp.dir, 'dir-restore');
    const r = cli('restore', ids.dir, '--target', target);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.readFileSync(path.join(target, 'images/disk.img')).equals(imageB));
    assert.equal(fs.readFileSync(path.join(target, 'note'), 'utf8'), 'a note');
    assert.equal(fs.statSync(path.join(target, 'images/disk.img')).mode & 0o777, 0o600);
  });

  test('diff: the changed image, and blobs only where the maps differ', () => {
    const r = cli('diff', '--json', ids.a, ids.b);
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    // The test's commits keep the node's times: content changed, metadata not.
    assert.deepEqual(lines.filter((l) => l.message_type === 'change').map((l) => [l.path, l.modifier]), [['/vol1', 'M?']]);
    const stats = lines.find((l) => l.message_type === 'statistics') as { changed_files: number; added: Record<string, number>; removed: Record<string, number> };
    assert.equal(stats.changed_files, 1);
    // Blocks 1 and 1050 new, 1 and 700 gone; both leaves and the map root changed, and the root tree.
    assert.equal(stats.added.data_blobs, 2);
    assert.equal(stats.removed.data_blobs, 2);
    assert.equal(stats.added.tree_blobs, 4);
    assert.equal(stats.removed.tree_blobs, 4);
    assert.ok(stats.added.bytes > 2 * B && stats.removed.bytes > 2 * B, JSON.stringify(stats));
    const same = jsonLines(cli('diff', '--json', ids.b, ids.b).stdout);
    assert.equal(same.filter((l) => l.message_type === 'change').length, 0);
  });

  test('stats count the map nodes and blocks', () => {
    const raw = JSON.parse(cli('stats', '--json', '--mode', 'raw-data', ids.a).stdout) as { total_blob_count: number };
    // Five distinct blocks (block 5 is block 0's bytes), three map nodes, the root tree.
    assert.equal(raw.total_blob_count, 5 + 3 + 1);
    const perFile = JSON.parse(cli('stats', '--json', '--mode', 'blobs-per-file', ids.a).stdout) as { total_blob_count: number; total_size: number };
    assert.equal(perFile.total_blob_count, 5);
    assert.equal(perFile.total_size, 4 * B + 1000);
    const restoreSize = JSON.parse(cli('stats', '--json', ids.a).stdout) as { total_size: number };
    assert.equal(restoreSize.total_size, SIZE);
  });

  test('find --blob finds a block in the images that hold it; --tree a map node', async () => {
    const blob = (await repo.saveBlob(BlobType.data, block('1050'))).id.toString('hex');
    const found = JSON.parse(cli('find', '--json', '--blob', blob).stdout) as { path: string; snapshot: string }[][];
    const hits = found.flat().map((m) => `${m.snapshot.slice(0, 8)} ${m.path}`);
    assert.deepEqual(hits.sort(), [`${ids.b.slice(0, 8)} /vol1`, `${ids.dir.slice(0, 8)} /images/disk.img`].sort(), JSON.stringify(found));
    const tree = jsonLines(cli('find', '--json', '--tree', mapA.root.toString('hex')).stdout);
    assert.equal(JSON.stringify(tree).includes('/vol1'), true, JSON.stringify(tree));
  });

  test('dump refuses an image in one line', () => {
    assertCleanError(cli('dump', ids.b, '/vol1', '--target', path.join(tmp.dir, 'dumped')), 1, /vol1 is a volume image: use restore --target FILE/);
  });

  test('mount reads an image through its map, st_blocks from its allocated blocks', { skip: process.env['CI'] ? false : (fuseUnavailable() ?? false) }, async () => {
    const mnt = path.join(tmp.dir, 'mnt');
    fs.mkdirSync(mnt);
    let m: RunningMount | undefined;
    try {
      m = await startMount(mnt, env);
      const file = path.join(mnt, 'ids', ids.b.slice(0, 8), 'vol1');
      assert.ok(fs.readFileSync(file).equals(imageB));
      // Random reads across a block boundary, in a hole, and at the short end.
      const fd = fs.openSync(file, 'r');
      try {
        for (const [at, length] of [[B - 100, 300], [300 * B, 4096], [SIZE - 500, 1000], [1050 * B + 7, 2 * B]] as const) {
          const buf = Buffer.alloc(length);
          const n = fs.readSync(fd, buf, 0, length, at);
          assert.ok(buf.subarray(0, n).equals(imageB.subarray(at, at + length)), `read at ${at}`);
        }
      } finally {
        fs.closeSync(fd);
      }
      const st = fs.statSync(file);
      assert.equal(st.size, SIZE);
      assert.equal(st.blocks, (6 * B) / 512, 'six blocks present');
      assert.ok(fs.readFileSync(path.join(mnt, 'ids', ids.dir.slice(0, 8), 'images/disk.img')).equals(imageB));
    } finally {
      await cleanupMount(m, mnt);
    }
  });

  test('prune keeps every block and map node a commit needs, and frees what only a forgotten one did', async () => {
    const before = (await openRepo(dir)).index.size;
    let r = cli('prune', '--max-unused', '0', '--delete-after', '0s');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await openRepo(dir)).index.size, before, 'nothing was unused');
    r = cli('forget', ids.a);
    assert.equal(r.code, 0, r.stderr);
    r = cli('prune', '--max-unused', '0', '--delete-after', '0s');
    assert.equal(r.code, 0, r.stderr);
    const after = await openRepo(dir);
    const data = (b: Buffer) => after.index.find(BlobType.data, after.prepare(BlobType.data, b).id, after.self.no);
    assert.equal(data(block('700')), undefined, "a's trimmed block is gone");
    assert.equal(data(block('one')), undefined, "a's old block 1 is gone");
    assert.ok(data(block('zero')) && data(block('1050')));
    assert.equal(after.index.find(BlobType.tree, mapA.root, after.self.no), undefined, "a's map root is gone");
    const target = path.join(tmp.dir, 'after-prune.img');
    assert.equal(cli('restore', ids.b, '--target', target).code, 0);
    assert.ok(fs.readFileSync(target).equals(imageB));
    const check = cli('check', '--read-data');
    assert.equal(check.code, 0, check.stderr + check.stdout);
  });

  test('check names the images a lost block or map node costs; repair leaves them out', async () => {
    // d: a commit whose map nodes are in a pack of their own, apart from its root tree.
    const content: VolumeContent = { size: 3 * B, blocks: [[0, block('d0')], [2, block('d2')]] };
    const mapD = await saveBlockMap(repo, content);
    await repo.flush();
    const { id: root } = await repo.saveBlob(BlobType.tree, encodeTree([volumeNode('vol1', content.size, mapD)]));
    await repo.flush();
    const d = await saveSnapshot(repo, { time: new Date().toISOString(), tree: root.toString('hex'), paths: ['/vol1'], hostname: 'volume-test', username: 'root', uid: 0, gid: 0, tags: ['volume'], programVersion: 'test' });
    const fresh = await openRepo(dir);
    fs.rmSync(packFile(dir, fresh, BlobType.tree, mapD.root));
    fs.rmSync(packFile(dir, fresh, BlobType.data, fresh.prepare(BlobType.data, block('1050')).id));
    const result = JSON.parse(cli('check', '--json').stdout.trim().split('\n').at(-1)!) as { errors: { dependents: { snapshot: string; path: string }[] }[] };
    const lost = result.errors.flatMap((e) => e.dependents.map((x) => `${x.snapshot.slice(0, 8)} ${x.path}`)).sort();
    assert.deepEqual(lost, [`${ids.b.slice(0, 8)} /vol1`, `${ids.dir.slice(0, 8)} /images/disk.img`, `${d.slice(0, 8)} /vol1`].sort());
    const restore = cli('restore', d, '--target', path.join(tmp.dir, 'lost.img'));
    assert.equal(restore.code, 1);
    assert.doesNotMatch(restore.stderr, /^\s+at /m);
    const repaired = JSON.parse(cli('repair', 'snapshots', '--forget', '--json').stdout) as { original: string; lost: { path: string }[] }[];
    assert.deepEqual([...new Set(repaired.flatMap((x) => x.lost.map((l) => `${x.original.slice(0, 8)} ${l.path}`)))].sort(), lost, JSON.stringify(repaired));
    // The packs are still missing, but no snapshot needs them any more.
    const again = JSON.parse(cli('check', '--json').stdout.trim().split('\n').at(-1)!) as { errors: { dependents: unknown[] }[] };
    assert.equal(again.errors.length, 2);
    assert.deepEqual(again.errors.flatMap((e) => e.dependents), []);
  });
});

describe('a hostile map', () => {
  test('a map root that is no map node: restore, check and mount fail cleanly', async () => {
    const tmp = scratch('volume-hostile');
    try {
      const dir = path.join(tmp.dir, 'repo');
      const repo = await initRepo(dir);
      const env = cliEnv(dir, { SCRATE_PASSWORD: PASSWORD });
      const { id: notMap } = await repo.saveBlob(BlobType.tree, encodeTree([]));
      const { id: root } = await repo.saveBlob(BlobType.tree, encodeTree([volumeNode('vol1', 4 * B, { root: notMap, blockSize: B, depth: 1 })]));
      await repo.flush();
      const id = await saveSnapshot(repo, { time: new Date().toISOString(), tree: root.toString('hex'), paths: ['/vol1'], hostname: 'h', username: 'root', uid: 0, gid: 0, tags: [], programVersion: 'test' });
      assertCleanError(scrate(['restore', id, '--target', path.join(tmp.dir, 'x.img')], env), 1, /invalid map node: not a map node/);
      const check = scrate(['check'], env);
      assert.equal(check.code, 1);
      assert.match(check.stderr, /invalid map node/);
      assert.match(check.stderr, /needed by snapshot \w+: \/vol1/);
    } finally {
      tmp.cleanup();
    }
  });
});
