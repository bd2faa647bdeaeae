import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliEnv, jsonLines, jsonMessage, scrate, type CopySummary } from './helpers/cli.js';
import { listObjects, scratch } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';

/*
 * copy --from-repo into a repository made with a plain `init` (design note of issue #24,
 * §2.6): its chunker keys (and here its chunk sizes) differ, so files are cut again and every
 * tree rewritten with the target's IDs; disk images keep their fixed chunks, named anew.
 * (A damaged source and kill -9 mid-copy are tested for both modes in copy.test.ts.)
 */

const SOURCE_PW = 'source password';
const TARGET_PW = 'target password';
const MiB = 1024 * 1024;
/** Smaller chunks than the source's: every file over 64 KiB is cut differently. */
const TARGET_CHUNKS = ['--chunk-min', String(64 * 1024), '--chunk-avg', String(256 * 1024), '--chunk-max', String(MiB)];
const unavailable = s3ServerForTests();


interface Listed {
  id: string;
  tree: string;
  tags: string[];
  original?: string;
  parent?: string;
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A disk image of 24 MiB, mostly holes, for backup --as-device. */
function makeImage(file: string): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 24 * MiB);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, randomBytes(1536 * 1024), 0, 1536 * 1024, 3 * MiB + 12345);
  fs.writeSync(fd, randomBytes(200 * 1024), 0, 200 * 1024, 20 * MiB);
  fs.closeSync(fd);
}

describe('copy into a repository of other chunker parameters', () => {
  let tmp: ReturnType<typeof scratch>;
  let server: S3Server | undefined;
  let data: string;
  let image: string;
  const dir = (name: string) => path.join(tmp.dir, name);
  const env = (repo: string, extra: Record<string, string> = {}) =>
    cliEnv(repo, {
      SCRATE_PASSWORD: TARGET_PW,
      SCRATE_FROM_PASSWORD: SOURCE_PW,
      SCRATE_FROM_REPOSITORY: dir('A'),
      XDG_CACHE_HOME: dir('cache'),
      ...(server ? { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey } : {}),
      ...extra,
    });
  const source = () => env(dir('A'), { SCRATE_PASSWORD: SOURCE_PW });
  const ok = (args: string[], e: NodeJS.ProcessEnv) => {
    const r = scrate(args, e);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const copy = (e: NodeJS.ProcessEnv) => jsonMessage<CopySummary>(ok(['copy', '--json'], e).stdout, 'summary');
  const snapshots = (e: NodeJS.ProcessEnv) => jsonLines(ok(['snapshots', '--json'], e).stdout)[0] as unknown as Listed[];
  /** Restores the data and the image from `e`'s repository and compares them with the originals. */
  const assertRestores = (e: NodeJS.ProcessEnv, name: string) => {
    const target = dir(`restored-${name}`);
    ok(['restore', 'latest', '--tag', 'data', '--target', target], e);
    assert.deepEqual(compareTrees(data, path.join(target, data)), [], `restore of ${name}`);
    const img = dir(`restored-${name}.img`);
    ok(['restore', 'latest', '--tag', 'image', '--target', img], e);
    assert.equal(sha256File(img), sha256File(image), `image restored from ${name}`);
  };
  const assertClean = (e: NodeJS.ProcessEnv) => {
    const r = ok(['check', '--read-data'], e);
    assert.match(r.stdout + r.stderr, /; 0 error\(s\)/);
  };

  before(async () => {
    tmp = scratch('copy-translate');
    if (!unavailable) server = await startS3ServerWithCredentials();
    data = dir('data');
    fs.mkdirSync(data);
    await makeTree(data);
    image = dir('disk.img');
    makeImage(image);
    ok(['init'], source());
    ok(['backup', '--tag', 'data', data], source());
    ok(['backup', '--as-device', '--tag', 'image', image], source());
  });
  after(async () => {
    await server?.stop();
    tmp?.cleanup();
  });

  test('local → local: re-chunked, said once; restores bit-exact; a second copy moves nothing; a later one about the new data', () => {
    const B = dir('B');
    ok(['init', ...TARGET_CHUNKS], env(B));
    const text = ok(['copy'], env(B)).stdout;
    assert.equal(text.split("target's chunker differs from the source's (not made with init --from-repo --copy-chunker-params): files are re-chunked").length, 2, text);
    assert.match(text, /copied 2 snapshots, skipped 0/);
    assertRestores(env(B), 'B');

    const sources = snapshots(source());
    const copies = snapshots(env(B));
    assert.deepEqual(copies.map((c) => c.original).sort(), sources.map((s) => s.id).sort(), 'each copy names its original');
    assert.ok(copies.every((c) => c.parent === undefined && !sources.some((s) => s.tree === c.tree)), 'trees rewritten with the target\'s IDs');

    // The image kept its fixed chunks: backing it up into the target adds no data.
    const direct = jsonMessage<{ data_added: number }>(ok(['backup', '--json', '--as-device', '--tag', 'direct', image], env(B)).stdout, 'summary');
    assert.ok(direct.data_added < 64 * 1024, `backup of the image into the copy added ${direct.data_added}`);

    const again = copy(env(B));
    assert.deepEqual([again.mode, again.snapshots_copied, again.snapshots_skipped, again.blobs_copied, again.bytes_read, again.bytes_stored], ['translate', 0, 2, 0, 0, 0]);

    // One more backup (its parent the first): the next copy reads and stores about what it added.
    fs.writeFileSync(path.join(data, 'new.bin'), randomBytes(3 * MiB + 777));
    const backup = jsonMessage<{ data_added: number }>(ok(['backup', '--json', '--tag', 'data', data], source()).stdout, 'summary');
    const later = copy(env(B));
    assert.deepEqual([later.snapshots_copied, later.snapshots_skipped], [1, 2]);
    const added = backup.data_added;
    assert.ok(later.bytes_read >= 3 * MiB && later.bytes_read <= added * 1.05 + 64 * 1024, `read ${later.bytes_read} for ${added} added by the backup`);
    assert.ok(later.bytes_stored >= 3 * MiB && later.bytes_stored <= added * 1.1 + 256 * 1024, `stored ${later.bytes_stored} for ${added} added by the backup`);
    assertRestores(env(B), 'B2');
    assertClean(env(B));
    assertClean(source());
  });

  test('local → S3: restores bit-exact, check clean, a second copy moves nothing', { skip: unavailable ?? false }, () => {
    const C = `s3:${server!.endpoint}/scrate-translate/C`;
    ok(['init'], env(C));
    const first = copy(env(C));
    assert.equal(first.mode, 'translate');
    assert.equal(first.snapshots_copied, snapshots(source()).length);
    assert.ok(first.blobs_copied > 10 && first.bytes_stored > 0, JSON.stringify(first));
    assertRestores(env(C), 'C');
    assertClean(env(C));
    const none = copy(env(C));
    assert.deepEqual([none.snapshots_copied, none.blobs_copied, none.bytes_read], [0, 0, 0]);
  });

  test('a write-only writer\'s snapshot is re-chunked as that writer\'s, registered in the target', () => {
    const woPass = dir('web2.pass');
    fs.writeFileSync(woPass, 'web2 password\n');
    ok(['key', 'add', '--write-only', '--host', 'web2', '--new-password-file', woPass], source());
    ok(['backup', '--host', 'web2', path.join(data, 'data')], { ...source(), SCRATE_PASSWORD: 'web2 password' });
    const W = dir('W');
    ok(['init', ...TARGET_CHUNKS], env(W));
    const r = jsonMessage<CopySummary>(ok(['copy', '--json', '--host', 'web2'], env(W)).stdout, 'summary');
    assert.deepEqual([r.mode, r.snapshots_copied, r.snapshots_failed], ['translate', 1, 0]);
    type Writer = { writer: { id: string; access: string } };
    const original = (jsonLines(ok(['snapshots', '--json', '--host', 'web2'], source()).stdout)[0] as unknown as Writer[])[0]!;
    const copied = (jsonLines(ok(['snapshots', '--json'], env(W)).stdout)[0] as unknown as Writer[])[0]!;
    assert.deepEqual(copied.writer, original.writer);
    ok(['restore', 'latest', '--host', 'web2', '--target', dir('restored-web2')], source());
    ok(['restore', 'latest', '--target', dir('restored-W')], env(W));
    assert.deepEqual(compareTrees(dir('restored-web2'), dir('restored-W')), []);
    assertClean(env(W));
  });

  test('a file whose pack is gone: each snapshot holding it is reported and left out, the others copied, exit 3', () => {
    const R = dir('R');
    const e = env(R, { SCRATE_PASSWORD: SOURCE_PW });
    ok(['init'], e);
    const d1 = dir('d1');
    fs.mkdirSync(d1);
    // The damaged file first in its directory: the files read after it in the same stream fail with it.
    fs.writeFileSync(path.join(d1, '0-lost.bin'), randomBytes(300 * 1024));
    fs.writeFileSync(path.join(d1, '1-kept.txt'), randomBytes(1000));
    const packsNow = () => new Set(listObjects(R, 'data'));
    const before = packsNow();
    ok(['backup', d1], e);
    // The new data pack (the tree pack beside it is the smaller).
    const lost = [...packsNow()].filter((p) => !before.has(p)).sort((a, b) => fs.statSync(path.join(R, b)).size - fs.statSync(path.join(R, a)).size)[0]!;
    fs.writeFileSync(path.join(d1, '2-new.txt'), randomBytes(1000));
    ok(['backup', d1], e);
    const d2 = dir('d2');
    fs.mkdirSync(d2);
    fs.writeFileSync(path.join(d2, 'fine.bin'), randomBytes(200 * 1024));
    ok(['backup', d2], e);
    fs.rmSync(path.join(R, lost));
    const T = dir('T');
    ok(['init', ...TARGET_CHUNKS], env(T));
    const r = scrate(['copy', '--json'], env(T, { SCRATE_FROM_REPOSITORY: R }));
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.match(/snapshot [0-9a-f]{8}: damaged, not copied: /g)?.length, 2, r.stderr);
    const summary = jsonMessage<CopySummary>(r.stdout, 'summary');
    assert.deepEqual([summary.snapshots_copied, summary.snapshots_failed], [1, 2]);
    ok(['restore', 'latest', '--target', dir('restored-d2')], env(T));
    assert.deepEqual(compareTrees(d2, path.join(dir('restored-d2'), d2)), []);
    assertClean(env(T));
  });

  test('within one run, later snapshots sharing the data of the first read only what they added', () => {
    fs.writeFileSync(path.join(data, 'within.bin'), randomBytes(2 * MiB + 99));
    ok(['backup', '--tag', 'data', data], source());
    const datas = (jsonLines(ok(['snapshots', '--json', '--tag', 'data'], source()).stdout)[0] as unknown as (Listed & { time: string; summary: { data_added: number } })[]).sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    assert.ok(datas.length >= 2);
    const D = dir('D');
    ok(['init', ...TARGET_CHUNKS], env(D));
    const one = jsonMessage<CopySummary>(ok(['copy', '--json', datas[0]!.id], env(D)).stdout, 'summary');
    const E = dir('E');
    ok(['init', ...TARGET_CHUNKS], env(E));
    const all = jsonMessage<CopySummary>(ok(['copy', '--json', '--tag', 'data'], env(E)).stdout, 'summary');
    assert.equal(all.snapshots_copied, datas.length);
    const addedLater = datas.slice(1).reduce((n, s) => n + s.summary.data_added, 0);
    assert.ok(all.bytes_read <= one.bytes_read + addedLater * 1.05 + 64 * 1024, `read ${all.bytes_read}: the first alone ${one.bytes_read}, the others added ${addedLater}`);
    assert.ok(all.bytes_read >= one.bytes_read + 2 * MiB);
    const restored = dir('restored-E');
    ok(['restore', datas[0]!.id.slice(0, 8), '--target', restored], source());
    const fromE = dir('restored-E-copy');
    const copyOfFirst = snapshots(env(E)).find((c) => c.original === datas[0]!.id)!;
    ok(['restore', copyOfFirst.id.slice(0, 8), '--target', fromE], env(E));
    assert.deepEqual(compareTrees(restored, fromE), []);
  });
});

