import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertCleanError, backupSnapshotId, cliEnv, scrate } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

interface Shown {
  id: string;
  hostname: string;
  paths: string[];
  tags: string[];
}
interface Group {
  group_key: { hostname: string; paths: string[] | null; tags: string[] | null };
  snapshots: Shown[];
}

/** The backups, oldest first: source, host, tags (comma-separated or none). */
const MADE = [
  ['A', 'h1', 't'],
  ['A', 'h1', ''],
  ['B', 'h1', ''],
  ['A', 'h2', 't'],
  ['A', 'h1', 't'],
  ['A', 'h2', ''],
] as const;

describe('scrate snapshots --latest and --group-by', () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  const ids: string[] = [];
  const src: Record<string, string> = {};
  const json = <T>(...args: string[]) => {
    const r = scrate(['snapshots', '--json', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  /** Indexes into MADE of what was shown. */
  const made = (list: Shown[]) => list.map((s) => ids.indexOf(s.id));

  before(() => {
    tmp = scratch('snapshots');
    env = cliEnv(path.join(tmp.dir, 'repo'), { TZ: 'UTC' });
    for (const name of ['A', 'B']) {
      src[name] = path.join(tmp.dir, name);
      fs.mkdirSync(src[name]!);
      fs.writeFileSync(path.join(src[name]!, 'f'), name);
    }
    assert.equal(scrate(['init'], env).code, 0);
    for (const [i, [source, host, tags]] of MADE.entries()) {
      const r = scrate(['backup', '--json', '--host', host, '--time', `2021-01-0${i + 1} 10:00:00`, ...(tags ? ['--tag', tags] : []), src[source]!], env);
      assert.equal(r.code, 0, r.stderr);
      ids.push(backupSnapshotId(r.stdout));
    }
  });
  after(() => tmp.cleanup());

  test('without --group-by: the list as before; --latest n keeps the newest n of each host and paths, oldest first', () => {
    assert.deepEqual(made(json<Shown[]>()), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(made(json<Shown[]>('--latest', '1')), [2, 4, 5]);
    assert.deepEqual(made(json<Shown[]>('--latest', '2')), [1, 2, 3, 4, 5]);
    assert.deepEqual(made(json<Shown[]>('--latest', '1', '--host', 'h1')), [2, 4]);
    const plain = scrate(['snapshots', '--latest', '1'], env).stdout.split('\n');
    assert.deepEqual(plain.slice(2, -2).map((l) => l.slice(0, 8)), [2, 4, 5].map((i) => ids[i]!.slice(0, 8)));
    assert.equal(plain.at(-2), '3 snapshots');
  });

  test('--group-by: restic\'s groups, keyed by what divides them; --latest n per group', () => {
    const groups = json<Group[]>('--group-by', 'host');
    assert.deepEqual(
      groups.map((g) => [g.group_key, made(g.snapshots)]),
      [
        [{ hostname: 'h1', paths: null, tags: null }, [0, 1, 2, 4]],
        [{ hostname: 'h2', paths: null, tags: null }, [3, 5]],
      ],
    );
    // Each group: the snapshots MADE has with that host, paths and tags, the newest of them.
    const all = json<Group[]>('-g', 'host,paths,tags', '--latest', '1');
    const expected = new Map<string, number[]>();
    for (const [i, [source, host, tags]] of MADE.entries()) expected.set(JSON.stringify({ hostname: host, paths: [src[source]], tags: tags ? [tags] : null }), [i]);
    assert.deepEqual(new Map(all.map((g) => [JSON.stringify(g.group_key), made(g.snapshots)])), expected);
    assert.equal(all.length, 5);
    const byTags = json<Group[]>('-g', 'tags', '--latest', '2');
    assert.deepEqual(new Map(byTags.map((g) => [JSON.stringify(g.group_key), made(g.snapshots)])), new Map([[JSON.stringify({ hostname: '', paths: null, tags: ['t'] }), [3, 4]], [JSON.stringify({ hostname: '', paths: null, tags: null }), [2, 5]]]));
  });

  test('--group-by plain: a heading per group, its table and count', () => {
    const r = scrate(['snapshots', '-g', 'host,paths', '--host', 'h1'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const headings = lines.filter((l) => l.startsWith('snapshots for'));
    assert.deepEqual(headings.sort(), [`snapshots for (host [h1], paths [${src['A']}]):`, `snapshots for (host [h1], paths [${src['B']}]):`]);
    const groupA = lines.slice(lines.indexOf(headings.find((h) => h.includes(src['A']!))!));
    assert.deepEqual(groupA.slice(3, 6).map((l) => l.slice(0, 8)), [0, 1, 4].map((i) => ids[i]!.slice(0, 8)));
    assert.equal(groupA[6], '3 snapshots');
    assert.ok(lines.includes('1 snapshot'));
  });

  test('a grouping restic does not know: one line, exit 1', () => {
    assertCleanError(scrate(['snapshots', '-g', 'user'], env), 1, /unknown grouping option: 'user'/);
    assertCleanError(scrate(['snapshots', '--latest', 'two'], env), 1, /--latest/);
  });
});
