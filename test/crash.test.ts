/**
 * Crash safety (issue #21): `scrate backup`, `prune`, `forget` and `repair index` run as child
 * processes and are killed (SIGKILL) right before or after one chosen file system call on the repository, found
 * by an LD_PRELOAD shim (test/helpers/crashpoint.c) that stops the process there: a pack
 * adopted, the first index file written, between the index and the snapshot, during a repack,
 * between the new index and the deletes, in the middle of the deletes. Each point is chosen from
 * what an uninterrupted run of the same command on the same repository did (how many packs it
 * wrote, index files it removed, packs it deleted). After every kill: `check --read-data`
 * passes (packs no index lists are only a note), every snapshot that existed before (that a
 * forget keeps) restores bit-exactly, the killed process's lock does not stand in the way (same host, dead pid), and
 * the same command run again succeeds and leaves the repository checking clean.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { backupSnapshotId, scrate, type RunResult } from './helpers/cli.js';
import { count, crashpointUnavailable, ere, killLeftovers, repoPaths, Traced, type CallEvent, type Op } from './helpers/crashpoint.js';
import { addWriteOnlyKey, assertChecks, assertRestores, backUpGenerations, copyDir, holdLock, newWorkspace, nextGeneration, repoEnv } from './helpers/history.js';
import { scratch } from './helpers/repo.js';

const unavailable = crashpointUnavailable();

/** The paths of a repository and of its cache (where a write-only key keeps its record), as the shim matches them. */
function paths(repo: string, cache: string) {
  return {
    ...repoPaths(repo),
    scope: `^(${ere(repo)}|${ere(cache)})/`,
    /** A write-only key's record: its log of index files, and the trees and snapshots it made. */
    record: (file: string) => `^${ere(cache)}/scrate/[0-9a-f]{64}/writer-[0-9a-f]{32}/${file}`,
  };
}
type Paths = ReturnType<typeof paths>;

/** A call to kill at: the n-th call of `op` on a path matching `path` (from the start, or counted back from the last the uninterrupted run made). */
interface KillPoint {
  label: string;
  when: 'before' | 'after';
  op: Op;
  path: (p: Paths) => string;
  /** A number, or from how many such calls the uninterrupted run made. */
  n: number | ((made: number) => number);
}

const point = (label: string, when: 'before' | 'after', op: Op, pathOf: (p: Paths) => string, n: KillPoint['n'] = 1): KillPoint => ({ label, when, op, path: pathOf, n });

/** A command run on copies of one repository state (and cache), killed at each point. */
interface Scenario {
  repo: string;
  cache: string;
  /** What each snapshot in the repository holds, by ID. */
  expected: Map<string, string>;
  /** The path the snapshots were made of. */
  source: string;
  args: string[];
  /** The key the command runs with (default: the full key the repository was made with). */
  password?: string;
  /** A backup's: what its snapshot holds (the run after the kill's snapshot must restore as it). */
  produces?: string;
  /** More checks of the run after the kill. */
  rerun?: (r: RunResult, repo: string) => void;
  /** Every call an uninterrupted run made, on a copy at `referenceAt`. */
  reference: CallEvent[];
  referenceAt: Paths;
}

let tmp: ReturnType<typeof scratch>;
let copies = 0;

/** A fresh copy of a scenario's repository and cache. */
function copyOf(s: { repo: string; cache: string }): { dir: string; repo: string; cache: string } {
  const dir = path.join(tmp.dir, `copy-${copies++}`);
  fs.mkdirSync(dir);
  const repo = path.join(dir, 'repo');
  const cache = path.join(dir, 'cache');
  copyDir(s.repo, repo);
  copyDir(s.cache, cache);
  return { dir, repo, cache };
}

function envOf(s: { password?: string }, repo: string, cache: string): NodeJS.ProcessEnv {
  return repoEnv(repo, cache, s.password ? { SCRATE_PASSWORD: s.password } : {});
}

/** Runs the scenario's command uninterrupted on a copy and records every call it made. */
async function recordReference(s: Omit<Scenario, 'reference' | 'referenceAt'>): Promise<Scenario> {
  const c = copyOf(s);
  const p = paths(c.repo, c.cache);
  const run = new Traced(s.args, envOf(s, c.repo, c.cache), { scope: p.scope });
  const done = await run.exited;
  assert.equal(done.code, 0, `uninterrupted ${s.args.join(' ')}: ${done.stderr}`);
  return { ...s, reference: run.events(), referenceAt: p };
}

/** Runs the scenario's command on a fresh copy and kills it at `k`; returns the copy and the command's environment. */
async function killedCopy(s: Scenario, k: KillPoint): Promise<ReturnType<typeof copyOf> & { env: NodeJS.ProcessEnv }> {
  const made = count(s.reference, k.op, k.path(s.referenceAt));
  const n = typeof k.n === 'number' ? k.n : k.n(made);
  assert.ok(n >= 1 && n <= made, `${k.label}: call ${n} of ${made} ${k.op} calls the uninterrupted run made`);
  const c = copyOf(s);
  const p = paths(c.repo, c.cache);
  const env = envOf(s, c.repo, c.cache);
  const run = new Traced(s.args, env, { scope: p.scope, stop: { when: k.when, op: k.op, n, path: k.path(p) } });
  await run.stopped();
  const killed = await run.kill();
  assert.equal(killed.signal, 'SIGKILL', `killed ${k.label}`);
  return { ...c, env };
}

/** Kills the scenario's command at `k` on a fresh copy, then checks everything the issue asks. */
async function killAt(s: Scenario, k: KillPoint): Promise<void> {
  const c = await killedCopy(s, k);
  const { env } = c;
  const when = `killed ${k.label}`;
  const full = repoEnv(c.repo, c.cache);
  // The check (a child process) and the restores (here) side by side: the suite's time is mostly theirs.
  await Promise.all([assertChecks(full, when), assertRestores(c.repo, s.expected, s.source, c.dir, when)]);
  const again = scrate(s.args, env);
  assert.equal(again.code, 0, `${when}, then run again: ${again.stderr}`);
  s.rerun?.(again, c.repo);
  const produced = s.produces && new Map([[backupSnapshotId(again.stdout), s.produces]]);
  await Promise.all([assertChecks(full, `${when}, then run again`), produced && assertRestores(c.repo, produced, s.source, c.dir, `${when}, then run again`)]);
  fs.rmSync(c.dir, { recursive: true, force: true });
}

/** Declares one test per kill point, once the scenario is ready. */
function killPoints(name: string, scenario: () => Scenario, points: KillPoint[]): void {
  for (const k of points) test(`${name}: killed ${k.label}`, () => killAt(scenario(), k));
}

before(() => {
  tmp = scratch('crash');
});
afterEach(() => killLeftovers());
after(() => tmp?.cleanup());

describe('scrate backup killed at every step', { skip: unavailable ?? false }, () => {
  let incremental: Scenario;
  let first: Scenario;
  let writeOnly: Scenario;

  before(async () => {
    // An incremental backup (gen 3) onto two snapshots, with a score of new packs.
    const w = await newWorkspace(path.join(tmp.dir, 'backup'));
    const expected = backUpGenerations(w, [1, 2]);
    const args = ['backup', w.source, '--json'];
    incremental = await recordReference({ repo: w.location, cache: w.cache, expected, source: w.source, args, produces: nextGeneration(w, 3) });

    // The first backup into an empty repository.
    const empty = await newWorkspace(path.join(tmp.dir, 'first-backup'));
    const firstTree = nextGeneration(empty, 1, 512 * 1024);
    first = await recordReference({ repo: empty.location, cache: empty.cache, expected: new Map(), source: empty.source, args: ['backup', empty.source, '--json'], produces: firstTree });

    // A write-only key's third backup: its record of what it stored lives in the cache.
    const wo = await newWorkspace(path.join(tmp.dir, 'write-only-backup'));
    const woEnv = addWriteOnlyKey(wo.env, wo.base, 'h');
    const woExpected = backUpGenerations(wo, [1, 2], woEnv);
    const woArgs = ['backup', wo.source, '--json'];
    writeOnly = await recordReference({ repo: wo.location, cache: wo.cache, expected: woExpected, source: wo.source, args: woArgs, password: woEnv['SCRATE_PASSWORD'], produces: nextGeneration(wo, 3) });
  });

  const lock = (p: Paths) => p.object('locks');
  const pack = (p: Paths) => p.pack;
  const index = (p: Paths) => p.object('index');
  const snapshot = (p: Paths) => p.object('snapshots');
  killPoints('incremental backup', () => incremental, [
    point('while its lock is written', 'after', 'create', (p) => p.temp('locks')),
    point('with its lock taken, nothing stored', 'after', 'rename', lock),
    point('with the first pack staged, empty', 'after', 'create', (p) => p.stagedPack),
    point('after the first pack adopted', 'after', 'rename', pack),
    point('after the second pack adopted', 'after', 'rename', pack, 2),
    point('after a quarter of its packs adopted', 'after', 'rename', pack, (m) => Math.max(1, Math.floor(m / 4))),
    point('after half of its packs adopted', 'after', 'rename', pack, (m) => Math.floor(m / 2)),
    point('with every pack adopted, the index file being written', 'after', 'create', (p) => p.temp('index')),
    point('with the index file written, not yet in place', 'before', 'rename', index),
    point('between the index file and the snapshot', 'after', 'rename', index),
    point('while the snapshot is written', 'after', 'create', (p) => p.temp('snapshots')),
    point('with the snapshot written, not yet in place', 'before', 'rename', snapshot),
    point('after the snapshot, its lock still held', 'after', 'rename', snapshot),
  ]);

  killPoints('first backup', () => first, [
    point('after its first pack adopted', 'after', 'rename', pack),
    point('with every pack adopted, before the index', 'before', 'rename', index),
    point('between the index file and the snapshot', 'after', 'rename', index),
  ]);

  killPoints('write-only backup', () => writeOnly, [
    point('after its third pack adopted', 'after', 'rename', pack, 3),
    point('after its index file, before its record lists it', 'before', 'create', (p) => p.record('index\\.log$')),
    point('after its record lists the index, before the snapshot', 'before', 'rename', snapshot),
    point('after the snapshot, before its record has the trees', 'after', 'rename', snapshot),
    point('after its record has the trees, before it has the snapshot', 'before', 'rename', (p) => p.record('snapshots/[0-9a-f]{64}$')),
  ]);

  test('a killed write-only backup\'s lock is stale at once for the full key on the same host too', async () => {
    const c = await killedCopy(writeOnly, point('after its first pack', 'after', 'rename', (p) => p.pack));
    const r = scrate(['prune', '--json'], repoEnv(c.repo, c.cache));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).exclusive, true, 'no live lock: the prune is exclusive');
  });
});

describe('scrate prune killed at every step', { skip: unavailable ?? false }, () => {
  let exclusive: Scenario;
  let beside: Scenario;
  let deleting: Scenario;

  before(async () => {
    // Four generations backed up; the first two snapshots forgotten: their data is garbage,
    // whole packs of it and packs partly used.
    const w = await newWorkspace(path.join(tmp.dir, 'prune'));
    const { location: repo, cache, source } = w;
    const expected = backUpGenerations(w, [1, 2, 3, 4]);
    for (const id of [...expected.keys()].slice(0, 2)) {
      fs.rmSync(path.join(repo, 'snapshots', id));
      expected.delete(id);
    }
    const args = ['prune', '--max-unused', '0%', '--json'];
    const ranAs = (mode: boolean) => (r: RunResult) => assert.equal(JSON.parse(r.stdout).exclusive, mode, `the run after the kill is ${mode ? 'exclusive: the killed one\'s lock is stale at once' : 'two-phase beside the live lock'}`);
    exclusive = await recordReference({ repo, cache, expected, source, args, rerun: ranAs(true) });

    // The same beside a running backup (a live lock): repacks and marks, deletes nothing.
    const besideRepo = path.join(w.base, 'beside-repo');
    copyDir(repo, besideRepo);
    await holdLock(besideRepo);
    beside = await recordReference({ repo: besideRepo, cache, expected, source, args, rerun: ranAs(false) });

    // After that, with a lock taken since the mark: the marked packs are deleted.
    const deletingRepo = path.join(w.base, 'deleting-repo');
    copyDir(besideRepo, deletingRepo);
    const marking = scrate(args, repoEnv(deletingRepo, cache));
    assert.equal(marking.code, 0, marking.stderr);
    assert.ok(JSON.parse(marking.stdout).packs.marked > 0, marking.stdout);
    await holdLock(deletingRepo);
    deleting = await recordReference({ repo: deletingRepo, cache, expected, source, args: ['prune', '--delete-after', '0s', '--json'], rerun: ranAs(false) });
    assert.ok(count(deleting.reference, 'unlink', deleting.referenceAt.pack) > 1, 'the marked packs are deleted');
  });

  const lock = (p: Paths) => p.object('locks');
  const pack = (p: Paths) => p.pack;
  const index = (p: Paths) => p.object('index');
  killPoints('exclusive prune', () => exclusive, [
    point('with its exclusive lock taken', 'after', 'rename', lock),
    point('while repacking: the first new pack staged', 'after', 'create', (p) => p.stagedPack),
    point('while repacking: the first new pack adopted', 'after', 'rename', pack),
    point('with every repacked pack written, none indexed', 'before', 'create', (p) => p.temp('index')),
    point('with the repacked packs indexed, before the new index', 'after', 'rename', index),
    point('while the new index is written', 'after', 'create', (p) => p.temp('index'), 2),
    point('between the new index and the deletes', 'after', 'rename', index, 2),
    point('after the first old index file removed', 'after', 'unlink', index),
    point('with the old index gone, no pack deleted yet', 'before', 'unlink', pack),
    point('after the first pack deleted', 'after', 'unlink', pack),
    point('in the middle of the deletes', 'after', 'unlink', pack, (m) => Math.floor(m / 2)),
    point('with one pack left to delete', 'after', 'unlink', pack, (m) => m - 1),
    point('after the last delete, its lock still held', 'after', 'unlink', pack, (m) => m),
  ]);

  killPoints('prune beside a backup', () => beside, [
    point('after the first repacked pack adopted', 'after', 'rename', pack),
    point('between the new index (with its marks) and the marks object', 'after', 'rename', index, 2),
    point('after the marks object, the old index files still there', 'after', 'rename', (p) => p.object('marks')),
    point('after the first old index file removed', 'after', 'unlink', index),
  ]);

  killPoints('prune deleting marked packs', () => deleting, [
    point('after the new index', 'after', 'rename', index),
    point('with the old index files removed, the old marks still there', 'before', 'unlink', (p) => p.object('marks')),
    point('with the old marks removed, before the deletes', 'after', 'unlink', (p) => p.object('marks')),
    point('after the first marked pack deleted', 'after', 'unlink', pack),
  ]);
});

describe('scrate forget and repair index killed at every step', { skip: unavailable ?? false }, () => {
  let forget: Scenario;
  let repairIndex: Scenario;

  before(async () => {
    const w = await newWorkspace(path.join(tmp.dir, 'forget'));
    const { location: repo, cache, source } = w;
    const made = [...backUpGenerations(w, [1, 2, 3, 4])];
    // What forget must never lose: the snapshot it keeps. The others may go at any step.
    const kept = new Map(made.slice(-1));
    forget = await recordReference({ repo, cache, expected: kept, source, args: ['forget', '--keep-last', '1'] });
    assert.equal(count(forget.reference, 'unlink', forget.referenceAt.object('snapshots')), 3, 'the uninterrupted forget removes three snapshots');
    repairIndex = await recordReference({ repo, cache, expected: new Map(made), source, args: ['repair', 'index'] });
  });

  const snapshot = (p: Paths) => p.object('snapshots');
  const index = (p: Paths) => p.object('index');
  killPoints('forget', () => forget, [
    point('with its exclusive lock taken', 'after', 'rename', (p) => p.object('locks')),
    point('after the first snapshot removed', 'after', 'unlink', snapshot),
    point('with one snapshot left to remove', 'before', 'unlink', snapshot, (m) => m),
  ]);

  killPoints('repair index', () => repairIndex, [
    point('while the new index is written', 'after', 'create', (p) => p.temp('index')),
    point('with the new index in place, the old still there', 'after', 'rename', index, (m) => m),
    point('after the first old index file removed', 'after', 'unlink', index),
    point('with one old index file left', 'before', 'unlink', index, (m) => m),
  ]);
});
