import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openBackend } from '../src/backend/open.js';
import { LocalBackend } from '../src/backend/local.js';
import { BlobType } from '../src/repository/pack.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots, saveSnapshot, type Snapshot } from '../src/snapshot/snapshot.js';
import { assertCleanError, backupSnapshotId, cliEnv, jsonMessage, scrate } from './helpers/cli.js';
import { flipByte, scratch } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { makeTree } from './helpers/tree.js';

/*
 * check --compare SRC (design note of issue #24, §5): a repository's snapshots against their
 * sources, paired by origin; identity copies by their root tree IDs, others by walking.
 */

const SOURCE_PW = 'source password';
const TARGET_PW = 'target password';
const unavailable = s3ServerForTests();

interface Compared {
  pairs: number;
  same_root: number;
  files_read: number;
  uncopied: string[];
  unmatched: string[];
  differences: { source: string; target: string; path: string; what: string; unreadable: boolean }[];
}
interface Summary {
  num_errors: number;
  compare: Compared;
}

function tools(dir: (name: string) => string, extra: () => Record<string, string> = () => ({})) {
  const env = (repo: string, password = TARGET_PW) => cliEnv(repo, { SCRATE_PASSWORD: password, SCRATE_FROM_PASSWORD: SOURCE_PW, XDG_CACHE_HOME: dir('cache'), ...extra() });
  const ok = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = scrate(args, e);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  /** check --compare on `repo` against `from`: its exit code, JSON summary and text lines. */
  const compare = (repo: string, from: string, args: string[] = []) => {
    const r = scrate(['check', '--json', '--compare', from, ...args], env(repo));
    assert.ok(r.code === 0 || r.code === 1, `${r.code}: ${r.stderr}`);
    const text = scrate(['check', '--compare', from, ...args], env(repo));
    assert.equal(text.code, r.code);
    return { code: r.code, summary: jsonMessage<Summary>(r.stdout, 'summary'), text: text.stdout + text.stderr };
  };
  return { env, ok, compare };
}

describe('check --compare: an identity copy on S3', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let server: S3Server;
  let data: string;
  const dir = (name: string) => path.join(tmp.dir, name);
  const s3 = (name: string) => `s3:${server.endpoint}/scrate-compare/${name}`;
  const { env, ok, compare } = tools(dir, () => ({ AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey }));
  const requests = () => fs.readFileSync(path.join(server.dir, 'logs', 'proxy.log'), 'utf8').split('\n');
  /** IDs of the packs of data blobs (not trees) a repository's index lists. */
  const dataPacks = async (location: string, password: string) => {
    const repo = await Repository.open(await openBackend(location), password);
    await repo.loadIndex();
    return repo.index.packs.filter((p) => p.type === BlobType.data).map((p) => p.id.toString('hex'));
  };

  before(async () => {
    tmp = scratch('compare-s3');
    server = await startS3ServerWithCredentials();
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    ok(['init'], env(s3('A'), SOURCE_PW));
    ok(['backup', data], env(s3('A'), SOURCE_PW));
    fs.writeFileSync(path.join(data, 'later.bin'), randomBytes(300 * 1024));
    ok(['backup', '--tag', 'later', data], env(s3('A'), SOURCE_PW));
    ok(['init', '--from-repo', s3('A'), '--copy-chunker-params'], { ...env(s3('B')), SCRATE_FROM_REPOSITORY: s3('A') });
    ok(['copy', '--from-repo', s3('A')], env(s3('B')));
  });
  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test('compares equal by root trees, reading no data pack of either repository', async () => {
    const packs = [...(await dataPacks(s3('A'), SOURCE_PW)), ...(await dataPacks(s3('B'), TARGET_PW))];
    assert.ok(packs.length >= 2);
    const from = requests().length;
    // Without the cache, every object read is a request the server logs.
    const { code, summary } = compare(s3('B'), s3('A'), ['--no-cache']);
    assert.equal(code, 0);
    assert.deepEqual(summary.compare, { pairs: 2, same_root: 2, files_read: 0, uncopied: [], unmatched: [], differences: [] });
    const gets = requests()
      .slice(from)
      .filter((l) => / GET /.test(l));
    assert.ok(gets.some((l) => l.includes('/B/snapshots/')) && gets.some((l) => l.includes('/A/snapshots/')), 'the log records the reads of both');
    const dataReads = gets.filter((l) => packs.some((p) => l.includes(p)));
    assert.deepEqual(dataReads, [], 'no data pack read');
  });

  test('a source snapshot with no copy, and a target snapshot with no source, are reported; they are not differences', () => {
    ok(['backup', '--tag', 'uncopied', data], env(s3('A'), SOURCE_PW));
    ok(['backup', '--tag', 'direct', data], env(s3('B')));
    const { code, summary, text } = compare(s3('B'), s3('A'));
    assert.equal(code, 0);
    assert.equal(summary.compare.pairs, 2);
    assert.equal(summary.compare.uncopied.length, 1);
    assert.equal(summary.compare.unmatched.length, 1);
    assert.deepEqual(summary.compare.differences, []);
    assert.match(text, new RegExp(`snapshot ${summary.compare.uncopied[0]!.slice(0, 8)} of .*/A has no copy here`));
    assert.match(text, new RegExp(`snapshot ${summary.compare.unmatched[0]!.slice(0, 8)} has no source in .*/A`));
  });
});

describe('check --compare: differences', () => {
  let tmp: ReturnType<typeof scratch>;
  let work: string;
  let sourceId: string;
  let source: Snapshot;
  const dir = (name: string) => path.join(tmp.dir, name);
  const { env, ok, compare } = tools(dir, () => ({ SCRATE_FROM_REPOSITORY: dir('S') }));
  const MTIME = 1_600_000_000;
  /** Differences at or below the backed-up directory (those above it record the test's scratch directory, which changes). */
  const below = (c: Compared) =>
    c.differences
      .filter((d) => d.path.startsWith(`${work}/`))
      .map((d) => `${d.path.slice(work.length + 1)}: ${d.what}`)
      .sort();

  /**
   * Makes `repo`'s snapshot of `work` (its latest, backed up directly) stand as a copy of the
   * source's first snapshot: the source's fields and origin, its own tree, as a full key can write.
   */
  const plantCopy = async (repo: string) => {
    const r = await Repository.open(new LocalBackend(repo), TARGET_PW);
    const mine = await listSnapshots(r);
    const latest = mine.at(-1)!;
    const { parent: _p, ...fields } = source;
    await saveSnapshot(r, { ...fields, tree: latest.snapshot.tree, original: sourceId });
    for (const s of mine) await r.backend.remove('snapshots', s.id);
  };

  before(async () => {
    tmp = scratch('compare');
    work = dir('work');
    fs.mkdirSync(path.join(work, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(work, 'a.txt'), 'some text\n'.repeat(100));
    fs.writeFileSync(path.join(work, 'sub', 'b.bin'), randomBytes(200 * 1024));
    fs.writeFileSync(path.join(work, 'sub', 'c.txt'), 'unchanged\n');
    for (const f of ['a.txt', 'sub/b.bin', 'sub/c.txt']) {
      fs.chmodSync(path.join(work, f), 0o644);
      fs.utimesSync(path.join(work, f), MTIME, MTIME);
    }
    ok(['init'], env(dir('S'), SOURCE_PW));
    ok(['backup', work], env(dir('S'), SOURCE_PW));
    sourceId = backupSnapshotId(ok(['backup', '--json', '--tag', 'second', work], env(dir('S'), SOURCE_PW)).stdout);
    const sources = await listSnapshots(await Repository.open(new LocalBackend(dir('S')), SOURCE_PW));
    source = sources.find((s) => s.id === sourceId)!.snapshot;
    for (const name of ['I', 'damaged']) {
      ok(['init', '--from-repo', dir('S'), '--copy-chunker-params'], env(dir(name)));
      ok(['copy', sourceId], env(dir(name)));
    }
    ok(['init'], env(dir('F')));
  });
  after(() => tmp?.cleanup());

  test('a damaged pack of an identity copy is found only with --read-data, naming the file', async () => {
    const first = compare(dir('damaged'), dir('S'));
    assert.equal(first.code, 0, first.text);
    assert.equal(first.summary.compare.same_root, 1);
    const packs = await Repository.open(new LocalBackend(dir('damaged')), TARGET_PW).then(async (r) => {
      await r.loadIndex();
      return r.index.packs.filter((p) => p.type === BlobType.data).map((p) => p.id.toString('hex'));
    });
    const biggest = packs.map((id) => path.join(dir('damaged'), 'data', id.slice(0, 2), id)).sort((x, y) => fs.statSync(y).size - fs.statSync(x).size)[0]!;
    flipByte(biggest, Math.floor(fs.statSync(biggest).size / 2));
    assert.equal(compare(dir('damaged'), dir('S')).code, 0, 'without --read-data nothing is read');
    const read = compare(dir('damaged'), dir('S'), ['--read-data']);
    assert.equal(read.code, 1);
    assert.ok(read.summary.num_errors > 0);
    assert.match(read.text, /needed by snapshot [0-9a-f]{8}: .*\/sub\/b\.bin/);
  });

  test('an identity copy whose tree differs: metadata and content differences by walking, no data read', async () => {
    fs.chmodSync(path.join(work, 'a.txt'), 0o600);
    const fd = fs.openSync(path.join(work, 'sub', 'b.bin'), 'r+');
    fs.writeSync(fd, Buffer.from([0xff ^ fs.readFileSync(path.join(work, 'sub', 'b.bin'))[1000]!]), 0, 1, 1000);
    fs.closeSync(fd);
    fs.utimesSync(path.join(work, 'sub', 'b.bin'), MTIME, MTIME);
    for (const name of ['I', 'F']) ok(['backup', work], env(dir(name)));
    await plantCopy(dir('I'));
    await plantCopy(dir('F'));

    const identity = compare(dir('I'), dir('S'));
    assert.equal(identity.code, 1);
    assert.equal(identity.summary.num_errors, 0, 'the target itself is sound');
    assert.deepEqual([identity.summary.compare.pairs, identity.summary.compare.same_root, identity.summary.compare.files_read], [1, 0, 0]);
    assert.deepEqual(below(identity.summary.compare), ['a.txt: mode 0644 ≠ 0600', 'sub/b.bin: content differs']);
    assert.match(identity.text, new RegExp(`snapshot [0-9a-f]{8} \\(copy of ${sourceId.slice(0, 8)}\\): ${work}/a.txt: mode 0644 ≠ 0600`));
    assert.deepEqual(identity.summary.compare.uncopied.length, 1, 'the first source snapshot was not copied');
  });

  test('a write-only key of the source is refused in one line', () => {
    fs.writeFileSync(dir('wo.pass'), 'write-only password\n');
    ok(['key', 'add', '--write-only', '--host', 'web1', '--new-password-file', dir('wo.pass')], env(dir('S'), SOURCE_PW));
    assertCleanError(scrate(['check', '--compare', dir('S'), '--from-password-file', dir('wo.pass')], env(dir('I'))), 1, /this key is write-only: it can add backups but not read any/);
  });

  test('a copy under other keys: sizes and metadata by walking, a changed byte only with --read-data', () => {
    const walked = compare(dir('F'), dir('S'));
    assert.equal(walked.code, 1);
    assert.deepEqual(below(walked.summary.compare), ['a.txt: mode 0644 ≠ 0600']);
    assert.equal(walked.summary.compare.files_read, 0);
    const read = compare(dir('F'), dir('S'), ['--read-data']);
    assert.equal(read.code, 1);
    assert.deepEqual(below(read.summary.compare), ['a.txt: mode 0644 ≠ 0600', 'sub/b.bin: content differs (read)']);
    assert.ok(read.summary.compare.files_read >= 3, `${read.summary.compare.files_read} files read`);
  });
});
