/**
 * Lock loss (issue #21): a backup whose lock cannot be refreshed stops before others may take
 * the lock for stale (src/repository/lock.ts: after four failed refreshes, 20 minutes), with a
 * one-line error, no snapshot, and the repository checking clean. Real time would take 20
 * minutes: the test-only SCRATE_TEST_LOCK_REFRESH_MS makes the backup refresh every 100 ms and
 * give up after 400 ms, and the crash-point shim (test/helpers/crashpoint.c) makes every lock
 * object it writes after its first fail, as a bucket that went away would.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { assertCleanError } from './helpers/cli.js';
import { crashpointUnavailable, killLeftovers, repoPaths, Traced, type CallEvent } from './helpers/crashpoint.js';
import { assertChecks, backUpGenerations, names, newWorkspace, waitFor, type Workspace } from './helpers/history.js';
import { scratch } from './helpers/repo.js';
import { pseudoRandom } from './helpers/tree.js';

const unavailable = crashpointUnavailable();
let tmp: ReturnType<typeof scratch>;

before(() => {
  tmp = scratch('lock-loss');
});
afterEach(() => killLeftovers());
after(() => tmp?.cleanup());

/** Refreshes of the lock that failed (the shim refused to write the new lock object). */
const failedRefreshes = (events: CallEvent[]) => events.filter((e) => e.op === 'create' && e.result === 'failed-injected').length;

/** A backup of its standard input whose lock is written once and never again. */
async function backupLosingItsLock(tag: string): Promise<{ w: Workspace; b: Traced; snapshots: string[] }> {
  const w = await newWorkspace(path.join(tmp.dir, tag));
  backUpGenerations(w, [1]);
  const p = repoPaths(w.location);
  const b = new Traced(['backup', '--stdin', '--stdin-filename', 'stream.bin'], { ...w.env, SCRATE_TEST_LOCK_REFRESH_MS: '100' }, { stdin: true, scope: p.all, fail: { op: 'create', from: 2, path: p.temp('locks') } });
  return { w, b, snapshots: await names(w.location, 'snapshots') };
}

async function assertStopped(w: Workspace, b: Traced, snapshots: string[]): Promise<void> {
  const r = await b.exited;
  assertCleanError(r, 1, /lock could not be refreshed/);
  assert.deepEqual(await names(w.location, 'snapshots'), snapshots, 'no snapshot was written');
  await assertChecks(w.env, 'after the backup that lost its lock');
}

test('a busy backup whose lock cannot be refreshed stops with one line, no snapshot, a clean repository', { skip: unavailable ?? false }, async () => {
  const { w, b, snapshots } = await backupLosingItsLock('busy');
  // A MiB of input at each failed refresh: the backup always has work, until it gives up.
  let ended = false;
  void b.exited.then(() => (ended = true));
  for (let seen = 0, n = 0; !ended; n++) {
    b.child.stdin!.write(pseudoRandom(21, `busy-${n}`, 1024 * 1024));
    await waitFor('a refresh to fail, or the backup to stop', () => ended || failedRefreshes(b.events()) > seen);
    seen = failedRefreshes(b.events());
  }
  await assertStopped(w, b, snapshots);
});

test('a backup waiting for input when its lock is lost stops too, and writes no snapshot once the input ends', { skip: unavailable ?? false }, async () => {
  const { w, b, snapshots } = await backupLosingItsLock('waiting');
  b.child.stdin!.write(pseudoRandom(22, 'waiting', 1024 * 1024));
  // Six failed refreshes: over 400 ms without a new lock object, so the backup has given up.
  await b.until('six failed refreshes', (events) => failedRefreshes(events) >= 6);
  b.child.stdin!.end();
  await assertStopped(w, b, snapshots);
});
