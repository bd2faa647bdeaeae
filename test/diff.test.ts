import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { BlobType } from '../src/repository/pack.js';
import type { BlobReader } from '../src/repository/repository.js';
import { findSnapshot } from '../src/snapshot/snapshot.js';
import { findNode, walkTree } from '../src/tree/walk.js';
import { assertCleanError, backupSnapshotId, cliEnv, jsonLines, scrate } from './helpers/cli.js';
import { RawTrees } from './helpers/raw-tree.js';
import { openRepo, scratch } from './helpers/repo.js';

const PASSWORD = 'cli test password';
const FIXED = new Date('2026-01-02T03:04:05Z');

/** Writes files (content given) and makes directories (content null), each with a fixed mtime. */
function write(root: string, files: Record<string, string | null>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (content === null) fs.mkdirSync(p, { recursive: true });
    else fs.writeFileSync(p, content);
    fs.utimesSync(p, FIXED, FIXED);
  }
}

/** Every blob (type letter and hex ID) a tree refers to, the tree itself included: the brute-force answer the diff's skipping must give. */
async function allBlobs(reader: BlobReader, tree: Buffer): Promise<Set<string>> {
  const out = new Set([`t${tree.toString('hex')}`]);
  for await (const { node } of walkTree(reader, tree)) {
    for (const id of node.content ?? []) out.add(`d${id.toString('hex')}`);
    if (node.subtree) out.add(`t${node.subtree.toString('hex')}`);
  }
  return out;
}

function resticMissing(t: TestContext): boolean {
  if (spawnSync('restic', ['version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env['CI']) assert.fail('restic is not installed (CI must compare against it)');
  t.skip('restic is not installed');
  return true;
}

describe('scrate diff', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let src: string;
  let env: NodeJS.ProcessEnv;
  let resticEnv: NodeJS.ProcessEnv;
  let resticRan = false;
  const ids: string[] = [];
  const resticIds: string[] = [];
  const BAD = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff])]);
  const NEWLINE = 'new\nline';

  /** One backup by scrate, and by restic when it is installed (for the comparison). */
  function backup(): void {
    ids.push(backupSnapshotId(scrate(['backup', src, '--json'], env).stdout));
    if (!resticRan) return;
    const r = spawnSync('restic', ['backup', '-q', '--json', '.'], { cwd: src, env: resticEnv, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    resticIds.push((JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { snapshot_id: string }).snapshot_id);
  }

  before(() => {
    tmp = scratch('diff');
    repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    env = cliEnv(repo);
    const resticRepo = scratch('diff-restic');
    resticEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], RESTIC_REPOSITORY: path.join(resticRepo.dir, 'repo'), RESTIC_PASSWORD: 'x', RESTIC_CACHE_DIR: path.join(resticRepo.dir, 'cache') };
    const cleanup = tmp.cleanup;
    tmp.cleanup = () => {
      cleanup();
      resticRepo.cleanup();
    };
    resticRan = spawnSync('restic', ['init', '-q'], { env: resticEnv, stdio: 'ignore' }).status === 0;
    assert.equal(scrate(['init'], env).code, 0);
    write(src, {
      'keep/a.txt': 'kept a\n',
      'keep/deep/b.txt': 'kept b\n',
      'mod.txt': 'one\n',
      'meta.txt': 'metadata only\n',
      'gone/x.txt': 'gone x\n',
      'gone/sub/y.txt': 'gone y!\n',
      f2d: 'file to be a directory\n',
      'd2f/z.txt': 'in a directory to be a file\n',
      f2l: 'file to be a link\n',
      [NEWLINE]: 'old line\n',
    });
    backup();
    // The second state.
    fs.writeFileSync(path.join(src, 'mod.txt'), 'two!\n');
    fs.chmodSync(path.join(src, 'meta.txt'), 0o600);
    fs.rmSync(path.join(src, 'gone'), { recursive: true });
    fs.rmSync(path.join(src, 'f2d'));
    fs.rmSync(path.join(src, 'd2f'), { recursive: true });
    fs.rmSync(path.join(src, 'f2l'));
    fs.symlinkSync('mod.txt', path.join(src, 'f2l'));
    write(src, { 'f2d/inner.txt': 'inner\n', d2f: 'now a file\n', 'new/n1.txt': 'new one\n', 'new/sub/n2.txt': 'new two\n', [NEWLINE]: 'new line!\n' });
    fs.writeFileSync(Buffer.concat([Buffer.from(src + '/'), BAD]), 'bad name\n');
    backup();
  });
  after(() => tmp.cleanup());

  /** What changed below src, as this test made it; a T directory's contents are listed (restic lists only the T). */
  const expected = [
    '+    "/bad\\xff"',
    'T    /d2f',
    '-    /d2f/z.txt',
    'T    /f2d/',
    '+    /f2d/inner.txt',
    'T    /f2l',
    '-    /gone/',
    '-    /gone/sub/',
    '-    /gone/sub/y.txt',
    '-    /gone/x.txt',
    'M    /mod.txt',
    '+    /new/',
    '+    /new/n1.txt',
    '+    /new/sub/',
    '+    /new/sub/n2.txt',
    'M    "/new\\nline"',
  ];
  const newData = ['bad name\n', 'inner\n', 'now a file\n', 'new one\n', 'new two\n', 'two!\n', 'new line!\n'];
  const removedData = ['file to be a directory\n', 'in a directory to be a file\n', 'gone x\n', 'gone y!\n', 'one\n', 'file to be a link\n', 'old line\n'];
  const bytes = (list: string[]) => list.reduce((n, s) => n + Buffer.byteLength(s), 0);

  test('lists what was added, removed, modified and retyped, subtrees recursively, names quoted, and restic\'s summary', () => {
    const r = scrate(['diff', `${ids[0]!.slice(0, 8)}:${src}`, `${ids[1]}:${src}`], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `comparing snapshot ${ids[0]!.slice(0, 8)} to ${ids[1]!.slice(0, 8)}:`);
    assert.equal(lines[1], '');
    assert.deepEqual(lines.slice(2, 2 + expected.length), expected);
    const summary = lines.slice(2 + expected.length);
    assert.deepEqual(summary.slice(0, 6), [
      '',
      'Files:           4 new,     3 removed,     2 changed',
      'Dirs:            2 new,     2 removed',
      'Others:          0 new,     0 removed',
      // Each file is one chunk; the trees: src, f2d, new, new/sub against src, d2f, gone, gone/sub.
      `Data Blobs:      ${newData.length} new,     ${removedData.length} removed`,
      'Tree Blobs:      4 new,     4 removed',
    ]);
    assert.match(summary[6]!, /^ {2}Added: {3}\d/);
  });

  test('--metadata adds the entries whose metadata alone changed, and U to the retyped ones', () => {
    const r = scrate(['diff', '--metadata', `${ids[0]}:${src}`, `${ids[1]}:${src}`], env);
    assert.equal(r.code, 0, r.stderr);
    const withU = expected.map((l) => (l.startsWith('T ') ? l.replace('T   ', 'TU  ') : l));
    withU.splice(withU.indexOf('M    /mod.txt'), 0, 'U    /meta.txt');
    assert.deepEqual(r.stdout.split('\n').slice(2, 2 + withU.length), withU);
    assert.equal(r.stdout.split('\n')[2 + withU.length], '');
  });

  test('--json: restic\'s change and statistics messages; sizes from the index are the brute-force answer', async () => {
    const r = scrate(['diff', '--json', `${ids[0]!.slice(0, 10)}:${src}`, `${ids[1]}:${src}`], env);
    assert.equal(r.code, 0, r.stderr);
    const messages = jsonLines(r.stdout);
    const changes = messages.slice(0, -1);
    assert.ok(changes.every((c) => c['message_type'] === 'change' && Object.keys(c).length === 3));
    assert.deepEqual(changes.map((c) => `${c['modifier']} ${c['path']}`), expected.map((l) => l.replace(/ +/, ' ').replace('"/bad\\xff"', '/bad\\xff').replace('"/new\\nline"', '/new\nline')));
    const stats = messages.at(-1)! as { message_type: string; source_snapshot: string; target_snapshot: string; changed_files: number; added: Record<string, number>; removed: Record<string, number> };
    assert.equal(stats.message_type, 'statistics');
    assert.equal(stats.source_snapshot, `${ids[0]!.slice(0, 10)}:${src}`);
    assert.equal(stats.changed_files, 2);

    // The blobs only one side has, by walking both sides whole: the diff skipped `keep` and must agree.
    const opened = await openRepo(repo, PASSWORD);
    const side = async (id: string) => {
      const { snapshot, writer } = await findSnapshot(opened, id);
      const reader = opened.reader(writer);
      return { reader, blobs: await allBlobs(reader, (await findNode(reader, Buffer.from(snapshot.tree, 'hex'), src))!.subtree!) };
    };
    const [a, b] = [await side(ids[0]!), await side(ids[1]!)];
    const only = (x: Set<string>, y: Set<string>, reader: BlobReader) => {
      const keys = [...x].filter((k) => !y.has(k));
      const size = (k: string) => reader.find(k[0] === 't' ? BlobType.tree : BlobType.data, Buffer.from(k.slice(1), 'hex'))!.rawLength;
      const treeBytes = keys.filter((k) => k[0] === 't').reduce((n, k) => n + size(k), 0);
      return { data: keys.filter((k) => k[0] === 'd').length, trees: keys.filter((k) => k[0] === 't').length, treeBytes };
    };
    const added = only(b.blobs, a.blobs, b.reader);
    const removed = only(a.blobs, b.blobs, a.reader);
    assert.deepEqual(stats.added, { files: 4, dirs: 2, others: 0, data_blobs: added.data, tree_blobs: added.trees, bytes: bytes(newData) + added.treeBytes });
    assert.deepEqual(stats.removed, { files: 3, dirs: 2, others: 0, data_blobs: removed.data, tree_blobs: removed.trees, bytes: bytes(removedData) + removed.treeBytes });
    assert.deepEqual([added.data, removed.data], [newData.length, removedData.length]);
  });

  test('whole snapshots: the same changes under the source\'s path; a snapshot against itself has none', () => {
    const r = scrate(['diff', ids[0]!, ids[1]!], env);
    assert.equal(r.code, 0, r.stderr);
    const quoted = (l: string) => l.replace(/^(\S+ +)("?)\//, (_, m: string, q: string) => `${m}${q}${src}/`);
    assert.deepEqual(r.stdout.split('\n').slice(2, 2 + expected.length), expected.map(quoted));
    const same = scrate(['diff', ids[1]!, 'latest'], env);
    assert.equal(same.code, 0, same.stderr);
    assert.deepEqual(same.stdout.split('\n').slice(1, 9), ['', '', 'Files:           0 new,     0 removed,     0 changed', 'Dirs:            0 new,     0 removed', 'Others:          0 new,     0 removed', 'Data Blobs:      0 new,     0 removed', 'Tree Blobs:      0 new,     0 removed', '  Added:   0 B']);
  });

  test('restic on the same trees lists the same changes (but for the contents of retyped directories)', (t) => {
    if (resticMissing(t)) return;
    assert.equal(resticIds.length, 2, 'restic backed up both states');
    const r = spawnSync('restic', ['diff', '--json', resticIds[0]!, resticIds[1]!], { env: resticEnv, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const theirs = jsonLines(r.stdout).filter((m) => m['message_type'] === 'change' && !String(m['path']).startsWith('/bad'));
    const ours = jsonLines(scrate(['diff', '--json', `${ids[0]}:${src}`, `${ids[1]}:${src}`], env).stdout).filter((m) => m['message_type'] === 'change' && !String(m['path']).startsWith('/bad'));
    const retyped = ours.filter((m) => m['modifier'] === 'T' && String(m['path']).endsWith('/')).map((m) => String(m['path']));
    const removedDir = ['/d2f/'];
    const inside = (p: unknown) => [...retyped, ...removedDir].some((d) => String(p).startsWith(d) && p !== d);
    assert.ok(theirs.length >= 10, r.stdout);
    assert.deepEqual(ours.filter((m) => !inside(m['path'])), theirs);
  });

  test('bad snapshot IDs and a subfolder that is a file are one-line errors', () => {
    assertCleanError(scrate(['diff', 'ffffffff', ids[1]!], env), 1, /no snapshot ffffffff/);
    assertCleanError(scrate(['diff', ids[0]!, `${ids[1]}:${src}/mod.txt`], env), 1, /is not a directory/);
    assertCleanError(scrate(['diff', ids[0]!, `${ids[1]}:${src}/nothing`], env), 1, /not in the snapshot/);
  });
});

describe('scrate diff across writers', () => {
  let tmp: ReturnType<typeof scratch>;
  let fullEnv: NodeJS.ProcessEnv;
  let hostEnv: NodeJS.ProcessEnv;
  let src: string;
  const HOST = 'diff-writer-host';

  before(() => {
    tmp = scratch('diff-writers');
    const repo = path.join(tmp.dir, 'repo');
    src = path.join(tmp.dir, 'src');
    fullEnv = cliEnv(repo, { XDG_CACHE_HOME: path.join(tmp.dir, 'cache-full') });
    hostEnv = cliEnv(repo, { SCRATE_PASSWORD: 'host password', XDG_CACHE_HOME: path.join(tmp.dir, 'cache-host') });
    write(src, { 'a.txt': 'same a\n', 'b.txt': 'same b\n', 'dir/c.txt': 'same c\n' });
    assert.equal(scrate(['init'], fullEnv).code, 0);
    fs.writeFileSync(path.join(tmp.dir, 'wo.pass'), 'host password\n');
    assert.equal(scrate(['key', 'add', '--write-only', '--host', HOST, '--new-password-file', path.join(tmp.dir, 'wo.pass')], fullEnv).code, 0);
  });
  after(() => tmp.cleanup());

  test('equal files count as unchanged by size and mtime, yet every blob of each writer is its own', () => {
    const full = backupSnapshotId(scrate(['backup', '--host', HOST, src, '--json'], fullEnv).stdout);
    const host = backupSnapshotId(scrate(['backup', '--host', HOST, src, '--json'], hostEnv).stdout);
    const r = scrate(['diff', '--json', `${full}:${src}`, `${host}:${src}`], fullEnv);
    assert.equal(r.code, 0, r.stderr);
    const messages = jsonLines(r.stdout);
    assert.equal(messages.length, 1, r.stdout);
    const stats = messages[0] as { added: Record<string, number>; removed: Record<string, number>; changed_files: number };
    assert.equal(stats.changed_files, 0);
    // Three contents and two trees (src, dir) on each side, none shared.
    assert.deepEqual([stats.added['data_blobs'], stats.added['tree_blobs'], stats.removed['data_blobs'], stats.removed['tree_blobs']], [3, 2, 3, 2]);

    write(src, { 'b.txt': 'changed b, longer\n' });
    const host2 = backupSnapshotId(scrate(['backup', '--host', HOST, src, '--json'], hostEnv).stdout);
    const d = scrate(['diff', `${full}:${src}`, `${host2}:${src}`], fullEnv);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(d.stdout.split('\n').slice(2, 4), ['M    /b.txt', '']);
  });

  test('a write-only key may neither diff nor find', () => {
    assertCleanError(scrate(['diff', 'latest', 'latest'], hostEnv), 1, /write-only/);
    assertCleanError(scrate(['find', 'a.txt'], hostEnv), 1, /write-only/);
  });
});

describe('scrate diff of hand-made trees', () => {
  let tmp: ReturnType<typeof scratch>;
  let env: NodeJS.ProcessEnv;
  let repo: string;

  before(() => {
    tmp = scratch('diff-raw');
    repo = path.join(tmp.dir, 'repo');
    env = cliEnv(repo);
    assert.equal(scrate(['init'], env).code, 0);
  });
  after(() => tmp.cleanup());

  test('content changed with all metadata equal is M?; a blob still in an unchanged directory is not removed', async () => {
    const raw = new RawTrees(await openRepo(repo, PASSWORD));
    const same = await raw.dir('same', [await raw.file('x', 'moved content')]);
    const before = [await raw.file('moved', 'moved content'), await raw.file('rot', 'one'), same];
    const after = [await raw.file('rot', 'two'), same];
    const a = await raw.snapshot(before);
    const b = await raw.snapshot(after);
    const r = scrate(['diff', a.id, b.id], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(2, 10), [
      '-    /moved',
      'M?   /rot',
      '',
      'Files:           0 new,     1 removed,     1 changed',
      'Dirs:            0 new,     0 removed',
      'Others:          0 new,     0 removed',
      'Data Blobs:      1 new,     1 removed',
      'Tree Blobs:      1 new,     1 removed',
    ]);
    // The bytes: the new (old) content of rot and the new (old) root tree, as RawTrees saved it.
    const stats = jsonLines(scrate(['diff', '--json', a.id, b.id], env).stdout).at(-1) as { added: { bytes: number }; removed: { bytes: number } };
    const treeBytes = (nodes: unknown[]) => Buffer.byteLength(JSON.stringify({ nodes }));
    assert.deepEqual([stats.added.bytes, stats.removed.bytes], [3 + treeBytes(after), 3 + treeBytes(before)]);

    // A directory without a tree, which only a hand-made tree has, is an empty one.
    const c = await raw.snapshot([...after, raw.node('treeless', { type: 'dir', mode: 0o755 })]);
    const d = scrate(['diff', b.id, c.id], env);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(d.stdout.split('\n').slice(2, 5), ['+    /treeless/', '', 'Files:           0 new,     0 removed,     0 changed']);
    const back = scrate(['diff', '--metadata', c.id, b.id], env);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout.split('\n')[2], '-    /treeless/');
    const f = scrate(['find', 'treeless'], env);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout.split('\n')[1], '/treeless');
  });
});
