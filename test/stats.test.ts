import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LocalBackend } from '../src/backend/local.js';
import { formatBytes } from '../src/cli/output.js';
import { BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { assertCleanError, backupSnapshotId, cliEnv, scrate } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';

/** What each mode should count for one source, worked out from the files themselves (restic's rules). */
interface SourceFacts {
  /** Nodes a restore makes: the directories above and of the source, and everything below it. */
  nodes: number;
  /** File bytes a restore writes: a hard-linked file's once. */
  restoreBytes: number;
  /** Size by content (SHA-256) of each non-empty regular file. */
  contents: Map<string, number>;
}

function factsOf(source: string): SourceFacts {
  const facts: SourceFacts = { nodes: source.split('/').filter(Boolean).length, restoreBytes: 0, contents: new Map() };
  const inodes = new Set<string>();
  const visit = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      facts.nodes++;
      if (st.isDirectory()) visit(p);
      if (!st.isFile()) continue;
      const inode = `${st.dev}:${st.ino}`;
      if (st.nlink === 1 || !inodes.has(inode)) facts.restoreBytes += st.size;
      inodes.add(inode);
      if (st.size > 0) facts.contents.set(createHash('sha256').update(fs.readFileSync(p)).digest('hex'), st.size);
    }
  };
  visit(source);
  return facts;
}

/** The blobs in the repository, as its index lists them (a full key opening it). */
async function indexedBlobs(repo: string, password: string): Promise<{ type: BlobType; length: number; rawLength: number; compressed: boolean }[]> {
  const r = await Repository.open(new LocalBackend(repo), password);
  await r.loadIndex();
  const out = [];
  for (let n = 0; n < r.index.size; n++) {
    const e = r.index.entry(n);
    out.push({ type: r.index.packs[e.pack]!.type, length: e.length, rawLength: e.rawLength, compressed: e.compressed });
  }
  return out;
}

const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);

describe('scrate stats', () => {
  let tmp: ReturnType<typeof scratch>;
  let repo: string;
  let env: NodeJS.ProcessEnv;
  let src1: string;
  let src2: string;
  const ids: string[] = [];
  const stats = (...args: string[]) => {
    const r = scrate(['stats', '--json', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, number>;
  };

  before(() => {
    tmp = scratch('stats');
    repo = path.join(tmp.dir, 'repo');
    src1 = path.join(tmp.dir, 'src1');
    src2 = path.join(tmp.dir, 'src2');
    const shared = randomBytes(100_000);
    fs.mkdirSync(path.join(src1, 'dup'), { recursive: true });
    fs.mkdirSync(path.join(src1, 'sub'));
    fs.mkdirSync(path.join(src1, 'emptydir'));
    fs.writeFileSync(path.join(src1, 'a.bin'), shared);
    fs.writeFileSync(path.join(src1, 'dup/a-copy.bin'), shared);
    fs.writeFileSync(path.join(src1, 'zeros.bin'), Buffer.alloc(300_000));
    fs.writeFileSync(path.join(src1, 'big.bin'), randomBytes(3 * 1024 * 1024));
    fs.writeFileSync(path.join(src1, 'empty.txt'), '');
    fs.symlinkSync('a.bin', path.join(src1, 'link'));
    // Hard links across directories: one file to restore.
    fs.writeFileSync(path.join(src1, 'hard1.bin'), randomBytes(50_000));
    fs.linkSync(path.join(src1, 'hard1.bin'), path.join(src1, 'sub/hard2.bin'));
    fs.mkdirSync(src2);
    fs.writeFileSync(path.join(src2, 'c.bin'), randomBytes(70_000));
    fs.writeFileSync(path.join(src2, 'a.bin'), shared);
    fs.writeFileSync(path.join(src2, 'h.bin'), randomBytes(20_000));
    fs.linkSync(path.join(src2, 'h.bin'), path.join(src2, 'h2.bin'));
    env = cliEnv(repo);
    assert.equal(scrate(['init'], env).code, 0);
    for (const [src, host] of [[src1, 'h1'], [src2, 'h2'], [src1, 'h1']] as const) {
      const r = scrate(['backup', '--json', '--host', host, src], env);
      assert.equal(r.code, 0, r.stderr);
      ids.push(backupSnapshotId(r.stdout));
    }
  });
  after(() => tmp.cleanup());

  test('restore-size: every node and the bytes a restore writes, hard-linked files once per snapshot', () => {
    const [f1, f2] = [factsOf(src1), factsOf(src2)];
    assert.deepEqual(stats(), { total_size: 2 * f1.restoreBytes + f2.restoreBytes, total_file_count: 2 * f1.nodes + f2.nodes, snapshots_count: 3 });
    assert.deepEqual(stats('--mode', 'restore-size', ids[1]!), { total_size: f2.restoreBytes, total_file_count: f2.nodes, snapshots_count: 1 });
    assert.deepEqual(stats('--host', 'h1'), { total_size: 2 * f1.restoreBytes, total_file_count: 2 * f1.nodes, snapshots_count: 2 });
    assert.deepEqual(stats('--host', 'h2', 'latest'), stats(ids[1]!.slice(0, 8)));
    // The hard link counts once, though its two names are in different directories.
    assert.equal(f1.restoreBytes, sum(['a.bin', 'dup/a-copy.bin', 'zeros.bin', 'big.bin', 'hard1.bin'].map((f) => fs.statSync(path.join(src1, f)).size)));
  });

  test('files-by-contents: each content once over all snapshots; nodes without content are one more, of size 0 (as restic)', () => {
    const contents = new Map([...factsOf(src1).contents, ...factsOf(src2).contents]);
    assert.equal(contents.size, 6, 'a.bin, zeros, big, hard1, c, h');
    assert.deepEqual(stats('--mode', 'files-by-contents'), { total_size: sum([...contents.values()]), total_file_count: contents.size + 1, snapshots_count: 3 });
  });

  test('blobs-per-file: each content\'s blobs once, by the path it was met at first', async () => {
    const contents = new Map([...factsOf(src1).contents, ...factsOf(src2).contents]);
    // No two of the files share a chunk: each data blob in the repository belongs to one content.
    const dataBlobs = (await indexedBlobs(repo, env['SCRATE_PASSWORD']!)).filter((b) => b.type === BlobType.data);
    assert.ok(dataBlobs.length > contents.size, 'big.bin is several chunks');
    assert.deepEqual(stats('--mode', 'blobs-per-file'), { total_size: sum([...contents.values()]), total_file_count: contents.size, total_blob_count: dataBlobs.length, snapshots_count: 3 });
  });

  test('raw-data: every blob the snapshots use, trees too, at its stored size; compression as restic computes it', async () => {
    // Nothing was forgotten: the snapshots use every blob the index lists.
    const blobs = await indexedBlobs(repo, env['SCRATE_PASSWORD']!);
    const uncompressed = (b: (typeof blobs)[number]) => b.rawLength + 16;
    const compressed = blobs.filter((b) => b.compressed);
    assert.ok(compressed.length > 0, 'zeros.bin and the trees compress');
    const total = sum(blobs.map((b) => b.length));
    const totalUncompressed = sum(blobs.map(uncompressed));
    const got = stats('--mode', 'raw-data');
    assert.deepEqual(Object.keys(got), ['total_size', 'total_uncompressed_size', 'compression_ratio', 'compression_progress', 'compression_space_saving', 'total_blob_count', 'snapshots_count']);
    assert.deepEqual(
      { ...got, compression_ratio: undefined, compression_progress: undefined, compression_space_saving: undefined },
      { total_size: total, total_uncompressed_size: totalUncompressed, total_blob_count: blobs.length, snapshots_count: 3, compression_ratio: undefined, compression_progress: undefined, compression_space_saving: undefined },
    );
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
    close(got.compression_ratio!, sum(compressed.map(uncompressed)) / sum(compressed.map((b) => b.length)));
    close(got.compression_progress!, (sum(compressed.map(uncompressed)) / totalUncompressed) * 100);
    close(got.compression_space_saving!, (1 - total / totalUncompressed) * 100);
    assert.ok(got.compression_ratio! > 1);
    // The second snapshot alone: three one-chunk files, and the trees of /, the directories above src2 and src2.
    assert.equal(stats('--mode', 'raw-data', ids[1]!).total_blob_count, 3 + 1 + src2.split('/').filter(Boolean).length);
  });

  test('no file data is read: with every data pack damaged, each mode counts the same', async () => {
    const before = Object.fromEntries(['restore-size', 'files-by-contents', 'raw-data', 'blobs-per-file'].map((m) => [m, stats('--mode', m)]));
    const r = await Repository.open(new LocalBackend(repo), env['SCRATE_PASSWORD']!);
    await r.loadIndex();
    let damaged = 0;
    for (let n = 0; n < r.index.size; n++) {
      const e = r.index.entry(n);
      const pack = r.index.packs[e.pack]!;
      if (pack.type !== BlobType.data) continue;
      const id = pack.id.toString('hex');
      const file = path.join(repo, 'data', id.slice(0, 2), id);
      const bytes = fs.readFileSync(file);
      bytes.fill(0, e.offset, e.offset + e.length);
      fs.writeFileSync(file, bytes);
      damaged++;
    }
    assert.ok(damaged > 0);
    assert.notEqual(scrate(['dump', 'latest', path.join(src1, 'a.bin')], env).code, 0, 'the data is unreadable');
    for (const [mode, expected] of Object.entries(before)) assert.deepEqual(stats('--mode', mode), expected, mode);
  });

  test('plain output: restic\'s lines, those of what the mode does not count left out', () => {
    const f2 = factsOf(src2);
    const r = scrate(['stats', ids[1]!], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, ['Stats in restore-size mode:', '     Snapshots processed:  1', `        Total File Count:  ${f2.nodes}`, `              Total Size:  ${formatBytes(f2.restoreBytes)}`, ''].join('\n'));
    const raw = scrate(['stats', '--mode', 'raw-data'], env).stdout.split('\n');
    assert.deepEqual(
      raw.map((l) => l.split(':')[0]),
      ['Stats in raw-data mode', '     Snapshots processed', '        Total Blob Count', ' Total Uncompressed Size', '              Total Size', '    Compression Progress', '       Compression Ratio', 'Compression Space Saving', ''],
    );
  });

  test('bad input and a write-only key: one line, exit 1', () => {
    assertCleanError(scrate(['stats', '--mode', 'everything'], env), 1, /everything/);
    assertCleanError(scrate(['stats', 'ffffffff'], env), 1, /snapshot/);
    fs.writeFileSync(path.join(tmp.dir, 'wo.pass'), 'write-only password\n');
    assert.equal(scrate(['key', 'add', '--write-only', '--host', 'h1', '--new-password-file', path.join(tmp.dir, 'wo.pass')], env).code, 0);
    assertCleanError(scrate(['stats'], { ...env, SCRATE_PASSWORD: 'write-only password' }), 1, /write-only/);
  });
});
