import { ExitCode, ScrateError } from '../errors.js';
import { shortId } from '../repository/ids.js';
import { findSnapshot } from '../snapshot/snapshot.js';
import { volumeImage } from './head.js';
import { MapExport } from './read-only.js';
import type { Lock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listenControl, requestCommit } from './control.js';
import type { BlockExport } from './nbd/export.js';
import { openVolume, volumeCacheKey, type OpenVolume, type OpenVolumeOptions } from './open.js';
import type { VolumeEntry, VolumeRecord } from './record.js';

/** A volume held for writing, as a front-end sees it. */
export interface ServedVolume {
  exported: BlockExport;
  /** A commit of the volume as it is now; resolves with the snapshot's ID. */
  commit(tags: readonly string[]): Promise<string>;
}

/** Serves a volume until `signal` aborts (or ends by itself, as an unmount does). */
export type FrontEnd = (served: ServedVolume, signal: AbortSignal) => Promise<void>;

export interface RunVolumeOptions extends OpenVolumeOptions {
  /** Commit on this period when something was written since the last commit. */
  commitEveryMs?: number;
  /** Aborted by a signal (stop, uploading everything first) or by the lock's loss. */
  signal: AbortSignal;
  /** Aborted by the lock's loss alone: stop at once, even while uploading what is left. */
  lockLost: AbortSignal;
  onInfo: (message: string) => void;
}

/**
 * Holds a volume for writing and serves it through `frontEnd` until stopped: the one-writer
 * lock, the cache replayed, the control socket for `volume commit`, periodic commits; at the
 * end every cached block is uploaded and a last head recorded. A lost lock stops at once
 * instead (another may hold the volume soon): the cache stays for this host's next serve.
 */
export async function runVolume(repo: Repository, entry: VolumeEntry, lock: Lock, frontEnd: FrontEnd, opts: RunVolumeOptions): Promise<void> {
  const { signal } = opts;
  const { record } = entry;
  let opened: OpenVolume | undefined;
  try {
    opened = await openVolume(repo, lock, entry, opts);
    if (opened.replayed) opts.onInfo(`replayed ${opened.replayed} cached writes of volume ${record.name} left by an earlier serve`);
    const { uploader, volume } = opened;
    const control = await listenControl(opened.cacheKey, (tags) => uploader.commit(tags));
    let committed = volume.changes;
    const timer =
      opts.commitEveryMs &&
      setInterval(() => {
        if (volume.changes === committed) return;
        committed = volume.changes;
        uploader.commit(['auto']).catch((err: Error) => opts.onInfo(`periodic commit failed: ${err.message}`));
      }, opts.commitEveryMs);
    try {
      await frontEnd({ exported: volume, commit: (tags) => uploader.commit(tags) }, signal);
    } finally {
      if (timer) clearInterval(timer);
      control.close();
      volume.stop('the volume is no longer served');
    }
    // The lock lost: another may hold the volume soon, so nothing more is uploaded, now or while draining.
    if (opts.lockLost.aborted) throw opts.lockLost.reason;
    const left = uploader.backlog;
    if (left) opts.onInfo(`uploading ${left} cached blocks of volume ${record.name}`);
    const lost = new Promise<never>((_, reject) => opts.lockLost.addEventListener('abort', () => reject(opts.lockLost.reason), { once: true }));
    await Promise.race([opened.close(), lost]);
    opened = undefined;
  } finally {
    await opened?.abandon();
  }
  if (signal.aborted) throw signal.reason;
}

/** Asks the serve of the volume on this host for a commit now; undefined when it is not served here. */
export function commitServed(repo: Repository, record: VolumeRecord, tags: string[]): Promise<string | undefined> {
  return requestCommit(volumeCacheKey(repo, record.volume), tags);
}

/**
 * A commit made here, under the volume's lock, after replaying what this host's cache holds
 * (nobody serves the volume).
 */
export async function commitHere(repo: Repository, entry: VolumeEntry, lock: Lock, tags: string[], opts: RunVolumeOptions): Promise<string> {
  let snapshot: string | undefined;
  await runVolume(
    repo,
    entry,
    lock,
    async (served) => {
      snapshot = await served.commit(tags);
    },
    opts,
  );
  if (!snapshot) throw new ScrateError('the commit was not made');
  return snapshot;
}

/**
 * The version of a volume a read-only serve shows: a commit (`at`, a snapshot of this volume)
 * or its head. Never changes while served, so it needs neither cache nor the volume's lock.
 */
export async function versionExport(repo: Repository, record: VolumeRecord, at: string | undefined, readCacheBytes: number): Promise<BlockExport> {
  if (at === undefined) {
    const what = `the head of volume ${record.name}`;
    const reader = repo.reader(repo.self);
    return new MapExport(reader, record.name, `${what} (read-only)`, await volumeImage(reader, record.tree, what), readCacheBytes);
  }
  const found = await findSnapshot(repo, at);
  if (found.snapshot.volume !== record.volume) throw new ScrateError(`snapshot ${shortId(found.id)} is not a commit of volume ${record.name}`, ExitCode.fatal, `list them with \`scrate snapshots --tag volume --path /${record.name}\``);
  const what = `commit ${shortId(found.id)} of volume ${record.name}`;
  const reader = repo.reader(found.writer);
  return new MapExport(reader, record.name, `${what} (read-only)`, await volumeImage(reader, found.snapshot.tree, what), readCacheBytes);
}
