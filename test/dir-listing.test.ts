import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { entryStat, listDirectory } from '../src/archiver/dir-listing.js';
import { scratch } from './helpers/repo.js';

describe('listDirectory (one native call per directory)', () => {
  let tmp: ReturnType<typeof scratch>;
  let dir: Buffer;

  before(() => {
    tmp = scratch('listdir');
    dir = Buffer.from(tmp.dir);
    const at = (name: string | Buffer) => Buffer.concat([dir, Buffer.from('/'), Buffer.from(name)]);
    fs.writeFileSync(at('b'), 'x'.repeat(5000));
    fs.writeFileSync(at('B'), '');
    fs.writeFileSync(at('ä'), 'umlaut');
    fs.writeFileSync(at(Buffer.from([0x61, 0xff, 0x62])), 'not UTF-8');
    fs.writeFileSync(at('ab'), '');
    fs.mkdirSync(at('sub'));
    fs.symlinkSync('b', at('link'));
    fs.linkSync(at('b'), at('hard'));
    execFileSync('mkfifo', [at('fifo').toString()]);
    // A sparse file: blocks below its size.
    fs.truncateSync(at('ab'), 1 << 20);
    fs.utimesSync(at('B'), new Date('2001-02-03T04:05:06.789Z'), new Date('1999-12-31T23:59:59.123Z'));
  });
  after(() => tmp.cleanup());

  test('lists what readdir lists, sorted by name bytes as Buffer.compare sorts', () => {
    const expected = fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
    const names = listDirectory(dir).map((e) => e.name);
    assert.deepEqual(names, expected);
    assert.equal(names.length, 9);
    // Unsigned bytes: upper case before lower, 0xff after every ASCII byte.
    assert.deepEqual(names.slice(0, 3).map(String), ['B', 'ab', 'a\ufffdb']);
  });

  test("gives each entry exactly lstat's fields", () => {
    for (const e of listDirectory(dir)) {
      assert.equal(e.error, undefined);
      const full = Buffer.concat([dir, Buffer.from('/'), e.name]);
      assert.deepEqual(e.stat, entryStat(fs.lstatSync(full, { bigint: true })), e.name.toString());
    }
  });

  test('fails as readdir fails: missing directory, a file', () => {
    assert.throws(() => listDirectory(Buffer.from(path.join(tmp.dir, 'missing'))), { code: 'ENOENT' });
    assert.throws(() => listDirectory(Buffer.from(path.join(tmp.dir, 'b'))), { code: 'ENOTDIR' });
  });
});
