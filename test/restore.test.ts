import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup } from '../src/archiver/archiver.js';
import { LocalBackend } from '../src/backend/local.js';
import type { ObjectOptions, ObjectType } from '../src/backend/backend.js';
import { posix } from '../src/native/posix.js';
import { BlobType, readPackHeader, readEnvelope } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restorer/restorer.js';
import type { Snapshot } from '../src/snapshot/snapshot.js';
import { walkTree } from '../src/tree/walk.js';
import { initRepo, own, PASSWORD, scratch } from './helpers/repo.js';
import { compareTrees } from './helpers/tree.js';

const KiB = 1024;

/** Deterministic bytes: restores are compared against the source, so any content will do. */
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let at = 0, n = 0; at < length; n++) at += createHash('sha256').update(`${seed}:${n}`).digest().copy(out, at);
  return out;
}

/** Counts the data pack reads a restore makes. */
class CountingBackend extends LocalBackend {
  readonly dataReads = new Map<string, number>();

  override async load(type: ObjectType, name: string, opts?: ObjectOptions): Promise<Buffer> {
    if (type === 'data' && !opts?.metadata) this.dataReads.set(name, (this.dataReads.get(name) ?? 0) + 1);
    return super.load(type, name, opts);
  }
}

async function openCounting(dir: string): Promise<{ repo: Repository; backend: CountingBackend }> {
  const backend = new CountingBackend(dir);
  const repo = await Repository.open(backend, PASSWORD);
  await repo.loadIndex();
  return { repo, backend };
}

describe('restore by pack: many small files, a large file, damage', () => {
  let tmp: ReturnType<typeof scratch>;
  let src: string;
  let pristine: string;
  let snapshot: Snapshot;
  let fileCount = 0;

  before(async () => {
    tmp = scratch('restore');
    src = path.join(tmp.dir, 'src');
    // 300 small files in nested directories: many to a pack, some with equal content (one blob
    // written to several files), some empty, some compressible.
    for (let i = 0; i < 300; i++) {
      const dir = path.join(src, `d${i % 7}`, `e${i % 3}`);
      fs.mkdirSync(dir, { recursive: true });
      const content = i % 10 === 0 ? Buffer.alloc(0) : i % 9 === 0 ? bytes(9, 3000) : i % 4 === 0 ? Buffer.from(`line ${i}\n`.repeat(i)) : bytes(i, 100 + ((i * 37) % 9000));
      const file = path.join(dir, `f${i}`);
      fs.writeFileSync(file, content);
      fs.chmodSync(file, i % 2 ? 0o640 : 0o755);
      posix.setTimes(Buffer.from(file), 1_600_000_000_123_456_789n + BigInt(i), 1_600_000_000_123_456_789n + BigInt(i), true);
      fileCount++;
    }
    // A large file cut into many chunks, which land in several packs.
    fs.writeFileSync(path.join(src, 'large.bin'), bytes(1000, 3 * 1024 * KiB + 123));
    // A sparse one: data between holes.
    const sparse = fs.openSync(path.join(src, 'sparse.img'), 'w');
    fs.writeSync(sparse, bytes(2000, 8 * KiB), 0, 8 * KiB, 1024 * KiB);
    fs.ftruncateSync(sparse, 3 * 1024 * KiB);
    fs.closeSync(sparse);
    // Hard links across directories.
    fs.linkSync(path.join(src, 'd1/e1/f1'), path.join(src, 'd2/link-to-f1'));
    fs.linkSync(path.join(src, 'large.bin'), path.join(src, 'd3/link-to-large'));
    fs.symlinkSync('d1/e1/f1', path.join(src, 'symlink'));
    fileCount += 4;
    // Files are created with their final permission bits where that is safe: these are not. A
    // read-only file over several packs (threads reopen it to write after it is created), special
    // bits (cleared by chown), no bits at all, and (as root) someone else's file.
    const modes: [string, number, Buffer][] = [
      ['read-only.bin', 0o444, bytes(3000, 2 * 1024 * KiB + 7)],
      ['setuid', 0o6755, bytes(3001, 500)],
      ['no-mode', 0o000, bytes(3002, 600)],
    ];
    for (const [name, mode, content] of modes) {
      fs.writeFileSync(path.join(src, name), content);
      fs.chmodSync(path.join(src, name), mode);
      fileCount++;
    }
    if (process.getuid?.() === 0) {
      fs.writeFileSync(path.join(src, 'theirs'), bytes(3003, 700));
      fs.chownSync(path.join(src, 'theirs'), 1234, 5678);
      fileCount++;
    }

    pristine = path.join(tmp.dir, 'pristine');
    await initRepo(pristine, { packSize: 256 * KiB, chunker: { min: 64 * KiB, avg: 128 * KiB, max: 256 * KiB } });
    const { repo } = await openCounting(pristine);
    ({ snapshot } = await backup(repo, { paths: [src] }));
  });
  after(() => tmp.cleanup());

  test('comes out exact, each data pack read once', async () => {
    const { repo, backend } = await openCounting(pristine);
    const target = path.join(tmp.dir, 'restored');
    const stats = await restore(own(repo), snapshot, { target, subpath: src });
    assert.equal(stats.errors, 0);
    assert.equal(stats.files, fileCount);
    assert.deepEqual(compareTrees(src, target), []);
    const dataPacks = repo.index.packs.filter((p) => p.type === 0).map((p) => p.id.toString('hex'));
    assert.ok(dataPacks.length >= 10, `content spread over packs (${dataPacks.length})`);
    assert.deepEqual([...backend.dataReads.values()].filter((n) => n !== 1), [], 'no pack is read twice');
    assert.ok(backend.dataReads.size <= dataPacks.length);
  });

  test('a damaged blob and a missing pack cost exactly the files that need them', async () => {
    const dir = path.join(tmp.dir, 'damaged');
    fs.cpSync(pristine, dir, { recursive: true });
    const { repo } = await openCounting(dir);
    const packFile = (id: string) => path.join(dir, 'data', id.slice(0, 2), id);
    const contentOf = new Map<string, Buffer[]>();
    for await (const { path: parts, node } of walkTree(own(repo), Buffer.from(snapshot.tree, 'hex'))) {
      if (node.type === 'file') contentOf.set(parts.map(String).join('/'), node.content ?? []);
    }
    const packOf = (id: Buffer) => own(repo).find(BlobType.data, id)!.pack.id.toString('hex');
    const large = contentOf.get(path.join(src, 'large.bin').slice(1))!;
    // Remove a pack holding a middle part of the large file: its other parts are written, then removed.
    const missing = packOf(large[Math.floor(large.length / 2)]!);
    fs.rmSync(packFile(missing));
    // Flip a byte inside one blob of the pack with the most small files.
    const smallPacks = new Map<string, number>();
    for (const [, ids] of contentOf) for (const id of ids) if (packOf(id) !== missing && !large.includes(id)) smallPacks.set(packOf(id), (smallPacks.get(packOf(id)) ?? 0) + 1);
    const [flipped] = [...smallPacks].sort((a, b) => b[1] - a[1])[0]!;
    const packBytes = fs.readFileSync(packFile(flipped));
    const { entries } = readPackHeader(packBytes, repo.packKey(flipped, readEnvelope(packBytes, 'pack')), 'pack');
    const victim = entries[Math.floor(entries.length / 2)]!;
    packBytes[victim.offset + 5] ^= 1;
    fs.writeFileSync(packFile(flipped), packBytes);

    const lost = [...contentOf].filter(([, ids]) => ids.some((id) => packOf(id) === missing || id.equals(victim.id))).map(([p]) => path.relative(src, '/' + p));
    assert.ok(lost.length >= 3, `several files lost (${lost.join(', ')})`);
    assert.ok(lost.includes('large.bin') && lost.includes('d3/link-to-large'));

    const target = path.join(tmp.dir, 'restored-damaged');
    const errors: string[] = [];
    const stats = await restore(own(repo), snapshot, { target, subpath: src, onError: (p) => errors.push(path.relative(target, p)) });
    assert.deepEqual(errors.sort(), lost.sort(), 'each lost file is reported once');
    assert.equal(stats.errors, lost.length);
    // Lost files are absent (no half-written file is left); everything else is exact.
    assert.deepEqual(
      compareTrees(src, target),
      lost.sort().map((p) => `"${p}": only in a (file)`),
    );
  });
});
