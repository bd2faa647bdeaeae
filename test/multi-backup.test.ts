import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openBackend } from '../src/backend/open.js';
import { Repository } from '../src/repository/repository.js';
import { assertCleanError, cliEnv, jsonLines, scrate, SCRATE, type RunResult } from './helpers/cli.js';
import { startFaultyProxy } from './helpers/faulty-proxy.js';
import { scratch, TEST_KDF_MS } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree, pseudoRandom } from './helpers/tree.js';

/*
 * backup -r A -r B (design note of issue #24, §4): the sources are walked, read and chunked
 * once for every repository of one key class, each target gets its own complete snapshot, and
 * one that fails leaves the others to finish (exit 3).
 */

const PASSWORD = 'multi backup password';
const unavailable = s3ServerForTests();
/** Small packs: a backup of a few MiB makes many uploads, so a target can fail part-way. */
const PACK_SIZE = 512 * 1024;
const MiB = 1024 * 1024;

interface Summary {
  repository: string;
  full_snapshot_id: string;
  parent?: string;
  bytes_read: number;
  total_bytes_processed: number;
}

describe('backup to several repositories', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let server: S3Server;
  let data: string;
  /** Bytes of regular files under `data`. */
  let dataBytes = 0;
  const dir = (name: string) => path.join(tmp.dir, name);
  const env = (extra: Record<string, string> = {}) =>
    cliEnv('', { SCRATE_REPOSITORY: undefined, SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: dir('cache'), AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, ...extra });
  const repoArgs = (...locations: string[]) => locations.flatMap((l) => ['-r', l]);
  const ok = (args: string[]) => {
    const r = scrate(args, env());
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  /** A repository of small packs; `like` gives it the chunker parameters and blob-ID keys of another (one key class). */
  const init = async (location: string, like?: Repository) => {
    return Repository.init(await openBackend(location), PASSWORD, { kdfMs: TEST_KDF_MS, packSize: PACK_SIZE, ...like?.chunking });
  };
  const summaries = (r: RunResult) => jsonLines(r.stdout).filter((m) => m.message_type === 'summary') as unknown as Summary[];
  const assertRestores = (location: string, name: string, snapshot = 'latest', tree = data) => {
    const target = dir(`restored-${name}`);
    ok([...repoArgs(location), 'restore', snapshot, '--target', target]);
    assert.deepEqual(compareTrees(tree, path.join(target, tree)), [], `restore of ${name}`);
  };
  const assertClean = (location: string) => {
    const r = ok([...repoArgs(location), 'check', '--read-data']);
    assert.match(r.stdout, / 0 error\(s\)/);
  };
  const locks = (localRepo: string) => fs.readdirSync(path.join(localRepo, 'locks'));

  /**
   * Runs scrate and gives what it read through read(2) and friends in all (rchar of
   * /proc/PID/io): the shell that runs it reaps it, and a reaped child's I/O counts are added to
   * its parent's, which the shell then prints. No FUSE, no strace; what scrate reads of its own
   * code and of the repositories is the same few MiB in each run compared.
   */
  const readCounted = (args: string[]) => {
    const io = dir(`io-${Math.random().toString(36).slice(2)}`);
    const run = spawnSync('sh', ['-c', `"$0" "$@"; rc=$?; cat /proc/$$/io > '${io}'; exit $rc`, SCRATE, ...args], { env: env(), encoding: 'utf8' });
    const r: RunResult = { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
    const rchar = Number(/^rchar: (\d+)$/m.exec(fs.readFileSync(io, 'utf8'))![1]);
    return { ...r, rchar };
  };

  before(async () => {
    tmp = scratch('multi-backup');
    server = await startS3ServerWithCredentials();
    process.env['AWS_ACCESS_KEY_ID'] = server.accessKeyId;
    process.env['AWS_SECRET_ACCESS_KEY'] = server.secretAccessKey;
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    // Incompressible bulk, so that reading it twice would show.
    fs.mkdirSync(path.join(data, 'bulk'));
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(data, 'bulk', `part${i}`), pseudoRandom(i, 'multi-backup bulk', 3 * MiB + i * 4099));
    // Names in the tree are any bytes: find counts them, as the walk does.
    const sizes = spawnSync('find', [data, '-type', 'f', '-printf', '%s\\n'], { encoding: 'utf8' }).stdout;
    dataBytes = sizes.split('\n').filter(Boolean).reduce((n, l) => n + Number(l), 0);
  });
  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test('local and S3 of one key class: the source is read once, both snapshots restore exactly', async (t) => {
    const local = dir('one-local');
    const s3 = `s3:${server.endpoint}/multi/one`;
    await init(s3, await init(local));
    const s3only = `s3:${server.endpoint}/multi/one-alone`;
    await init(s3only, await init(dir('one-alone-source')));
    // The same tree into the S3 repository alone: what one read of it costs.
    const alone = readCounted([...repoArgs(s3only), 'backup', '--json', data]);
    assert.equal(alone.code, 0, alone.stderr);
    const both = readCounted([...repoArgs(local, s3), 'backup', '--json', data]);
    assert.equal(both.code, 0, both.stderr);
    assert.doesNotMatch(both.stderr, /read again/);
    const [a, b] = summaries(both);
    assert.equal(a?.repository, local);
    assert.match(b!.repository, /^s3:.*multi\/one$/);
    const [one] = summaries(alone);
    assert.ok(one!.bytes_read > 0.99 * dataBytes, `the tree is read (${one!.bytes_read} of ${dataBytes})`);
    assert.equal(a!.bytes_read, one!.bytes_read, 'every byte read, once, as the summary counts');
    assert.equal(b!.bytes_read, one!.bytes_read);
    t.diagnostic(`read(2) bytes: S3 alone ${alone.rchar}, local + S3 ${both.rchar}; source ${dataBytes}`);
    assert.ok(alone.rchar >= dataBytes, `the measure sees the source (${alone.rchar} < ${dataBytes})`);
    // A second read of the source would add dataBytes (18 MiB and more): the local target adds only its own metadata.
    assert.ok(both.rchar - alone.rchar < dataBytes / 2, `read ${both.rchar} bytes for two targets, ${alone.rchar} for one (source ${dataBytes})`);
    assert.notEqual(a!.full_snapshot_id, b!.full_snapshot_id, 'each repository has its own snapshot');
    assertRestores(local, 'one-local');
    assertRestores(s3, 'one-s3');
    assertClean(local);
    assertClean(s3);
    assert.deepEqual(locks(local), []);
  });

  test('each target keeps its own parent: one that missed a backup still gets a complete snapshot', async () => {
    const a = dir('parents-a');
    const b = dir('parents-b');
    await init(b, await init(a));
    const tree = dir('parents-data');
    fs.mkdirSync(tree);
    await makeTree(tree);
    const first = summaries(ok([...repoArgs(a, b), 'backup', '--json', tree]));
    // B misses a backup that A gets, of files new then and unchanged since.
    fs.writeFileSync(path.join(tree, 'only-in-a-backup'), pseudoRandom(7, 'missed', 2 * MiB));
    fs.mkdirSync(path.join(tree, 'new-dir'));
    fs.writeFileSync(path.join(tree, 'new-dir', 'small'), 'small file B never saw');
    const second = summaries(ok([...repoArgs(a), 'backup', '--json', tree]));
    fs.writeFileSync(path.join(tree, 'latest'), 'after the missed backup');
    const third = summaries(ok([...repoArgs(a, b), 'backup', '--json', tree]));
    assert.equal(third[0]!.parent, second[0]!.full_snapshot_id, "A's parent is A's latest");
    assert.equal(third[1]!.parent, first[1]!.full_snapshot_id, "B's parent is B's own latest");
    assertRestores(b, 'parents-b', 'latest', tree);
    assertRestores(a, 'parents-a', 'latest', tree);
    assertClean(b);
  });

  test('repositories of two key classes: a second pass over the sources, announced, both correct', async (t) => {
    const a = dir('classes-a');
    const c = dir('classes-c');
    await init(a);
    await init(c);
    const r = readCounted([...repoArgs(a, c), 'backup', '--json', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /read again/.test(l)).length, 1, `one line announces the second pass: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${c}: other chunker`));
    t.diagnostic(`read(2) bytes of two passes: ${r.rchar}; source ${dataBytes}`);
    // The measure above sees a second read when there is one.
    assert.ok(r.rchar >= 2 * dataBytes, `two passes read the source twice (${r.rchar} < 2 × ${dataBytes})`);
    assert.deepEqual(summaries(r).map((s) => s.repository), [a, c]);
    assertRestores(a, 'classes-a');
    assertRestores(c, 'classes-c');
  });

  test('two repositories for any other command: a one-line error', () => {
    for (const args of [['snapshots'], ['check'], ['restore', 'latest', '--target', dir('x')]]) {
      const r = scrate([...repoArgs(dir('one-local'), dir('parents-a')), ...args], env());
      assertCleanError(r, 1, /only backup takes several -r\/--repo/);
    }
    // The same repository twice (here once with a trailing slash) would store everything twice.
    const twice = scrate(['backup', ...repoArgs(dir('one-local'), `${dir('one-local')}/`), data], env());
    assertCleanError(twice, 1, /one-local is given twice/);
  });

  test('when every repository fails, each is named and the exit code is 1', () => {
    const r = scrate(['backup', ...repoArgs(dir('missing-1'), dir('missing-2')), data], env());
    assert.equal(r.code, 1, r.stderr);
    for (const name of ['missing-1', 'missing-2']) assert.match(r.stderr, new RegExp(`^warning: target .*${name} failed: repository .* does not exist`, 'm'));
    assert.match(r.stderr, /^scrate: every repository failed/m);
  });

  /**
   * Backs up to a local repository and an S3 one behind `breakS3`'s doing once the local one
   * holds a few packs (part-way: the run is still going): the local snapshot is complete.
   */
  async function failingS3(name: string, s3Endpoint: string, breakS3: () => Promise<void> | void) {
    const local = dir(`${name}-local`);
    const s3 = `s3:${s3Endpoint}/multi/${name}`;
    await init(s3, await init(local));
    const child = spawn(SCRATE, [...repoArgs(local, s3), 'backup', data], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    let running = true;
    void exited.then(() => (running = false));
    const packs = () => {
      let n = 0;
      const walk = (p: string) => fs.existsSync(p) && fs.readdirSync(p, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(p, e.name)) : n++));
      walk(path.join(local, 'data'));
      return n;
    };
    while (running && packs() < 4) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(running, 'the backup was still running when S3 broke');
    await breakS3();
    const code = await exited;
    assert.equal(code, 3, `exit 3 (stderr: ${stderr})`);
    assert.match(stderr, new RegExp(`^warning: target s3:.*multi/${name} failed: `, 'm'));
    assert.equal(stderr.split('\n').filter((l) => / failed: /.test(l)).length, 1, stderr);
    assert.match(stdout, new RegExp(`${local}: snapshot [0-9a-f]{8} saved`));
    assert.doesNotMatch(stdout, new RegExp(`multi/${name}: snapshot`));
    assert.deepEqual(locks(local), [], 'no lock left on the local repository');
    assertRestores(local, `${name}-local`);
    assertClean(local);
  }

  test('the S3 target starts refusing every request part-way: the local snapshot completes, exit 3', async () => {
    const url = new URL(server.endpoint);
    const rates = { slowDown: 0, serverError: 0, drop: 0, truncate: 0, delay: 0, delayMs: 0 };
    const proxy = await startFaultyProxy({ host: url.hostname, port: Number(url.port) }, rates);
    try {
      await failingS3('refused', proxy.endpoint, () => void (rates.serverError = 1));
      assert.ok(proxy.stats.serverError > 0, 'requests were refused');
    } finally {
      await proxy.stop();
    }
  });

  // Last: the server is gone after it.
  test('the S3 server stops part-way: the local snapshot completes, exit 3', async () => {
    await failingS3('stopped', server.endpoint, () => server.stop());
  });
});
