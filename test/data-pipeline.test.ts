import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DataPipeline } from '../src/archiver/data-pipeline.js';
import { FastCDC } from '../src/chunker/fastcdc.js';
import { FULL_WRITER } from '../src/crypto/access.js';
import { x25519Keys } from '../src/crypto/keybox.js';
import { blobId } from '../src/crypto/primitives.js';
import { packKeyOf, readPackHeader, type PackEntry } from '../src/repository/pack.js';
import type { FinishedPack } from '../src/repository/packer.js';
import { scratch } from './helpers/repo.js';

const MiB = 1024 * 1024;
let tmp: ReturnType<typeof scratch>;
before(() => (tmp = scratch('data-pipeline')));
after(() => tmp.cleanup());

/** A pipeline into packs kept in memory, with a sink that claims every blob once. */
function pipelineIntoMemory(packSize: number) {
  const seal = x25519Keys(randomBytes(32));
  const chunkIdKey = randomBytes(32);
  const chunker = new FastCDC({ min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 });
  const packs: FinishedPack[] = [];
  const seen = new Set<string>();
  const sink = {
    claim: (id: Buffer) => !seen.has(id.toString('hex')) && !!seen.add(id.toString('hex')),
    storePack: async (p: FinishedPack) => void packs.push(p),
  };
  const data = new DataPipeline({ chunkIdKey, chunker, targets: [{ sealPublic: seal.public, writer: FULL_WRITER, level: 3, packSize, sink }] });
  /** Every blob of every pack, from the packs' own (encrypted) headers, by ID. */
  const stored = () => {
    const blobs = new Map<string, PackEntry>();
    for (const p of packs) {
      const key = packKeyOf(p.envelope, seal)!;
      for (const e of readPackHeader(p.bytes as Buffer, key, 'pack').entries) blobs.set(e.id.toString('hex'), e);
    }
    return blobs;
  };
  return { data, packs, chunkIdKey, chunker, stored };
}

test('a small file that grew after the walk saw it is stored whole, and marked changed', async () => {
  const { data, chunkIdKey, stored } = pipelineIntoMemory(4 * MiB);
  const file = path.join(tmp.dir, 'grows');
  const content = randomBytes(600 * 1024);
  fs.writeFileSync(file, content);
  // The walk saw 10 bytes: the file grew to 600 KiB before it was read.
  const read = await data.readFile(Buffer.from(file), 10, 0n);
  await read.stored;
  await data.flush();
  assert.equal(read.read, content.length);
  assert.equal(read.changed, true);
  assert.equal(read.error, undefined);
  assert.ok(read.ids.length > 2, 'cut into chunks like any other input');
  const blobs = stored();
  // The IDs are those of the file's content, one chunk after another, each in a pack.
  let at = 0;
  for (const id of read.ids) {
    const entry = blobs.get(id.toString('hex'));
    assert.ok(entry, 'every chunk is in a pack');
    assert.ok(id.equals(blobId(chunkIdKey, content.subarray(at, (at += entry.rawLength)))));
  }
  assert.equal(at, content.length);
  await data.close();
});

test('packs end at the pack size, and every blob given is in exactly one of them', async () => {
  const { data, packs, stored } = pipelineIntoMemory(512 * 1024);
  const files = Array.from({ length: 200 }, (_, i) => {
    const file = path.join(tmp.dir, `f${i}`);
    const content = i % 3 === 0 ? randomBytes(20_000 + i * 100) : Buffer.from(`file ${i} `.repeat(2000 + i));
    fs.writeFileSync(file, content);
    return { file, size: content.length };
  });
  const reads = await Promise.all(files.map((f) => data.readFile(Buffer.from(f.file), f.size, BigInt(Math.round(fs.statSync(f.file).mtimeMs)) * 1_000_000n)));
  await data.flush();
  await data.close();
  const ids = new Set(reads.flatMap((r) => r.ids.map((id) => id.toString('hex'))));
  const blobs = stored();
  assert.equal(blobs.size, ids.size);
  for (const id of ids) assert.ok(blobs.has(id));
  assert.ok(packs.length >= 3, `${packs.length} packs`);
  // A pack ends with the sealing call that takes it to the pack size (whose blobs are shuffled),
  // but the one each lane (one per core) still has open at the flush: past the pack size by
  // less than the largest blob.
  const largest = Math.max(...packs.flatMap((p) => p.entries.map((e) => e.length)));
  const ends = packs.map((p) => p.entries.at(-1)!).map((e) => [e.offset, e.offset + e.length]);
  assert.ok(ends.every(([, end]) => end! < 512 * 1024 + largest), 'no pack goes past the pack size by more than a blob');
  assert.ok(ends.filter(([, end]) => end! < 512 * 1024).length <= os.availableParallelism(), `pack ends: ${ends.map(([, end]) => end)}`);
});
