import os from 'node:os';
import { ExitCode, ScrateError } from '../errors.js';
import type { Repository } from './repository.js';
import { ObjectKind } from './sealed-object.js';

/** A lock object's content. Shared locks (backup, restore) coexist; an exclusive one (delete) excludes all. */
export interface LockInfo {
  time: string;
  exclusive: boolean;
  hostname: string;
  username: string;
  pid: number;
}

const REFRESH_MS = 5 * 60 * 1000;
/** A lock not refreshed for this long belongs to a holder that is gone. */
export const STALE_MS = 30 * 60 * 1000;

export function isStale(info: LockInfo, now = Date.now()): boolean {
  if (now - Date.parse(info.time) > STALE_MS) return true;
  if (info.hostname !== os.hostname()) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export async function listLocks(repo: Repository): Promise<{ name: string; info: LockInfo }[]> {
  const out: { name: string; info: LockInfo }[] = [];
  for (const name of await repo.listNames('locks')) {
    try {
      out.push({ name, info: JSON.parse((await repo.loadObject('locks', ObjectKind.lock, name)).toString('utf8')) as LockInfo });
    } catch {
      // Removed by its holder while we listed.
    }
  }
  return out;
}

export class Lock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly repo: Repository,
    private name: string,
    private readonly exclusive: boolean,
  ) {}

  /** Takes the lock, or fails with exit code 11 naming the holder. */
  static async acquire(repo: Repository, exclusive: boolean): Promise<Lock> {
    await Lock.checkConflicts(repo, exclusive, undefined);
    const lock = new Lock(repo, await Lock.write(repo, exclusive), exclusive);
    // Two processes may have checked at the same moment: look again now that ours is visible.
    try {
      await Lock.checkConflicts(repo, exclusive, lock.name);
    } catch (err) {
      await repo.backend.remove('locks', lock.name);
      throw err;
    }
    lock.timer = setInterval(() => {
      // A failed refresh is tried again next time; the lock only goes stale after STALE_MS.
      lock.refreshing = lock.refresh().catch(() => undefined);
    }, REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  private static async write(repo: Repository, exclusive: boolean): Promise<string> {
    const info: LockInfo = { time: new Date().toISOString(), exclusive, hostname: os.hostname(), username: os.userInfo().username, pid: process.pid };
    return repo.saveObject('locks', ObjectKind.lock, Buffer.from(JSON.stringify(info)));
  }

  private static async checkConflicts(repo: Repository, exclusive: boolean, own: string | undefined): Promise<void> {
    for (const { name, info } of await listLocks(repo)) {
      if (name === own || isStale(info)) continue;
      if (exclusive || info.exclusive) {
        throw new ScrateError(
          `repository is locked ${info.exclusive ? 'exclusively ' : ''}by pid ${info.pid} on ${info.hostname} (${info.username}) since ${info.time}`,
          ExitCode.locked,
          'if that process is gone, `scrate unlock` removes stale locks',
        );
      }
    }
  }

  private async refresh(): Promise<void> {
    const old = this.name;
    this.name = await Lock.write(this.repo, this.exclusive);
    await this.repo.backend.remove('locks', old);
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    // A refresh under way would leave its new lock behind: let it finish first.
    await this.refreshing;
    await this.repo.backend.remove('locks', this.name);
  }
}

/** Removes stale locks, or every lock with `all`; returns how many were removed. */
export async function removeLocks(repo: Repository, all: boolean): Promise<number> {
  let n = 0;
  for (const { name, info } of await listLocks(repo)) {
    if (all || isStale(info)) {
      await repo.backend.remove('locks', name);
      n++;
    }
  }
  return n;
}
