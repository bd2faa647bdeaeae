import { ScrateError } from '../errors.js';
import { Lock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listenControl, requestCommit } from './control.js';
import type { BlockExport } from './nbd/export.js';
import { openVolume, volumeCacheKey, type OpenVolume, type OpenVolumeOptions } from './open.js';
import type { VolumeRecord } from './record.js';

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
  signal: AbortSignal;
  onInfo: (message: string) => void;
}

/**
 * Holds a volume for writing and serves it through `frontEnd` until stopped: the one-writer
 * lock, the cache replayed, the control socket for `volume commit`, periodic commits; at the
 * end every cached block is uploaded and a last head recorded. A lost lock stops at once
 * instead (another may hold the volume soon): the cache stays for this host's next serve.
 */
export async function runVolume(repo: Repository, record: VolumeRecord, frontEnd: FrontEnd, opts: RunVolumeOptions): Promise<void> {
  const lost = new AbortController();
  const lock = await Lock.acquire(repo, false, (err) => lost.abort(err), { id: record.volume, name: record.name });
  const signal = AbortSignal.any([opts.signal, lost.signal]);
  let opened: OpenVolume | undefined;
  try {
    opened = await openVolume(repo, lock, record, opts);
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
    if (lost.signal.aborted) throw lost.signal.reason;
    const left = uploader.backlog;
    if (left) opts.onInfo(`uploading ${left} cached blocks of volume ${record.name}`);
    await opened.close();
    opened = undefined;
  } finally {
    await opened?.abandon();
    await lock.release();
  }
  if (signal.aborted) throw signal.reason;
}

/**
 * A commit of a volume now: asked of the serve on this host when there is one, else made
 * here under the volume's lock (after replaying what this host's cache holds). Another
 * host's serve holds the lock: that is exit 11, naming it.
 */
export async function commitVolume(repo: Repository, record: VolumeRecord, tags: string[], opts: RunVolumeOptions): Promise<string> {
  const asked = await requestCommit(volumeCacheKey(repo, record.volume), tags);
  if (asked) return asked;
  let snapshot: string | undefined;
  await runVolume(
    repo,
    record,
    async (served) => {
      snapshot = await served.commit(tags);
    },
    opts,
  );
  if (!snapshot) throw new ScrateError('the commit was not made');
  return snapshot;
}
