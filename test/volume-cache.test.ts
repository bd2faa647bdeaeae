import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SEGMENT_HEADER_BYTES } from '../src/volume/cache/segment.js';
import { VolumeCache, type CacheOptions } from '../src/volume/cache/volume-cache.js';
import { scratch } from './helpers/repo.js';

const KiB = 1024;
const B = 4 * KiB;
/** A record of one whole 4 KiB block: header, payload, tag. */
const BLOCK_RECORD = 28 + B + 16;
const VOLUME = '0123456789abcdef0123456789abcdef';

/** A deterministic generator, so a failing sequence can be replayed from its seed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function options(dir: string, key: Buffer, over: Partial<CacheOptions> = {}): CacheOptions {
  return { dir, key, volumeId: VOLUME, size: 16 * B, blockSize: B, limitBytes: 4 * 1024 * KiB, segmentBytes: SEGMENT_HEADER_BYTES + 3 * BLOCK_RECORD, ...over };
}

type Repo = Map<number, Buffer | null>;
const baseOf = (repo: Repo, block: number) => async () => repo.get(block) ?? null;

function blockOf(image: Buffer, block: number, blockSize = B): Buffer {
  return image.subarray(block * blockSize, Math.min(image.length, (block + 1) * blockSize));
}

function bytesOrZeros(data: Buffer | null, len: number): Buffer {
  return data ?? Buffer.alloc(len);
}

async function assertImage(cache: VolumeCache, repo: Repo, image: Buffer, what: string): Promise<void> {
  const blocks = Math.ceil(image.length / B);
  for (let b = 0; b < blocks; b++) {
    const want = blockOf(image, b);
    const got = await cache.readBlock(b, baseOf(repo, b));
    assert.ok(bytesOrZeros(got, want.length).equals(want), `${what}: block ${b} differs`);
    if (!cache.holds(b)) assert.ok(bytesOrZeros(repo.get(b) ?? null, want.length).equals(want), `${what}: clean block ${b} is not the repository's`);
  }
}

/** Uploads a dirty block as the volume layer does: materialize, store in the map, mark clean. */
async function upload(cache: VolumeCache, repo: Repo, block: number): Promise<void> {
  const { data, seq } = await cache.materialize(block, baseOf(repo, block));
  repo.set(block, data);
  cache.markClean(block, seq);
}

async function uploadAll(cache: VolumeCache, repo: Repo): Promise<void> {
  for (const { block } of [...cache.dirtyBlocks()]) await upload(cache, repo, block);
}

function segmentFiles(dir: string): string[] {
  const log = path.join(dir, 'log');
  return fs
    .readdirSync(log)
    .filter((n) => n.endsWith('.seg'))
    .sort((a, b) => parseInt(a) - parseInt(b))
    .map((n) => path.join(log, n));
}

describe('volume cache', () => {
  test('random writes, zeros, uploads, cuts, checkpoints and reopenings match a reference image', async () => {
    for (const seed of [1, 7, 42, 1234]) {
      const { dir, cleanup } = scratch('volcache');
      try {
        const rnd = prng(seed);
        const key = randomBytes(32);
        // The last block is short: 11 blocks and 1000 bytes.
        const size = 11 * B + 1000;
        const opts = options(dir, key, { size });
        let cache = await VolumeCache.open(opts);
        const image = Buffer.alloc(size);
        let repo: Repo = new Map();
        let persisted: Repo = new Map();
        let uploads: { block: number; data: Buffer | null; seq: number }[] = [];
        let cut: { seq: number; blocks: number[]; release(): void; image: Buffer; fork: Repo } | null = null;
        for (let step = 0; step < 500; step++) {
          const what = `seed ${seed} step ${step}`;
          const op = rnd(100);
          if (op < 55) {
            // A burst of writes and zeros issued together: their effects are in call order. Small
            // writes crowd into two blocks, so overlays pile up and merge while writes go on.
            const burst: Promise<void>[] = [];
            for (let n = 1 + rnd(5); n > 0; n--) {
              const small = rnd(10) < 7;
              const offset = small ? rnd(2) * B + rnd(B - 64) : rnd(size);
              const len = Math.min(size - offset, small ? 1 + rnd(64) : 1 + rnd(3 * B));
              if (rnd(5) === 0) {
                image.fill(0, offset, offset + len);
                burst.push(cache.zero(offset, len));
              } else {
                const data = randomBytes(len);
                data.copy(image, offset);
                burst.push(cache.write(offset, data));
              }
            }
            await Promise.all(burst);
          } else if (op < 75) {
            const dirty = [...cache.dirtyBlocks()];
            for (let i = 1; i < dirty.length; i++) assert.ok(dirty[i - 1].firstSeq < dirty[i].firstSeq, `${what}: dirty blocks out of order`);
            assert.equal(dirty.length, cache.dirtyCount);
            // An upload finishes later than it read the block: writes in between keep the block dirty.
            for (const u of uploads.splice(0)) {
              repo.set(u.block, u.data);
              cache.markClean(u.block, u.seq);
            }
            for (const d of dirty.slice(0, 1 + rnd(3))) {
              const { data, seq } = await cache.materialize(d.block, baseOf(repo, d.block));
              assert.ok(bytesOrZeros(data, blockOf(image, d.block).length).equals(blockOf(image, d.block)), `${what}: materialized block ${d.block} differs`);
              if (rnd(2) === 0) uploads.push({ block: d.block, data, seq });
              else {
                repo.set(d.block, data);
                cache.markClean(d.block, seq);
              }
            }
          } else if (op < 82) {
            if (cut) {
              // The commit: frozen versions over the map as of the cut must give the image as of the cut.
              for (let b = 0; b < Math.ceil(size / B); b++) {
                const want = blockOf(cut.image, b);
                if (cut.blocks.includes(b)) {
                  const { data, seq } = await cache.materialize(b, baseOf(cut.fork, b), cut.seq);
                  assert.equal(seq, cut.seq);
                  assert.ok(bytesOrZeros(data, want.length).equals(want), `${what}: cut block ${b} differs`);
                } else {
                  assert.ok(bytesOrZeros(cut.fork.get(b) ?? null, want.length).equals(want), `${what}: block ${b} clean at the cut differs`);
                }
              }
              cut.release();
              cut = null;
            } else {
              const c = cache.freeze();
              assert.equal(c.seq, cache.lastSeq);
              cut = { ...c, image: Buffer.from(image), fork: new Map(repo) };
            }
          } else if (op < 95) {
            persisted = new Map(repo);
            await cache.checkpoint(cache.lastSeq);
          } else {
            // A restart: the cuts and the in-memory map are gone; the repository is what the last checkpoint persisted.
            const lastSeq = cache.lastSeq;
            await cache.close();
            cut = null;
            uploads = [];
            repo = new Map(persisted);
            cache = await VolumeCache.open(opts);
            assert.ok(cache.lastSeq >= lastSeq, `${what}: seqs go on`);
          }
          await assertImage(cache, repo, image, what);
        }
        cut?.release();
        await uploadAll(cache, repo);
        await cache.checkpoint(cache.lastSeq);
        assert.equal(cache.dirtyCount, 0);
        assert.equal(cache.logBytes, 0, 'a clean cache frees every segment');
        assert.equal(segmentFiles(dir).length, 0);
        await assertImage(cache, repo, image, `seed ${seed} at the end`);
        await cache.close();
      } finally {
        cleanup();
      }
    }
  });

  test('more than 16 overlays over a local base merge into one full record, so older segments can go', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const cache = await VolumeCache.open(options(dir, key));
      const image = Buffer.alloc(16 * B);
      const full = randomBytes(B);
      full.copy(image, 0);
      await cache.write(0, full);
      // 40 small writes at distinct places: none hides another, so only a merge can bound them.
      for (let i = 0; i < 40; i++) {
        const piece = randomBytes(50);
        piece.copy(image, i * 100);
        await cache.write(i * 100, piece);
      }
      await new Promise((r) => setTimeout(r, 50));
      const before = segmentFiles(dir);
      await cache.checkpoint(0);
      const after = segmentFiles(dir);
      assert.ok(after.length < before.length && !after.includes(before[0]), `the segment of the first full record is freed: ${before.length} → ${after.length}`);
      await assertImage(cache, new Map(), image, 'after merges');
      await cache.close();
      const again = await VolumeCache.open(options(dir, key));
      await assertImage(again, new Map(), image, 'replayed');
      await again.close();
    } finally {
      cleanup();
    }
  });

  test('records of blocks marked clean after the persisted map stay until a checkpoint covers them', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const cache = await VolumeCache.open(options(dir, key));
      const image = randomBytes(6 * B);
      await cache.write(0, image);
      const repo: Repo = new Map();
      for (const b of [0, 1, 2]) await upload(cache, repo, b);
      // The map is persisted here; the uploads after it are only in memory.
      const persisted = new Map(repo);
      const cleans = cache.cleanCount;
      for (const b of [3, 4, 5]) await upload(cache, repo, b);
      assert.equal(cache.dirtyCount, 0);
      await cache.checkpoint(cache.lastSeq, cleans);
      assert.equal(segmentFiles(dir).length, 1, 'the segment of blocks 0–2 is freed, the one of 3–5 kept');
      await cache.close();
      // A crash before the next checkpoint: the repository has blocks 0–2 only.
      const again = await VolumeCache.open(options(dir, key));
      await assertImage(again, persisted, Buffer.concat([image, Buffer.alloc(10 * B)]), 'replayed over the persisted map');
      await uploadAll(again, persisted);
      await again.checkpoint(again.lastSeq);
      assert.equal(again.logBytes, 0);
      await again.close();
    } finally {
      cleanup();
    }
  });

  test('a reopened cache replays every record, continues the seqs and records both sessions', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const first = await VolumeCache.open(options(dir, key));
      const image = Buffer.alloc(16 * B);
      const writes = [[0, 3 * B], [B + 5, 100], [7 * B - 10, 30]] as const;
      for (const [offset, len] of writes) {
        const data = randomBytes(len);
        data.copy(image, offset);
        await first.write(offset, data);
      }
      image.fill(0, 2 * B, 2 * B + 10);
      await first.zero(2 * B, 10);
      const { lastSeq, session } = first;
      const oldFiles = segmentFiles(dir);
      assert.equal(lastSeq, 3 + 1 + 2 + 1);
      await first.close();
      const second = await VolumeCache.open(options(dir, key));
      assert.equal(second.replayedRecords, lastSeq);
      assert.equal(second.lastSeq, lastSeq);
      assert.notEqual(second.session, session);
      assert.deepEqual(second.state.sessions, [session, second.session]);
      assert.deepEqual([...second.dirtyBlocks()].map((d) => d.block), [0, 1, 2, 6, 7]);
      await assertImage(second, new Map(), image, 'replayed');
      await second.write(15 * B, Buffer.alloc(1, 1));
      assert.equal(second.lastSeq, lastSeq + 1);
      // A new process never appends to an old segment.
      const files = segmentFiles(dir);
      assert.deepEqual(files.slice(0, -1), oldFiles);
      assert.equal(fs.readFileSync(files.at(-1)!).subarray(32, 40).toString('hex'), second.session);
      await second.close();
    } finally {
      cleanup();
    }
  });

  test('a torn tail ends its segment: the records before it replay, the cut one is gone', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const cache = await VolumeCache.open(options(dir, key, { segmentBytes: SEGMENT_HEADER_BYTES + 8 * BLOCK_RECORD }));
      const blocks = [0, 1, 2, 3].map(() => randomBytes(B));
      await cache.write(0, Buffer.concat(blocks));
      await cache.sync();
      await cache.close();
      const [file] = segmentFiles(dir);
      assert.equal(fs.statSync(file).size, SEGMENT_HEADER_BYTES + 4 * BLOCK_RECORD);
      fs.truncateSync(file, SEGMENT_HEADER_BYTES + 3 * BLOCK_RECORD + 1000);
      const again = await VolumeCache.open(options(dir, key));
      assert.equal(again.replayedRecords, 3);
      for (let b = 0; b < 3; b++) assert.ok((await again.readBlock(b, async () => null))!.equals(blocks[b]));
      assert.equal(again.holds(3), false);
      assert.equal(await again.readBlock(3, async () => null), null);
      await again.close();
    } finally {
      cleanup();
    }
  });

  test('a record whose tag fails ends its segment; later segments still replay', async () => {
    // Sync rounds wait for every write placed before them, so a synced record never lies after a
    // hole in its segment: a bad record (a torn write) and what follows it in the segment were not
    // synced, and may be dropped as a disk drops unflushed writes. Nothing after it in the same
    // segment can be trusted to be where its header says (the header may be the damage).
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const cache = await VolumeCache.open(options(dir, key));
      const blocks = [0, 1, 2, 3, 4, 5].map(() => randomBytes(B));
      await cache.write(0, Buffer.concat(blocks));
      await cache.close();
      const files = segmentFiles(dir);
      assert.equal(files.length, 2, 'three records per segment');
      const fd = fs.openSync(files[0], 'r+');
      const at = SEGMENT_HEADER_BYTES + BLOCK_RECORD + 28 + 100;
      const byte = Buffer.alloc(1);
      fs.readSync(fd, byte, 0, 1, at);
      byte[0] ^= 0x40;
      fs.writeSync(fd, byte, 0, 1, at);
      fs.closeSync(fd);
      const again = await VolumeCache.open(options(dir, key));
      assert.equal(again.replayedRecords, 4);
      assert.deepEqual([0, 1, 2, 3, 4, 5].map((b) => again.holds(b)), [true, false, false, true, true, true]);
      for (const b of [0, 3, 4, 5]) assert.ok((await again.readBlock(b, async () => null))!.equals(blocks[b]));
      assert.equal(again.lastSeq, 6, 'seqs continue after the highest replayed');
      await again.close();
    } finally {
      cleanup();
    }
  });

  test('group commit: a hundred concurrent syncs share one or two fdatasyncs; no writes, no fdatasync', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const cache = await VolumeCache.open(options(dir, randomBytes(32)));
      await cache.write(0, randomBytes(B));
      await cache.sync();
      const idle = cache.syncCount;
      await Promise.all(Array.from({ length: 10 }, () => cache.sync()));
      assert.equal(cache.syncCount, idle, 'nothing written since the last sync: nothing to sync');
      await Promise.all(Array.from({ length: 100 }, (_, i) => cache.write((i % 16) * B + i, randomBytes(100))));
      const before = cache.syncCount;
      await Promise.all(Array.from({ length: 100 }, () => cache.sync()));
      const rounds = cache.syncCount - before;
      assert.ok(rounds >= 1 && rounds <= 2, `${rounds} fdatasync rounds for 100 syncs`);
      // Writes and syncs interleaved from many callers: each sync joins a round that started after its writes were in the file.
      const mixed = cache.syncCount;
      await Promise.all(Array.from({ length: 50 }, async (_, i) => {
        await cache.write(i * 200, randomBytes(150));
        await cache.sync();
      }));
      assert.ok(cache.syncCount - mixed <= 50 && cache.syncCount > mixed);
      await cache.close();
    } finally {
      cleanup();
    }
  });

  test('backpressure: writes wait first in, first out above 90 % of the limit, a sync does not wait for them, a checkpoint lets them go', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const segmentBytes = SEGMENT_HEADER_BYTES + 3 * BLOCK_RECORD;
      const cache = await VolumeCache.open(options(dir, randomBytes(32), { segmentBytes, limitBytes: 2 * segmentBytes }));
      const repo: Repo = new Map();
      const image = Buffer.alloc(16 * B);
      let b = 0;
      while (cache.logBytes <= 0.9 * 2 * segmentBytes) {
        const data = randomBytes(B);
        data.copy(image, b * B);
        await cache.write(b++ * B, data);
      }
      const first = randomBytes(B);
      const second = randomBytes(B);
      let done = 0;
      const waits = [cache.write(12 * B, first).then(() => done++), cache.write(12 * B, second).then(() => done++)];
      second.copy(image, 12 * B);
      await cache.sync();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(done, 0, 'the writes wait');
      assert.equal(cache.waitingWrites, 2);
      // A checkpoint that frees nothing lets nothing through.
      await cache.checkpoint(0);
      assert.equal(cache.waitingWrites, 2);
      await uploadAll(cache, repo);
      await cache.checkpoint(cache.lastSeq);
      await Promise.all(waits);
      assert.equal(done, 2);
      assert.equal(cache.waitingWrites, 0);
      await assertImage(cache, repo, image, 'after the wait');
      await cache.close();
    } finally {
      cleanup();
    }
  });

  test('a frozen cut keeps its versions through later writes, uploads and checkpoints until released', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const cache = await VolumeCache.open(options(dir, randomBytes(32)));
      const repo: Repo = new Map();
      const old = randomBytes(4 * B);
      await cache.write(0, old);
      await cache.write(B + 10, Buffer.from('partial'));
      Buffer.from('partial').copy(old, B + 10);
      await upload(cache, repo, 3);
      const cut = cache.freeze();
      assert.deepEqual(cut.blocks, [0, 1, 2]);
      const fork = new Map(repo);
      const oldSegments = segmentFiles(dir);
      for (let round = 0; round < 4; round++) {
        await cache.write(0, randomBytes(4 * B));
        await cache.zero(B, 100);
        await uploadAll(cache, repo);
        await cache.checkpoint(cache.lastSeq);
      }
      assert.ok(oldSegments.every((f) => fs.existsSync(f)), 'the cut holds its segments');
      for (let blk = 0; blk < 4; blk++) {
        const { data, seq } = await cache.materialize(blk, baseOf(fork, blk), cut.seq);
        assert.equal(seq, cut.seq);
        assert.ok(data!.equals(blockOf(old, blk)), `block ${blk} as of the cut`);
      }
      await cache.write(0, randomBytes(10));
      await assert.rejects(cache.materialize(0, async () => null, cut.seq - 1), /no version/);
      await upload(cache, repo, 0);
      cut.release();
      await cache.checkpoint(cache.lastSeq);
      assert.ok(oldSegments.every((f) => !fs.existsSync(f)), 'released: the segments go');
      assert.equal(cache.logBytes, 0);
      await cache.close();
    } finally {
      cleanup();
    }
  });

  test('no plaintext on disk; each segment has its own salt', async () => {
    const { dir: root, cleanup } = scratch('volcache');
    try {
      const dir = path.join(root, 'cache');
      const cache = await VolumeCache.open(options(dir, randomBytes(32)));
      const marker = Buffer.from('PLAINTEXT-MARKER');
      const text = Buffer.alloc(8 * B);
      for (let at = 0; at < text.length; at += marker.length) marker.copy(text, at);
      const random = randomBytes(2 * B);
      await cache.write(0, text);
      await cache.write(10 * B + 7, random);
      await cache.close();
      const files = [...segmentFiles(dir), path.join(dir, 'state')];
      assert.ok(files.length >= 4);
      for (const file of files) {
        const bytes = fs.readFileSync(file);
        assert.equal(bytes.indexOf(marker), -1, file);
        for (let at = 0; at + 32 <= random.length; at += 512) assert.equal(bytes.indexOf(random.subarray(at, at + 32)), -1, file);
      }
      const salts = segmentFiles(dir).map((f) => fs.readFileSync(f).subarray(40, 72).toString('hex'));
      assert.equal(new Set(salts).size, salts.length);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      assert.equal(fs.statSync(segmentFiles(dir)[0]).mode & 0o777, 0o600);
    } finally {
      cleanup();
    }
  });

  test('another volume\'s cache or segment is refused with a clear error; so is a wrong key\'s data', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      const other = 'fedcba9876543210fedcba9876543210';
      const cache = await VolumeCache.open(options(a, key));
      await cache.write(0, randomBytes(B));
      await cache.close();
      await assert.rejects(VolumeCache.open(options(a, key, { volumeId: other })), new RegExp(`belongs to volume ${VOLUME}, not ${other}`));
      const bc = await VolumeCache.open(options(b, key, { volumeId: other }));
      await bc.close();
      fs.copyFileSync(segmentFiles(a)[0], path.join(b, 'log', '0.seg'));
      await assert.rejects(VolumeCache.open(options(b, key, { volumeId: other })), new RegExp(`segment .*0\\.seg belongs to volume ${VOLUME}, not ${other}`));
      // The right volume with a wrong key: nothing authenticates, nothing is replayed.
      const wrong = await VolumeCache.open(options(a, randomBytes(32)));
      assert.equal(wrong.replayedRecords, 0);
      assert.equal(wrong.holds(0), false);
      await wrong.close();
    } finally {
      cleanup();
    }
  });

  test('kill -9 after a sync: a new process replays every synced write', async () => {
    const { dir, cleanup } = scratch('volcache');
    try {
      const key = randomBytes(32);
      const child = spawn(process.execPath, ['--input-type=module', '-e', WRITE_IN_CHILD, dir, key.toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('synced')) {
            // Let unsynced writes run on a little, so the kill lands among them.
            setTimeout(() => (child.kill('SIGKILL'), resolve()), 30);
          }
        });
        child.once('exit', () => reject(new Error(`the writer ended on its own: ${out}`)));
      });
      assert.equal(await exited, 'SIGKILL');
      const cache = await VolumeCache.open(crashOptions(dir, key));
      assert.ok(cache.replayedRecords >= CHILD_ROUNDS * CHILD_WRITES);
      const image = Buffer.alloc(CHILD_SIZE);
      for (let i = 0; i < CHILD_ROUNDS * CHILD_WRITES; i++) {
        const { offset, length } = childPlace(i);
        image.fill(childByte(i), offset, offset + length);
      }
      const synced = Math.ceil((CHILD_SYNCED_BLOCKS * CHILD_BLOCK) / B);
      for (let b = 0; b < synced; b++) {
        const got = bytesOrZeros(await cache.readBlock(b, async () => null), B);
        assert.ok(got.equals(blockOf(image, b)), `synced block ${b} differs`);
      }
      // What was not synced may be there or not, but never as anything that was not written.
      for (let b = synced; b < CHILD_SIZE / B; b++) {
        const got = await cache.readBlock(b, async () => null);
        if (got) assert.ok(got.every((x) => x === got[0]), `unsynced block ${b} holds a torn write`);
      }
      await cache.close();
    } finally {
      cleanup();
    }
  });
});

const CHILD_BLOCK = B;
const CHILD_SYNCED_BLOCKS = 64;
const CHILD_SIZE = 256 * CHILD_BLOCK;
const CHILD_ROUNDS = 20;
const CHILD_WRITES = 10;

function crashOptions(dir: string, key: Buffer): CacheOptions {
  return { dir, key, volumeId: VOLUME, size: CHILD_SIZE, blockSize: CHILD_BLOCK, limitBytes: 64 * 1024 * KiB, segmentBytes: 256 * KiB };
}

/** The i-th synced write: overlapping ranges in the first 64 blocks (the child has the same function). */
function childPlace(i: number): { offset: number; length: number } {
  const length = 1 + ((i * 104729) % 9000);
  return { offset: (i * 7919) % (64 * 4096 - 9001), length };
}

function childByte(i: number): number {
  return (i * 37 + 1) & 0xff;
}

/*
 * The writer: rounds of concurrent overlapping writes, each round synced, then "synced" and
 * unsynced whole-block writes beyond the synced range until it is killed.
 */
const WRITE_IN_CHILD = `
const { VolumeCache } = await import(${JSON.stringify(new URL('../src/volume/cache/volume-cache.js', import.meta.url).href)});
const [dir, keyHex] = process.argv.slice(1);
const volumeId = ${JSON.stringify(VOLUME)};
const KiB = 1024;
${childPlace.toString()}
${childByte.toString()}
const cache = await VolumeCache.open({ dir, key: Buffer.from(keyHex, 'hex'), volumeId, size: ${CHILD_SIZE}, blockSize: ${CHILD_BLOCK}, limitBytes: 64 * 1024 * KiB, segmentBytes: 256 * KiB });
for (let round = 0; round < ${CHILD_ROUNDS}; round++) {
  const writes = [];
  for (let k = 0; k < ${CHILD_WRITES}; k++) {
    const i = round * ${CHILD_WRITES} + k;
    const { offset, length } = childPlace(i);
    writes.push(cache.write(offset, Buffer.alloc(length, childByte(i))));
  }
  await Promise.all(writes);
  await cache.sync();
}
console.log('synced');
for (let i = 0; ; i++) await cache.write((${CHILD_SYNCED_BLOCKS} + (i % ${256 - CHILD_SYNCED_BLOCKS})) * ${CHILD_BLOCK}, Buffer.alloc(${CHILD_BLOCK}, (i % 255) + 1));
`;
