import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { patternVisitor, TreeSearch } from '../src/browse/find.js';
import { BlobType } from '../src/repository/pack.js';
import { findSnapshot } from '../src/snapshot/snapshot.js';
import { findNode, walkTree } from '../src/tree/walk.js';
import { assertCleanError, backupSnapshotId, cliEnv, scrate } from './helpers/cli.js';
import { flipByte, openRepo, scratch } from './helpers/repo.js';

const PASSWORD = 'cli test password';
const FIXED = new Date('2026-01-02T03:04:05Z');
const OLD = new Date('2020-01-01T00:00:00Z');
const ODD = 'odd\nname.conf';
const TIME = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d';

function write(root: string, rel: string, content: string, mtime = FIXED): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  fs.utimesSync(p, mtime, mtime);
}

function resticMissing(t: TestContext): boolean {
  if (spawnSync('restic', ['version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env['CI']) assert.fail('restic is not installed (CI must compare against it)');
  t.skip('restic is not installed');
  return true;
}

/** The count `find -v` reports. */
function treesRead(stderr: string): number {
  const m = /^(\d+) trees read$/m.exec(stderr);
  assert.ok(m, stderr);
  return Number(m[1]);
}

describe('scrate find', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  /** Oldest first: two snapshots of the same files (the second tagged t2), then one of host h3 with d3/s changed. */
  const ids: string[] = [];
  let resticEnv: NodeJS.ProcessEnv | undefined;
  /** Components of src's path: the trees from the root down to src's are one more. */
  let depth: number;

  before(() => {
    tmp = scratch('find');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    depth = src.split('/').filter(Boolean).length;
    env = cliEnv(repo);
    for (let i = 0; i < 5; i++) {
      write(src, `d${i}/app${i}.conf`, `app ${i} config\n`, i === 1 ? OLD : FIXED);
      write(src, `d${i}/s/note${i}.txt`, `note ${i}\n`);
    }
    write(src, 'top.conf', 'top\n');
    write(src, 'README', 'read me\n');
    write(src, ODD, 'odd\n');
    assert.equal(scrate(['init'], env).code, 0);
    ids.push(backupSnapshotId(scrate(['backup', src, '--json'], env).stdout));
    ids.push(backupSnapshotId(scrate(['backup', '--tag', 't2', src, '--json'], env).stdout));
    if (spawnSync('restic', ['version'], { stdio: 'ignore' }).status === 0) {
      resticEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], RESTIC_REPOSITORY: path.join(tmp.dir, 'restic'), RESTIC_PASSWORD: 'x', RESTIC_CACHE_DIR: path.join(tmp.dir, 'restic-cache') };
      assert.equal(spawnSync('restic', ['init', '-q'], { env: resticEnv }).status, 0);
      assert.equal(spawnSync('restic', ['backup', '-q', src], { env: resticEnv }).status, 0);
    }
    write(src, 'd3/s/note3.txt', 'note 3, changed\n');
    write(src, 'd3/s/new.conf', 'new\n');
    ids.push(backupSnapshotId(scrate(['backup', '--host', 'h3', src, '--json'], env).stdout));
  });
  after(() => tmp.cleanup());

  const confs = (withNew: boolean) => [
    ...[0, 1, 2, 3, 4].flatMap((i) => [`${src}/d${i}/app${i}.conf`, ...(withNew && i === 3 ? [`${src}/d3/s/new.conf`] : [])]),
    `"${src}/odd\\nname.conf"`,
    `${src}/top.conf`,
  ];

  test('a name pattern: matches grouped by snapshot, newest first, names quoted', () => {
    const r = scrate(['find', '*.conf'], env);
    assert.equal(r.code, 0, r.stderr);
    const groups = r.stdout.trimEnd().split('\n\n').map((g) => g.split('\n'));
    assert.equal(groups.length, 3);
    for (const [n, g] of groups.entries()) {
      const id = ids[2 - n]!;
      assert.match(g[0]!, new RegExp(`^Found matching entries in snapshot ${id.slice(0, 8)} from ${TIME}$`));
      assert.deepEqual(g.slice(1), confs(n === 0));
    }
    const reversed = scrate(['find', '-R', '*.conf'], env).stdout;
    assert.ok(reversed.startsWith(`Found matching entries in snapshot ${ids[0]!.slice(0, 8)}`), reversed);
  });

  test('trees shared between snapshots are read once', () => {
    // One snapshot: the root down to src, then d0..d4 and their s.
    const one = scrate(['find', '-v', '-s', ids[0]!, '*.conf'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(treesRead(one.stderr), depth + 1 + 10);
    // The root of the second may differ from the first's by /tmp's own times; nothing below it does.
    const roots = new Set(ids.slice(0, 2).map((id) => JSON.parse(scrate(['cat', 'snapshot', id], env).stdout).tree as string));
    const all = scrate(['find', '-v', '*.conf'], env);
    assert.equal(all.code, 0, all.stderr);
    // The third snapshot changed d3/s: the trees from the root down to it are new, the rest is shared.
    assert.equal(treesRead(all.stderr), depth + 1 + 10 + (depth + 3) + (roots.size - 1));
  });

  test('a pattern anchored at the root: directories nothing can match below are not read', () => {
    const none = scrate(['find', '-v', '-s', ids[2]!, '/nowhere/*'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '');
    assert.equal(treesRead(none.stderr), 1);
    const d1 = scrate(['find', '-v', '-s', ids[2]!, `${src}/d1/*`], env);
    assert.equal(d1.code, 0, d1.stderr);
    // What a pattern matches, everything below it matches too (restic's rule).
    assert.deepEqual(d1.stdout.trimEnd().split('\n').slice(1), [`${src}/d1/app1.conf`, `${src}/d1/s`, `${src}/d1/s/note1.txt`]);
    assert.equal(treesRead(d1.stderr), depth + 1 + 2);
  });

  test('-i ignores case; --long shows mode, owner, size and time; --oldest and --newest', () => {
    assert.equal(scrate(['find', '-s', ids[0]!, 'readme'], env).stdout, '');
    const i = scrate(['find', '-i', '-s', ids[0]!, 'readme'], env);
    assert.deepEqual(i.stdout.split('\n').slice(1), [`${src}/README`, '']);
    const long = scrate(['find', '-l', '-s', ids[0]!, 'top.conf'], env).stdout.split('\n')[1]!;
    const uid = process.getuid!();
    const gid = process.getgid!();
    assert.match(long, new RegExp(`^-rw-r--r-- ${String(uid).padStart(5)} ${String(gid).padStart(5)}      4 ${TIME} ${src}/top.conf$`));
    const newest = scrate(['find', '-s', ids[0]!, '--newest', '2021-01-01', '*.conf'], env);
    assert.deepEqual(newest.stdout.split('\n').slice(1), [`${src}/d1/app1.conf`, '']);
    const oldest = scrate(['find', '-s', ids[0]!, '--oldest', '2021-01-01 00:00', '*.conf'], env);
    assert.deepEqual(oldest.stdout.split('\n').slice(1, -1), confs(false).filter((p) => !p.includes('app1')));
    assertCleanError(scrate(['find', '--oldest', '2026-01-01', '--newest', '2025-01-01', 'x'], env), 1, /--oldest must be a time before --newest/);
  });

  test('--host, --tag and --snapshot choose the snapshots searched', () => {
    const headers = (args: string[]) =>
      scrate(['find', ...args, 'top.conf'], env)
        .stdout.split('\n')
        .filter((l) => l.startsWith('Found'))
        .map((l) => l.split(' ')[5]);
    assert.deepEqual(headers(['--host', 'h3']), [ids[2]!.slice(0, 8)]);
    assert.deepEqual(headers(['--tag', 't2']), [ids[1]!.slice(0, 8)]);
    assert.deepEqual(headers(['-s', ids[0]!.slice(0, 6), '--snapshot', 'latest']), [ids[2]!.slice(0, 8), ids[0]!.slice(0, 8)]);
  });

  test('--json: restic\'s array of {matches, hits, snapshot}', () => {
    const r = scrate(['find', '--json', '*.conf', 'README'], env);
    assert.equal(r.code, 0, r.stderr);
    const groups = JSON.parse(r.stdout) as { matches: Record<string, unknown>[]; hits: number; snapshot: string }[];
    assert.deepEqual(groups.map((g) => g.snapshot), [...ids].reverse());
    assert.deepEqual(groups.map((g) => g.hits), [9, 8, 8]);
    const paths = groups[2]!.matches.map((m) => m['path']);
    assert.deepEqual(paths, [`${src}/README`, ...confs(false).map((p) => p.replace(`"${src}/odd\\nname.conf"`, `${src}/${ODD}`))]);
    const top = groups[2]!.matches.at(-1)!;
    assert.deepEqual([top['type'], top['permissions'], top['mode'], top['size'], top['uid']], ['file', '-rw-r--r--', 0o644, 4, process.getuid!()]);
    assert.equal(Date.parse(String(top['mtime'])), FIXED.getTime());
    assert.equal(top['name'], undefined);
    assert.equal(scrate(['find', '--json', 'nothing-at-all'], env).stdout, '[]\n');
  });

  test('restic finds the same paths for the same patterns', (t) => {
    if (resticMissing(t)) return;
    for (const pattern of ['*.conf', 'd1', 's', `${src}/d1/*`, '**/s/*.txt', 'd?/s', '/nowhere']) {
      const paths = (stdout: string) => (JSON.parse(stdout) as { matches: { path: string }[] }[]).flatMap((g) => g.matches.map((m) => m.path));
      const theirs = spawnSync('restic', ['find', '--json', pattern], { env: resticEnv, encoding: 'utf8' });
      assert.equal(theirs.status, 0, theirs.stderr);
      const ours = scrate(['find', '--json', '-s', ids[0]!, pattern], env);
      assert.equal(ours.code, 0, ours.stderr);
      assert.deepEqual(paths(ours.stdout), paths(theirs.stdout), pattern);
    }
  });

  test('--blob, --tree and --pack: the snapshots and files that use them', async () => {
    const opened = await openRepo(repo, PASSWORD);
    const { snapshot, writer } = await findSnapshot(opened, ids[0]!);
    const reader = opened.reader(writer);
    const root = Buffer.from(snapshot.tree, 'hex');
    const file = (await findNode(reader, root, `${src}/d2/app2.conf`))!;
    const dir = (await findNode(reader, root, `${src}/d2`))!;
    const blob = file.content![0]!.toString('hex');
    const tree = dir.subtree!.toString('hex');

    const b = scrate(['find', '--blob', blob.slice(0, 12)], env);
    assert.equal(b.code, 0, b.stderr);
    const blobLines = b.stdout.trimEnd().split('\n');
    assert.equal(blobLines.length, 4 * 3);
    for (const [n, id] of [...ids].reverse().entries()) {
      const [found, inFile, inTree, inSnapshot] = blobLines.slice(4 * n, 4 * n + 4);
      assert.deepEqual([found, inFile, inTree], [`Found blob ${blob}`, ` ... in file ${src}/d2/app2.conf`, `     (tree ${tree})`]);
      assert.match(inSnapshot!, new RegExp(`^ \\.\\.\\. in snapshot ${id.slice(0, 8)} \\(${TIME}\\)$`));
    }

    assert.equal(scrate(['find', '--blob', blob.toUpperCase()], env).stdout, b.stdout);

    const tr = scrate(['find', '--tree', tree, '--json'], env);
    assert.equal(tr.code, 0, tr.stderr);
    const objects = JSON.parse(tr.stdout) as Record<string, unknown>[];
    assert.deepEqual(objects.map((o) => [o['object_type'], o['id'], o['path'], o['parent_tree'], o['snapshot']]), [...ids].reverse().map((id) => ['tree', tree, `${src}/d2`, undefined, id]));
    const rootFound = scrate(['find', '--tree', snapshot.tree, '-s', ids[0]!], env).stdout.split('\n');
    assert.deepEqual(rootFound.slice(0, 2), [`Found tree ${snapshot.tree}`, ' ... path /']);

    // A pack of the first backup: every blob in it is one of its files' (each file is one blob).
    const pack = reader.find(BlobType.data, file.content![0]!)!.pack.id.toString('hex');
    const inPack = new Set<string>();
    for (let n = 0; n < opened.index.size; n++) {
      const e = opened.index.entry(n);
      if (opened.index.packs[e.pack]!.id.toString('hex') === pack) inPack.add(e.id.toString('hex'));
    }
    const p = scrate(['find', '--pack', pack.slice(0, 10), '--json'], env);
    assert.equal(p.code, 0, p.stderr);
    const found = new Map<string, string[]>(ids.map((id) => [id, []]));
    for (const o of JSON.parse(p.stdout) as { snapshot: string; id: string; path: string }[]) {
      assert.ok(inPack.has(o.id));
      found.get(o.snapshot)!.push(o.path);
    }
    assert.equal(found.get(ids[0]!)!.length, inPack.size);
    assert.ok(found.get(ids[0]!)!.includes(`${src}/d2/app2.conf`));
    assert.deepEqual(found.get(ids[1]!), found.get(ids[0]!));
    // The third snapshot changed note3.txt: its old blob is used no more.
    const note3 = `${src}/d3/s/note3.txt`;
    assert.deepEqual(found.get(ids[2]!), found.get(ids[0]!)!.filter((f) => f !== note3));
  });

  test('bad IDs and patterns are one-line errors', () => {
    assertCleanError(scrate(['find', '--blob', 'xyz'], env), 1, /invalid blob ID "xyz"/);
    assertCleanError(scrate(['find', '--blob', 'fffffffffff'], env), 1, /no blob fffffffffff in the index/);
    // A full ID is searched for whether the index lists it or not (`check` may have reported it lost).
    const full = scrate(['find', '--blob', 'f'.repeat(64)], env);
    assert.deepEqual([full.code, full.stdout], [0, ''], full.stderr);
    assertCleanError(scrate(['find', '--pack', '0123456789abcdef'], env), 1, /unable to find pack\(s\): 0123456789abcdef/);
    assertCleanError(scrate(['find', '--blob', '--tree', 'ab'], env), 1, /exclude each other/);
    assertCleanError(scrate(['find', '[x'], env), 1, /invalid pattern/);
    assertCleanError(scrate(['find', '-s', 'ffffffff', 'x'], env), 1, /no snapshot ffffffff/);
  });

  test('with a memo too small to keep anything, a search finds the same', async () => {
    const opened = await openRepo(repo, PASSWORD);
    const visit = patternVisitor(['*.txt', '*.conf'], { ignoreCase: false });
    const collect = async (search: TreeSearch) => {
      const out: string[] = [];
      for (const id of ids) {
        const { snapshot, writer } = await findSnapshot(opened, id);
        await search.search(opened.reader(writer), Buffer.from(snapshot.tree, 'hex'), (m) => void out.push(m.path.toString()));
      }
      return out;
    };
    const fail = () => assert.fail('no tree is unreadable');
    const roomy = new TreeSearch(visit, fail);
    const tiny = new TreeSearch(visit, fail, undefined, { entries: 1, matches: 1 });
    const expected = await collect(roomy);
    assert.deepEqual(await collect(tiny), expected);
    assert.ok(tiny.treesRead > roomy.treesRead, `${tiny.treesRead} > ${roomy.treesRead}`);
    // The brute-force answer: every entry of every snapshot, matched one by one.
    let walked = 0;
    for (const id of ids) {
      const { snapshot, writer } = await findSnapshot(opened, id);
      for await (const e of walkTree(opened.reader(writer), Buffer.from(snapshot.tree, 'hex'))) if (/\.(txt|conf)$/.test(e.node.name.toString())) walked++;
    }
    assert.equal(expected.length, walked);
  });
  // Last: it damages the repository.
  test('a tree that cannot be read: the rest is searched, a warning names it, exit 3; diff stops with one line', async () => {
    const opened = await openRepo(repo, PASSWORD);
    const { snapshot, writer } = await findSnapshot(opened, ids[2]!);
    const reader = opened.reader(writer);
    const damaged = (await findNode(reader, Buffer.from(snapshot.tree, 'hex'), `${src}/d3/s`))!.subtree!;
    const loc = reader.find(BlobType.tree, damaged)!;
    const packId = loc.pack.id.toString('hex');
    flipByte(path.join(repo, 'data', packId.slice(0, 2), packId), loc.offset + Math.floor(loc.length / 2));
    const r = scrate(['find', '*.txt'], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^warning: unable to load tree ${damaged.toString('hex').slice(0, 12)} of snapshot ${ids[2]!.slice(0, 8)}: `, 'm'));
    const groups = r.stdout.trimEnd().split('\n\n').map((g) => g.split('\n').slice(1));
    const notes = (skip: number) => [0, 1, 2, 3, 4].filter((i) => i !== skip).map((i) => `${src}/d${i}/s/note${i}.txt`);
    assert.deepEqual(groups, [notes(3), notes(-1), notes(-1)]);
    assertCleanError(scrate(['diff', ids[0]!, ids[2]!], env), 1, /blob|tree/);
  });
});
