import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { openBackend } from '../src/backend/open.js';
import { assertCleanError, backupSnapshotId, cliEnv, jsonLines, jsonMessage, scrate, type CopySummary } from './helpers/cli.js';
import { crashpointUnavailable, killLeftovers, repoPaths, Traced } from './helpers/crashpoint.js';
import { listObjects, scratch } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';

/*
 * copy --from-repo in identity mode (design note of issue #24, §2): a target made with
 * init --from-repo --copy-chunker-params names blobs as the source does, so a copy moves only
 * the blobs the target lacks, re-encrypted, and skips snapshots already copied.
 */

const SOURCE_PW = 'source password';
const TARGET_PW = 'target password';
const unavailable = s3ServerForTests();


describe('copy --from-repo', { skip: unavailable ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let server: S3Server;
  let data: string;
  const dir = (name: string) => path.join(tmp.dir, name);
  const s3 = (name: string) => `s3:${server.endpoint}/scrate-copy/${name}`;
  /** A command on `repo` (password TARGET_PW) whose --from-repo is `from` (password SOURCE_PW). */
  const env = (repo: string, from?: string, extra: Record<string, string> = {}) =>
    cliEnv(repo, {
      SCRATE_PASSWORD: TARGET_PW,
      SCRATE_FROM_PASSWORD: SOURCE_PW,
      SCRATE_FROM_REPOSITORY: from,
      XDG_CACHE_HOME: dir('cache'),
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      ...extra,
    });
  const sourceEnv = (repo: string) => env(repo, undefined, { SCRATE_PASSWORD: SOURCE_PW });
  const ok = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = scrate(args, e);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const copy = (args: string[], e: NodeJS.ProcessEnv) => jsonMessage<CopySummary>(ok(['copy', '--json', ...args], e).stdout, 'summary');
  /** The data packs of a repository: how many, and their bytes. */
  const packs = async (location: string) => {
    const backend = await openBackend(location);
    let count = 0;
    let bytes = 0;
    for await (const { size } of backend.list('data')) {
      count++;
      bytes += size;
    }
    return { count, bytes };
  };
  /** Restores the latest snapshot of `repo` (with `e`) and compares it with the backed-up tree. */
  const assertRestores = (e: NodeJS.ProcessEnv, name: string) => {
    const target = dir(`restored-${name}`);
    ok(['restore', 'latest', '--target', target], e);
    assert.deepEqual(compareTrees(data, path.join(target, data)), [], `restore of ${name}`);
  };
  const assertClean = (e: NodeJS.ProcessEnv) => {
    const r = ok(['check', '--read-data'], e);
    assert.match(r.stdout + r.stderr, /no errors were found|0 error/);
  };

  before(async () => {
    tmp = scratch('copy');
    server = await startS3ServerWithCredentials();
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    ok(['init'], sourceEnv(dir('A')));
    ok(['backup', '--tag', 'first', data], sourceEnv(dir('A')));
    ok(['backup', '--tag', 'other', '--host', 'elsewhere', data], sourceEnv(dir('A')));
  });
  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test('local → S3: restores bit-exact, records its origin, a second copy moves nothing, a later one only the new data', async () => {
    const B = s3('B');
    ok(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(B));
    const first = copy([], env(B, dir('A')));
    assert.deepEqual([first.snapshots_copied, first.snapshots_skipped, first.snapshots_failed], [2, 0, 0]);
    assert.ok(first.blobs_copied > 10 && first.bytes_stored > 0, JSON.stringify(first));
    assertRestores(env(B), 'B');

    const sources = jsonLines(ok(['snapshots', '--json'], sourceEnv(dir('A'))).stdout)[0] as unknown as { id: string; tree: string }[];
    const copies = jsonLines(ok(['snapshots', '--json'], env(B)).stdout)[0] as unknown as { id: string; tree: string; original?: string; parent?: string }[];
    assert.deepEqual(copies.map((c) => c.original).sort(), sources.map((s) => s.id).sort(), 'each copy names its original');
    assert.deepEqual(copies.map((c) => c.tree).sort(), sources.map((s) => s.tree).sort(), 'identity mode keeps the trees');
    assert.ok(copies.every((c) => c.parent === undefined));

    const before = await packs(B);
    const again = copy([], env(B, dir('A')));
    assert.deepEqual([again.snapshots_copied, again.snapshots_skipped, again.blobs_copied, again.bytes_read], [0, 2, 0, 0]);
    assert.deepEqual(await packs(B), before, 'a second copy stores nothing');

    fs.writeFileSync(path.join(data, 'new.bin'), randomBytes(3 * 1024 * 1024));
    const backup = ok(['backup', '--json', '--tag', 'first', data], sourceEnv(dir('A')));
    const added = jsonMessage<{ data_added: number }>(backup.stdout, 'summary').data_added;
    const later = copy([], env(B, dir('A')));
    assert.deepEqual([later.snapshots_copied, later.snapshots_skipped], [1, 2]);
    const after = await packs(B);
    const stored = after.bytes - before.bytes;
    assert.ok(stored >= added * 0.95 && stored <= added * 1.05 + 64 * 1024, `stored ${stored} for ${added} added by the backup`);
    assert.ok(backupSnapshotId(backup.stdout));
    assertRestores(env(B), 'B2');
    assertClean(env(B));
    assertClean(sourceEnv(dir('A')));
  });

  test('S3 → local: a copy of a copy keeps the first origin and restores bit-exact', () => {
    const B = s3('B');
    const C = dir('C');
    // B's password is the source's here.
    ok(['init', '--from-repo', B, '--copy-chunker-params', '--from-password-file', writePassword('b.pass', TARGET_PW)], env(C));
    const r = copy(['--from-password-file', dir('b.pass')], env(C, B));
    assert.equal(r.snapshots_copied, 3);
    const origins = (e: NodeJS.ProcessEnv) => (jsonLines(ok(['snapshots', '--json'], e).stdout)[0] as unknown as { original: string }[]).map((s) => s.original).sort();
    assert.deepEqual(origins(env(C)), origins(env(B)));
    assertRestores(env(C), 'C');
    assertClean(env(C));
    const none = copy(['--from-password-file', dir('b.pass')], env(C, B));
    assert.deepEqual([none.snapshots_copied, none.snapshots_skipped], [0, 3]);
  });

  test('filters and named snapshots choose what is copied; the text output is restic\'s', () => {
    const D = dir('D');
    ok(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(D));
    assert.equal(copy(['--tag', 'other'], env(D, dir('A'))).snapshots_copied, 1);
    const copied = jsonLines(ok(['snapshots', '--json'], env(D)).stdout)[0] as unknown as { hostname: string }[];
    assert.deepEqual(copied.map((s) => s.hostname), ['elsewhere']);
    const sources = jsonLines(ok(['snapshots', '--json', '--tag', 'first'], sourceEnv(dir('A'))).stdout)[0] as unknown as { id: string; short_id: string }[];
    const text = ok(['copy', sources[0]!.id.slice(0, 8)], env(D, dir('A'))).stdout;
    assert.match(text, new RegExp(`snapshot ${sources[0]!.short_id} of \\[${data}\\] at .* by .*@`));
    assert.match(text, /copy started, this may take a while/);
    const all = ok(['copy'], env(D, dir('A'))).stdout;
    assert.match(all, new RegExp(`skipping snapshot ${sources[0]!.short_id}, was already copied to snapshot [0-9a-f]{8}`));
    assert.match(all, /copied 1 snapshots, skipped 2/);
  });

  test('a write-only writer\'s snapshot is copied as that writer\'s, registered in the target', () => {
    const woPass = writePassword('web2.pass', 'web2 password');
    ok(['key', 'add', '--write-only', '--host', 'web2', '--new-password-file', woPass], sourceEnv(dir('A')));
    ok(['backup', '--host', 'web2', data], { ...sourceEnv(dir('A')), SCRATE_PASSWORD: 'web2 password' });
    const W = dir('W');
    ok(['init', '--from-repo', dir('A'), '--copy-chunker-params'], env(W));
    const r = copy(['--host', 'web2'], env(W, dir('A')));
    assert.deepEqual([r.snapshots_copied, r.snapshots_failed], [1, 0]);
    type Listed = { writer: { id: string; access: string; hostname?: string } };
    const source = (jsonLines(ok(['snapshots', '--json', '--host', 'web2'], sourceEnv(dir('A'))).stdout)[0] as unknown as Listed[])[0]!;
    const copied = (jsonLines(ok(['snapshots', '--json'], env(W)).stdout)[0] as unknown as Listed[])[0]!;
    assert.deepEqual(copied.writer, source.writer);
    assert.equal(copied.writer.access, 'write-only');
    // A write-only writer's snapshot restores without set-id bits and devices, from either repository.
    ok(['restore', 'latest', '--host', 'web2', '--target', dir('restored-web2')], sourceEnv(dir('A')));
    ok(['restore', 'latest', '--target', dir('restored-W')], env(W));
    assert.deepEqual(compareTrees(dir('restored-web2'), dir('restored-W')), []);
    assert.ok(fs.readdirSync(path.join(dir('restored-W'), data)).length > 3);
    assertClean(env(W));
    assert.equal(copy(['--host', 'web2'], env(W, dir('A'))).snapshots_skipped, 1);
  });

  test('refusals are one line: a write-only source key, no source', () => {
    const woPass = writePassword('wo.pass', 'write-only password');
    ok(['key', 'add', '--write-only', '--host', 'web1', '--new-password-file', woPass], sourceEnv(dir('A')));
    assertCleanError(scrate(['copy', '--from-password-file', woPass], env(dir('D'), dir('A'))), 1, /write-only/);
    assertCleanError(scrate(['copy'], env(dir('D'))), 1, /--from-repo/);
  });

  function writePassword(name: string, password: string): string {
    fs.writeFileSync(dir(name), password + '\n');
    return dir(name);
  }
});

describe('copy killed (kill -9) and run again', { skip: crashpointUnavailable() ?? false }, () => {
  let tmp: ReturnType<typeof scratch>;
  let data: string;
  let firstIndex: string[];
  const dir = (name: string) => path.join(tmp.dir, name);
  const env = (repo: string, password = TARGET_PW) => cliEnv(repo, { SCRATE_PASSWORD: password, SCRATE_FROM_PASSWORD: SOURCE_PW, SCRATE_FROM_REPOSITORY: dir('src'), XDG_CACHE_HOME: dir('cache') });
  const ok = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = scrate(args, e);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  /** The source's objects but its locks: a copy writes nothing else there. */
  const sourceObjects = () => listObjects(dir('src')).filter((name) => !name.startsWith('locks/'));

  before(async () => {
    tmp = scratch('copy-crash');
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    ok(['init'], env(dir('src'), SOURCE_PW));
    ok(['backup', data], env(dir('src'), SOURCE_PW));
    firstIndex = fs.readdirSync(path.join(dir('src'), 'index'));
    fs.writeFileSync(path.join(data, 'second.bin'), randomBytes(2 * 1024 * 1024));
    ok(['backup', data], env(dir('src'), SOURCE_PW));
  });
  afterEach(() => killLeftovers());
  after(() => tmp?.cleanup());

  /** Targets of both modes: made with the source's chunker parameters (identity), and not (translate, re-chunking). */
  const modes = [
    { mode: 'identity', init: (from: string) => ['init', '--from-repo', from, '--copy-chunker-params'] },
    { mode: 'translate', init: () => ['init', '--chunk-min', String(64 * 1024), '--chunk-avg', String(256 * 1024), '--chunk-max', String(1024 * 1024)] },
  ];

  test('a damaged source snapshot is reported and left out, the others copied, exit 3', () => {
    const damaged = dir('damaged');
    fs.cpSync(dir('src'), damaged, { recursive: true });
    // The second backup's index files list what only it added: without them, its snapshot lacks blobs.
    const indexDir = path.join(damaged, 'index');
    for (const name of fs.readdirSync(indexDir)) if (!firstIndex.includes(name)) fs.rmSync(path.join(indexDir, name));
    for (const { mode, init } of modes) {
      const target = dir(`target-damaged-${mode}`);
      ok(init(damaged), env(target));
      const r = scrate(['copy', '--json'], { ...env(target), SCRATE_FROM_REPOSITORY: damaged });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /snapshot [0-9a-f]{8}: damaged, not copied: /);
      const summary = jsonMessage<CopySummary>(r.stdout, 'summary');
      assert.deepEqual([summary.snapshots_copied, summary.snapshots_failed], [1, 1]);
      ok(['check', '--read-data'], env(target));
    }
  });

  const points = [
    { label: 'after its first pack is in place', op: 'rename' as const, path: (p: ReturnType<typeof repoPaths>) => p.pack },
    { label: 'between the first index file and the first snapshot', op: 'rename' as const, path: (p: ReturnType<typeof repoPaths>) => p.object('index') },
  ];
  for (const { mode, init } of modes) for (const [i, k] of points.entries()) {
    test(`${mode}: killed ${k.label}: the rerun finishes, nothing twice, both check clean`, async () => {
      const target = dir(`target-${mode}-${i}`);
      ok(init(dir('src')), env(target));
      const before = sourceObjects();
      const p = repoPaths(target);
      const run = new Traced(['copy'], env(target), { scope: p.all, stop: { when: 'after', op: k.op, n: 1, path: k.path(p) } });
      await run.stopped();
      assert.equal((await run.kill()).signal, 'SIGKILL');
      assert.deepEqual(jsonLines(ok(['snapshots', '--json'], env(target)).stdout)[0], [], 'killed before any snapshot was written');
      const again = jsonMessage<CopySummary>(ok(['copy', '--json'], env(target)).stdout, 'summary');
      assert.equal(again.snapshots_copied + again.snapshots_skipped, 2);
      const copies = jsonLines(ok(['snapshots', '--json'], env(target)).stdout)[0] as unknown as { original: string }[];
      const sources = jsonLines(ok(['snapshots', '--json'], env(dir('src'), SOURCE_PW)).stdout)[0] as unknown as { id: string }[];
      assert.deepEqual(copies.map((c) => c.original).sort(), sources.map((s) => s.id).sort(), 'each source snapshot copied once');
      ok(['check', '--read-data'], env(target));
      ok(['check', '--read-data'], env(dir('src'), SOURCE_PW));
      assert.deepEqual(sourceObjects(), before, 'the source is only read');
      const restored = dir(`restored-${mode}-${i}`);
      ok(['restore', 'latest', '--target', restored], env(target));
      assert.deepEqual(compareTrees(data, path.join(restored, data)), []);
      const none = jsonMessage<CopySummary>(ok(['copy', '--json'], env(target)).stdout, 'summary');
      assert.deepEqual([none.snapshots_copied, none.blobs_copied], [0, 0]);
    });
  }
});
