import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TreePackCache } from '../src/repository/tree-pack-cache.js';

/** A loader that counts its reads of each pack. */
function loader(sizes: Record<string, number>) {
  const reads: string[] = [];
  return {
    reads,
    load: (id: string) => async () => {
      reads.push(id);
      await new Promise((r) => setImmediate(r));
      if (!(id in sizes)) throw new Error(`no pack ${id}`);
      return Buffer.alloc(sizes[id]!);
    },
  };
}

describe('TreePackCache', () => {
  test('reads a pack once however many ask, at once or later', async () => {
    const cache = new TreePackCache(1000);
    const { reads, load } = loader({ a: 100 });
    const [x, y] = await Promise.all([cache.get('a', load('a')), cache.get('a', load('a'))]);
    assert.equal(x, y);
    await cache.get('a', load('a'));
    assert.deepEqual(reads, ['a']);
  });

  test('keeps to its budget, dropping the least recently used pack', async () => {
    const cache = new TreePackCache(250);
    const { reads, load } = loader({ a: 100, b: 100, c: 100 });
    await cache.get('a', load('a'));
    await cache.get('b', load('b'));
    await cache.get('a', load('a')); // a is now more recent than b
    await cache.get('c', load('c')); // over budget: b goes
    await cache.get('a', load('a'));
    await cache.get('b', load('b'));
    assert.deepEqual(reads, ['a', 'b', 'c', 'b']);
  });

  test('a pack larger than the budget is still served, then replaced', async () => {
    const cache = new TreePackCache(50);
    const { reads, load } = loader({ big: 100, other: 10 });
    assert.equal((await cache.get('big', load('big'))).length, 100);
    await cache.get('other', load('other'));
    await cache.get('big', load('big'));
    assert.deepEqual(reads, ['big', 'other', 'big']);
  });

  test('a failed read and a dropped pack are read again', async () => {
    const cache = new TreePackCache(1000);
    const { reads, load } = loader({ a: 10 });
    await assert.rejects(cache.get('gone', load('gone')), /no pack gone/);
    await assert.rejects(cache.get('gone', load('gone')), /no pack gone/);
    await cache.get('a', load('a'));
    cache.drop('a');
    await cache.get('a', load('a'));
    assert.deepEqual(reads, ['gone', 'gone', 'a', 'a']);
  });
});
