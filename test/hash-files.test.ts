import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chunkBuffer, FastCDC } from '../src/chunker/fastcdc.js';
import { blobId } from '../src/crypto/primitives.js';
import { pipeline, READ_SLOTS, ReadOutcome } from '../src/native/pipeline.js';
import { scratch } from './helpers/repo.js';

const chunker = new FastCDC({ min: 4096, avg: 16384, max: 65536, key: randomBytes(32) });
const key = randomBytes(32);

/** pipeline.hashFiles over `files` (path, size and mtime the walk would have seen): per file its result slots, bytes, and chunks as [length, id]. */
async function hashFiles(files: { path: string; size: number; mtimeNs: bigint }[], { table, params: { min, avg, max } } = chunker) {
  const paths = files.map((f) => Buffer.from(f.path));
  const ends = new Uint32Array(files.length);
  paths.reduce((end, p, i) => (ends[i] = end + p.length), 0);
  const into = Buffer.alloc(files.reduce((sum, f) => sum + f.size + 1, 0));
  const results = new Float64Array(files.length * READ_SLOTS);
  const hashed = await pipeline.hashFiles(table, min, avg, max, key, Buffer.concat(paths), ends, Float64Array.from(files, (f) => f.size), BigInt64Array.from(files, (f) => f.mtimeNs), into, results);
  let used = 0;
  let chunk = 0;
  return files.map((_, i) => {
    const [outcome, errno, read, changed, chunks] = Array.from(results.subarray(i * READ_SLOTS, (i + 1) * READ_SLOTS)) as number[];
    const own = hashed.grown[i];
    const bytes = own ?? into.subarray(used, (used += outcome === ReadOutcome.ok ? read! : 0));
    const cuts = Array.from({ length: chunks! }, (_, c) => [hashed.lengths[chunk + c]!, hashed.ids.subarray((chunk + c) * 32, (chunk + c + 1) * 32)] as const);
    chunk += chunks!;
    return { outcome, errno, read, changed, bytes, cuts, own: own !== undefined };
  });
}

describe('pipeline.hashFiles (a batch of small files read, cut and hashed on the thread pool)', () => {
  let tmp: ReturnType<typeof scratch>;
  const at = (name: string) => path.join(tmp.dir, name);
  const seen = (name: string) => {
    const st = fs.statSync(at(name), { bigint: true });
    return { path: at(name), size: Number(st.size), mtimeNs: st.mtimeNs };
  };

  before(() => {
    tmp = scratch('readfiles');
    fs.writeFileSync(at('a'), 'first file');
    fs.writeFileSync(at('empty'), '');
    fs.writeFileSync(at('b'), Buffer.alloc(70_000, 7));
    fs.writeFileSync(at('grows'), 'short');
    fs.writeFileSync(at('shrinks'), 'a longer text');
    fs.writeFileSync(at('touched'), 'same size');
    fs.symlinkSync('a', at('link'));
  });
  after(() => tmp.cleanup());

  test('reads each file whole, one after another, with what it read and unchanged', async () => {
    const files = [seen('a'), seen('empty'), seen('b')];
    const got = await hashFiles(files);
    assert.deepEqual(got.map((g) => [g.outcome, g.read, g.changed]), [[ReadOutcome.ok, 10, 0], [ReadOutcome.ok, 0, 0], [ReadOutcome.ok, 70_000, 0]]);
    assert.equal(got[0]!.bytes.toString(), 'first file');
    assert.ok(got[2]!.bytes.equals(Buffer.alloc(70_000, 7)));
  });

  test('cuts each file as FastCDC does and names each chunk by its blob ID', async () => {
    const data = randomBytes(300_000);
    fs.writeFileSync(at('random'), data);
    const [random, a] = await hashFiles([seen('random'), seen('a')]);
    const expected = [...chunkBuffer(chunker, data)];
    assert.ok(expected.length > 3);
    assert.deepEqual(random!.cuts.map(([length]) => length), expected.map(([, length]) => length));
    expected.forEach(([offset, length], c) => assert.ok(random!.cuts[c]![1].equals(blobId(key, data.subarray(offset, offset + length))), `chunk ${c}`));
    assert.deepEqual(a!.cuts.map(([length, id]) => [length, id.toString('hex')]), [[10, blobId(key, Buffer.from('first file')).toString('hex')]]);
  });

  test('cuts as FastCDC.cut (gear.c) does, keyed and unkeyed, tiny and max-bound sizes included', async () => {
    const sets = [
      { min: 4096, avg: 16384, max: 65536 },
      { min: 64, avg: 256, max: 1024, normalization: 3 },
      { min: 64, avg: 4096, max: 4100, normalization: 0 },
      { min: 100, avg: 1000, max: 1999, normalization: 2 },
    ];
    const data = randomBytes(300_000);
    const text = Buffer.from('The quick brown fox jumps over the lazy dog; '.repeat(6000));
    fs.writeFileSync(at('random'), data);
    fs.writeFileSync(at('text'), text);
    for (const sizes of sets) {
      for (const [kind, c] of [['keyed', new FastCDC({ ...sizes, key: randomBytes(32) })], ['unkeyed', new FastCDC(sizes)]] as const) {
        const got = await hashFiles([seen('random'), seen('text'), seen('a')], c);
        const what = `${kind} ${JSON.stringify(sizes)}`;
        [data, text, Buffer.from('first file')].forEach((bytes, i) =>
          assert.deepEqual(got[i]!.cuts.map(([length]) => length), [...chunkBuffer(c, bytes)].map(([, length]) => length), `${what}, file ${i}`),
        );
        assert.ok(got[0]!.cuts.length >= 4, what);
      }
    }
  });

  test('tells a file that grew, shrank or was touched since the walk saw it', async () => {
    const grows = seen('grows');
    const shrinks = seen('shrinks');
    const touched = seen('touched');
    fs.appendFileSync(at('grows'), ' no more');
    fs.writeFileSync(at('shrinks'), 'short');
    fs.utimesSync(at('touched'), new Date(), new Date('2001-01-01'));
    const got = await hashFiles([grows, shrinks, touched, seen('a')]);
    assert.deepEqual([got[0]!.outcome, got[0]!.read, got[0]!.changed, got[0]!.own], [ReadOutcome.grew, 13, 1, true]);
    assert.equal(got[0]!.bytes.toString(), 'short no more', 'a file that grew is read to its end, into a buffer of its own');
    assert.deepEqual(got[0]!.cuts.map(([length]) => length), [13]);
    assert.deepEqual([got[1]!.outcome, got[1]!.read, got[1]!.changed, got[1]!.bytes.toString()], [ReadOutcome.ok, 5, 1, 'short']);
    assert.deepEqual([got[2]!.outcome, got[2]!.changed], [ReadOutcome.ok, 1]);
    assert.equal(got[3]!.bytes.toString(), 'first file', 'the next file starts where the last one read ended');
  });

  test('reports a file that cannot be opened by its errno, and never follows a symlink swapped in', async () => {
    const got = await hashFiles([{ path: at('gone'), size: 3, mtimeNs: 0n }, { path: at('link'), size: 1, mtimeNs: 0n }, seen('a')]);
    assert.deepEqual(got.map((g) => [g.outcome, g.errno]), [[ReadOutcome.openFailed, 2 /* ENOENT */], [ReadOutcome.openFailed, 40 /* ELOOP */], [ReadOutcome.ok, 0]]);
    assert.equal(got[2]!.bytes.toString(), 'first file');
  });

  test('reports a read that fails (a directory where a file was)', async () => {
    fs.mkdirSync(at('dir'));
    const [got] = await hashFiles([{ path: at('dir'), size: 10, mtimeNs: 0n }]);
    assert.deepEqual([got!.outcome, got!.errno], [ReadOutcome.readFailed, 21 /* EISDIR */]);
  });

  test('refuses a buffer without room for the sizes given', async () => {
    const a = seen('a');
    const { min, avg, max } = chunker.params;
    await assert.rejects(
      pipeline.hashFiles(chunker.table, min, avg, max, key, Buffer.from(a.path), Uint32Array.of(a.path.length), Float64Array.of(a.size), BigInt64Array.of(0n), Buffer.alloc(a.size), new Float64Array(READ_SLOTS)),
      /no room/,
    );
  });
});
