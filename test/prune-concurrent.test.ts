/**
 * Prune beside running backups (issue #21). A backup (a child process fed through its standard
 * input, so that it runs exactly as long as the test needs) holds its lock while `scrate prune`
 * runs against the same repository, local and S3: the prune takes the shared path and only
 * marks; the backup, which deduplicated against packs the prune marked, still restores
 * bit-exactly; a later `prune --delete-after 0s` keeps the marked packs while a backup older
 * than the mark runs and deletes them (or unmarks those now used) once none does. The same for
 * a write-only key's backup, and for one made after a prune marked packs its record counts on.
 * Interleavings that need a process held at an exact step use the crash-point shim
 * (test/helpers/crashpoint.c) to stop it there and resume it later.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { openBackend } from '../src/backend/open.js';
import { BlobIndex } from '../src/repository/blob-index.js';
import { BlobType } from '../src/repository/pack.js';
import { restore } from '../src/restorer/restorer.js';
import { loadSnapshot } from '../src/snapshot/snapshot.js';
import { walkTree } from '../src/tree/walk.js';
import { backupSnapshotId, scrate } from './helpers/cli.js';
import { crashpointUnavailable, killLeftovers, repoPaths, Traced, type StopRule } from './helpers/crashpoint.js';
import { addWriteOnlyKey, assertChecks, assertRestores, backUpGenerations, backupCli, holdLock, names, newWorkspace, openLocation, removeLocks, waitFor, type Workspace } from './helpers/history.js';
import { scratch } from './helpers/repo.js';
import { s3ServerUnavailable, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { pseudoRandom } from './helpers/tree.js';

let tmp: ReturnType<typeof scratch>;
let server: S3Server | undefined;
const s3Unavailable = s3ServerUnavailable();
const shimUnavailable = crashpointUnavailable();

before(() => {
  tmp = scratch('prune-concurrent');
});
afterEach(() => killLeftovers());
// The CLI says this itself; the SDK loaded here (to list and remove S3 objects) would print it.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
after(async () => {
  await server?.stop();
  tmp?.cleanup();
});

interface Target {
  name: string;
  skip: string | false;
  /** Where a repository is made, and what the CLI needs to reach it. */
  location?(tag: string): string;
  env?(): Record<string, string>;
}

const local: Target = { name: 'local', skip: false };

const s3: Target = {
  name: 'S3',
  skip: s3Unavailable ?? false,
  location: (tag) => `s3:${server!.endpoint}/scrate-prune-concurrent/${tag}`,
  env: () => ({ AWS_ACCESS_KEY_ID: server!.accessKeyId, AWS_SECRET_ACCESS_KEY: server!.secretAccessKey }),
};

/** A repository with a history: three generations backed up, the first two snapshots forgotten. */
interface History extends Workspace {
  /** The environment of the key that made the history (the full key's, or a write-only key's). */
  writerEnv: NodeJS.ProcessEnv;
  /** The snapshot kept, and the tree it holds. */
  expected: Map<string, string>;
  /** Content only the forgotten snapshots had: garbage a prune marks, until a backup stores it again. */
  garbage: Buffer;
}

async function makeHistory(t: Target, tag: string, writer?: (w: Workspace) => NodeJS.ProcessEnv): Promise<History> {
  const w = await newWorkspace(path.join(tmp.dir, tag), { location: t.location?.(tag), env: t.env?.() });
  const writerEnv = writer ? writer(w) : w.env;
  const snapshots = [...backUpGenerations(w, [1, 2, 3], writerEnv)];
  const backend = await openBackend(w.location);
  for (const [id] of snapshots.slice(0, 2)) await backend.remove('snapshots', id);
  const garbage = fs.readFileSync(path.join(snapshots[0]![1], 'churn/g1.bin'));
  return { ...w, writerEnv, expected: new Map(snapshots.slice(2)), garbage };
}

/**
 * `scrate prune …--json`: must succeed; its statistics. Nothing is repacked (--max-unused
 * unlimited): only packs no snapshot uses are marked, so what each run marks is exact.
 */
function prune(env: NodeJS.ProcessEnv, ...args: string[]): { exclusive: boolean; waiting: number; packs: Record<string, number> } {
  const r = scrate(['prune', '--max-unused', 'unlimited', ...args, '--json'], env);
  assert.equal(r.code, 0, `prune ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** More than a stream backup reads before it cuts its first chunk (4 MiB, src/archiver/data-pipeline.ts): it then stores packs while it runs. */
const STREAM_BYTES = 4608 * 1024;

/** A backup of what the test writes to its standard input, as one file, stream.bin. */
function streamBackup(env: NodeJS.ProcessEnv, shim?: { scope: string; stop?: StopRule }): Traced {
  return new Traced(['backup', '--stdin', '--stdin-filename', 'stream.bin', '--json'], env, { stdin: true, ...shim });
}

async function finish(b: Traced): Promise<string> {
  b.child.stdin!.end();
  const done = await b.exited;
  assert.equal(done.code, 0, `the backup beside the prune: ${done.stderr}`);
  return backupSnapshotId(done.stdout);
}

/** The packs the index marks for deletion. */
async function markedPacks(location: string): Promise<Set<string>> {
  const repo = await openLocation(location);
  return new Set(repo.index.packs.filter((p) => p.markedAt && !p.missing).map((p) => p.id.toString('hex')));
}

/**
 * The packs holding data blobs a snapshot needs that no unmarked pack has: what it refers to in
 * packs marked for deletion.
 */
async function markedPacksNeeded(location: string, id: string): Promise<Set<string>> {
  const repo = await openLocation(location);
  const { snapshot, writer } = await loadSnapshot(repo, id);
  const reader = repo.reader(writer);
  const packs = new Set<string>();
  for await (const { node } of walkTree(reader, Buffer.from(snapshot.tree, 'hex'))) {
    for (const blob of node.content ?? []) {
      if (repo.index.has(BlobType.data, blob, writer.no)) continue;
      const at = reader.find(BlobType.data, blob);
      assert.ok(at, `blob ${blob.toString('hex').slice(0, 12)} of snapshot ${id.slice(0, 8)} is indexed`);
      packs.add(at.pack.id.toString('hex'));
    }
  }
  return packs;
}

/** Restores a stream backup's one file (with the full key) and returns its bytes. */
async function restoreStream(h: History, id: string): Promise<Buffer> {
  const repo = await openLocation(h.location);
  const { snapshot, writer } = await loadSnapshot(repo, id);
  const target = path.join(h.base, `stream-${id.slice(0, 8)}`);
  fs.rmSync(target, { recursive: true, force: true });
  const stats = await restore(repo.reader(writer), snapshot, { target });
  assert.equal(stats.errors, 0);
  const bytes = fs.readFileSync(path.join(target, 'stream.bin'));
  fs.rmSync(target, { recursive: true });
  return bytes;
}

/** Everything the history's snapshots hold, and the stream backups' files, restore bit-exactly; check passes. */
async function assertIntact(h: History, streams: Map<string, Buffer>, when: string): Promise<void> {
  await assertChecks(h.env, when);
  await assertRestores(h.location, h.expected, h.source, h.base, when);
  for (const [id, content] of streams) assert.ok((await restoreStream(h, id)).equals(content), `${when}: stream snapshot ${id.slice(0, 8)} restores bit-exactly`);
}

/**
 * A backup runs (fed new data, then data only the forgotten snapshots had, which it finds
 * stored and refers to) while prunes run: the first marks, the second (--delete-after 0s) must
 * wait for the backup, which is older than the mark; once it is done, a third deletes what is
 * still unused and unmarks what the backup now uses, beside a lock taken since the mark.
 */
async function pruneBesideBackup(h: History, backupEnv: NodeJS.ProcessEnv): Promise<void> {
  const fresh = pseudoRandom(11, h.location, STREAM_BYTES);
  const packsBefore = (await names(h.location, 'data')).length;
  const b = streamBackup(backupEnv);
  b.child.stdin!.write(fresh);
  // Its first pack is stored: it has taken its lock and loaded what it deduplicates against.
  await waitFor('the backup to store a pack', async () => (await names(h.location, 'data')).length > packsBefore);

  const first = prune(h.env);
  assert.equal(first.exclusive, false, 'beside a backup, prune takes the shared path');
  assert.equal(first.packs['deleted'], 0, 'beside a backup, nothing is deleted');
  const marked = await markedPacks(h.location);
  assert.ok(marked.size > 0, 'the forgotten snapshots\' packs are marked');

  b.child.stdin!.write(h.garbage);
  const second = prune(h.env, '--delete-after', '0s');
  assert.equal(second.exclusive, false);
  assert.equal(second.packs['deleted'], 0, 'nothing marked goes while a backup older than the mark runs');
  assert.ok(second.waiting >= marked.size, `every marked pack waits (${second.waiting} of ${marked.size})`);
  const present = new Set(await names(h.location, 'data'));
  for (const p of marked) assert.ok(present.has(p), `marked pack ${p.slice(0, 8)} is still there`);

  const id = await finish(b);
  const streams = new Map([[id, Buffer.concat([fresh, h.garbage])]]);
  const reused = [...(await markedPacksNeeded(h.location, id))];
  assert.ok(reused.length > 0, 'the backup refers to blobs in packs the prune marked (else this test tests nothing)');
  await assertIntact(h, streams, 'after the backup beside the prunes');

  await holdLock(h.location);
  const third = prune(h.env, '--delete-after', '0s');
  assert.equal(third.exclusive, false, 'beside the lock taken since the mark');
  assert.ok(third.packs['deleted']! > 0, 'the marked packs still unused are deleted');
  assert.ok(third.packs['unmarked']! >= reused.length, 'those the backup now uses are unmarked');
  const after = new Set(await names(h.location, 'data'));
  for (const p of reused) assert.ok(after.has(p), `pack ${p.slice(0, 8)}, which the backup uses, stays`);
  assert.equal((await markedPacks(h.location)).size, 0);
  await removeLocks(h.location);
  await assertIntact(h, streams, 'after the marked packs were deleted');
}

for (const t of [local, s3]) {
  describe(`prune beside a backup: ${t.name}`, { skip: t.skip }, () => {
    before(async () => {
      if (t === s3) server = await startS3ServerWithCredentials();
    });

    test('prune only marks beside a running backup; a later one deletes once no lock older than the mark is alive', async () => {
      const h = await makeHistory(t, `beside-${t.name}`);
      await pruneBesideBackup(h, h.env);
    });

    test('the same beside a write-only key\'s backup, which deduplicates against its own record', async () => {
      const h = await makeHistory(t, `write-only-beside-${t.name}`, (w) => addWriteOnlyKey(w.env, w.base, 'h'));
      await pruneBesideBackup(h, h.writerEnv);
    });
  });
}

describe('a write-only backup after a prune marked packs its record counts on', () => {
  test('its snapshot refers to no marked pack, and restores once they are deleted', async () => {
    const h = await makeHistory(local, 'write-only-after', (w) => addWriteOnlyKey(w.env, w.base, 'h'));
    await holdLock(h.location);
    const marking = prune(h.env);
    assert.equal(marking.exclusive, false);
    assert.ok((await markedPacks(h.location)).size > 0);
    await removeLocks(h.location);

    // The first generation again, elsewhere: its record says those blobs are stored, in marked packs.
    const again = path.join(h.base, 'gen-1-again');
    fs.mkdirSync(path.join(again, 'churn'), { recursive: true });
    fs.writeFileSync(path.join(again, 'churn/g1.bin'), h.garbage);
    const id = backupCli(h.writerEnv, again);
    assert.deepEqual([...(await markedPacksNeeded(h.location, id))], [], 'no blob is only in a marked pack');

    assert.ok(prune(h.env, '--delete-after', '0s').packs['deleted']! > 0);
    await assertIntact(h, new Map(), 'after the marked packs were deleted');
    await assertRestores(h.location, new Map([[id, again]]), again, h.base, 'the write-only backup made after the mark');
  });
});

/**
 * Races that need a process held at one exact step: the shim stops it there (SIGSTOP), the test
 * runs the other side, then resumes it.
 */
describe('prune racing a backup, held at exact steps', { skip: shimUnavailable ?? false }, () => {
  test('a backup that loaded the index while a prune decided what to mark keeps what it refers to', async () => {
    const h = await makeHistory(local, 'race-mark');
    const p = repoPaths(h.location);
    // A lock of this test process: the first prune takes the shared path.
    const holder = await holdLock(h.location);
    const marking = new Traced(['prune', '--max-unused', 'unlimited', '--json'], h.env, { scope: p.all, stop: { when: 'before', op: 'create', n: 1, path: p.temp('index') } });
    await marking.stopped();
    // Decided, not yet written: a backup starts now, reads the index and is held at its first pack.
    const fresh = pseudoRandom(12, 'race-mark', STREAM_BYTES);
    const b = streamBackup(h.env, { scope: p.all, stop: { when: 'after', op: 'create', n: 1, path: p.stagedPack } });
    b.child.stdin!.write(fresh);
    await b.stopped();
    b.child.stdin!.write(h.garbage);
    marking.resume();
    const marked = await marking.exited;
    assert.equal(marked.code, 0, marked.stderr);
    assert.equal(JSON.parse(marked.stdout).exclusive, false);
    await removeLocks(h.location, [holder]);
    // Only the backup's lock is left, taken after the marking prune started.
    prune(h.env, '--delete-after', '0s');
    b.resume();
    const id = await finish(b);
    await assertIntact(h, new Map([[id, Buffer.concat([fresh, h.garbage])]]), 'after a backup raced the marking prune');
  });

  test('a backup that ends while a prune computes what is used keeps what it refers to', async () => {
    const h = await makeHistory(local, 'race-usage');
    const p = repoPaths(h.location);
    const fresh = pseudoRandom(13, 'race-usage', STREAM_BYTES);
    const b = streamBackup(h.env, { scope: p.all, stop: { when: 'after', op: 'create', n: 1, path: p.stagedPack } });
    b.child.stdin!.write(fresh);
    await b.stopped();
    // The backup (older than the mark) has read the index: the garbage packs are unmarked to it.
    assert.equal(prune(h.env).exclusive, false);
    // The next prune is held when it reads the first tree pack: it has listed the snapshots.
    const deleting = new Traced(['prune', '--max-unused', 'unlimited', '--delete-after', '0s', '--json'], h.env, { scope: p.all, stop: { when: 'after', op: 'open', n: 1, path: p.pack } });
    await deleting.stopped();
    b.resume();
    b.child.stdin!.write(h.garbage);
    const id = await finish(b);
    deleting.resume();
    const done = await deleting.exited;
    assert.equal(done.code, 0, done.stderr);
    await assertIntact(h, new Map([[id, Buffer.concat([fresh, h.garbage])]]), 'after a backup ended while a prune computed usage');
  });
});

test('a pack one index file lists unmarked and another marked counts as marked, whichever is read first', () => {
  for (const markedFirst of [false, true]) {
    const index = new BlobIndex();
    const id = Buffer.alloc(32, 1);
    const pack = { id: Buffer.alloc(32, 2), type: BlobType.data, writer: 0, envelope: Buffer.alloc(32) };
    const entries = [{ type: BlobType.data, id, offset: 37, length: 100, rawLength: 84, compressed: false }];
    const listings = [{ ...pack }, { ...pack, markedAt: Date.now() }];
    if (markedFirst) listings.reverse();
    for (const l of listings) index.addPack(l, entries);
    assert.equal(index.has(BlobType.data, id, 0), false, `marked listing read ${markedFirst ? 'first' : 'last'}: no backup may refer to the pack`);
  }
});
