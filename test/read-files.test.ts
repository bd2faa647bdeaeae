import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { posix, READ_SLOTS, ReadOutcome } from '../src/native/posix.js';
import { scratch } from './helpers/repo.js';

/** posix.readFiles over `files` (path, size and mtime the walk would have seen): the bytes each took and its result slots. */
function readFiles(files: { path: string; size: number; mtimeNs: bigint }[]) {
  const paths = files.map((f) => Buffer.from(f.path));
  const ends = new Uint32Array(files.length);
  paths.reduce((end, p, i) => (ends[i] = end + p.length), 0);
  const into = Buffer.alloc(files.reduce((sum, f) => sum + f.size + 1, 0));
  const results = new Float64Array(files.length * READ_SLOTS);
  posix.readFiles(Buffer.concat(paths), ends, Float64Array.from(files, (f) => f.size), BigInt64Array.from(files, (f) => f.mtimeNs), into, results);
  let used = 0;
  return files.map((_, i) => {
    const [outcome, errno, read, changed] = Array.from(results.subarray(i * READ_SLOTS, (i + 1) * READ_SLOTS));
    const bytes = into.subarray(used, used + read!);
    used += read!;
    return { outcome, errno, read, changed, bytes };
  });
}

describe('posix.readFiles (a backup worker reads a batch of small files in one call)', () => {
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

  test('reads each file whole, one after another, with what it read and unchanged', () => {
    const files = [seen('a'), seen('empty'), seen('b')];
    const got = readFiles(files);
    assert.deepEqual(got.map((g) => [g.outcome, g.read, g.changed]), [[ReadOutcome.ok, 10, 0], [ReadOutcome.ok, 0, 0], [ReadOutcome.ok, 70_000, 0]]);
    assert.equal(got[0]!.bytes.toString(), 'first file');
    assert.ok(got[2]!.bytes.equals(Buffer.alloc(70_000, 7)));
  });

  test('tells a file that grew, shrank or was touched since the walk saw it', () => {
    const grows = seen('grows');
    const shrinks = seen('shrinks');
    const touched = seen('touched');
    fs.appendFileSync(at('grows'), ' no more');
    fs.writeFileSync(at('shrinks'), 'short');
    fs.utimesSync(at('touched'), new Date(), new Date('2001-01-01'));
    const got = readFiles([grows, shrinks, touched, seen('a')]);
    assert.equal(got[0]!.outcome, ReadOutcome.grew);
    assert.equal(got[0]!.read, 0, 'a file that grew takes no room: it is read again as a stream');
    assert.deepEqual([got[1]!.outcome, got[1]!.read, got[1]!.changed, got[1]!.bytes.toString()], [ReadOutcome.ok, 5, 1, 'short']);
    assert.deepEqual([got[2]!.outcome, got[2]!.changed], [ReadOutcome.ok, 1]);
    assert.equal(got[3]!.bytes.toString(), 'first file', 'the next file starts where the last one read ended');
  });

  test('reports a file that cannot be opened by its errno, and never follows a symlink swapped in', () => {
    const got = readFiles([{ path: at('gone'), size: 3, mtimeNs: 0n }, { path: at('link'), size: 1, mtimeNs: 0n }, seen('a')]);
    assert.deepEqual(got.map((g) => [g.outcome, g.errno]), [[ReadOutcome.openFailed, 2 /* ENOENT */], [ReadOutcome.openFailed, 40 /* ELOOP */], [ReadOutcome.ok, 0]]);
    assert.equal(got[2]!.bytes.toString(), 'first file');
  });

  test('reports a read that fails (a directory where a file was)', () => {
    fs.mkdirSync(at('dir'));
    const [got] = readFiles([{ path: at('dir'), size: 10, mtimeNs: 0n }]);
    assert.deepEqual([got!.outcome, got!.errno], [ReadOutcome.readFailed, 21 /* EISDIR */]);
  });

  test('refuses a buffer without room for the sizes given', () => {
    const a = seen('a');
    assert.throws(
      () => posix.readFiles(Buffer.from(a.path), Uint32Array.of(a.path.length), Float64Array.of(a.size), BigInt64Array.of(0n), Buffer.alloc(a.size), new Float64Array(READ_SLOTS)),
      /no room/,
    );
  });
});
