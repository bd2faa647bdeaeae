import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { openBox, sealBox } from '../crypto/keybox.js';
import { counterNonce, deriveKey, open, seal, sha256 } from '../crypto/primitives.js';
import { ExitCode, ScrateError } from '../errors.js';
import { signMessage, verifySignature, verifyingKey } from '../crypto/signing.js';
import { MAX_OBJECT_BYTES } from './limits.js';
import { padJson } from './padding.js';
import type { Repository } from './repository.js';

/**
 * A lock object's content. Shared locks (backup, restore) coexist; an exclusive one (delete)
 * excludes all. Every key reads locks (a write-only host must see an exclusive one), so a lock
 * does not name its host: `host` is a tag under a key of the writer's own, which it recognises
 * and nobody else can test names against; the names are sealed to the repository's public key
 * for full keys. Only full keys take exclusive locks, so one counts only when the admin key
 * signed it: a write-only host cannot stop everyone with one (docs/FORMAT.md §9).
 */
export interface LockInfo {
  /** When it was last written (its holder rewrites it every 5 minutes). */
  time: string;
  /** When its holder took it first: what a prune's two-phase delete waits on. */
  started: string;
  exclusive: boolean;
  pid: number;
  host: string;
  who: string;
  /**
   * A volume's one writer (32 hex, docs/FORMAT.md §9): a shared lock that also excludes every
   * other lock carrying the same volume. Counts only when signed, as exclusive locks.
   */
  volume?: string;
  /** Exclusive and volume locks: Ed25519 by the admin key over the other fields. */
  signature?: string;
}

/** The volume a lock is for: its ID, and its name for messages. */
export interface VolumeClaim {
  id: string;
  name: string;
}

/**
 * How often a holder rewrites its lock. SCRATE_TEST_LOCK_REFRESH_MS shortens it, for tests only
 * (test/lock-loss.test.ts): it changes when this process refreshes and gives up, never when it
 * takes another's lock for stale.
 */
const REFRESH_MS = Number(process.env['SCRATE_TEST_LOCK_REFRESH_MS']) > 0 ? Number(process.env['SCRATE_TEST_LOCK_REFRESH_MS']) : 5 * 60 * 1000;
/** A holder whose lock was not rewritten for this long stops (20 minutes): others take it for stale at STALE_MS. */
const GIVE_UP_MS = 4 * REFRESH_MS;
/** A lock not refreshed for this long belongs to a holder that is gone. */
export const STALE_MS = 30 * 60 * 1000;
const MAGIC = Buffer.from('SCL3');
const HEADER_BYTES = 4 + 32;
const NONCE = counterNonce(0);
const WHO_INFO = 'scrate v3 lock holder';
const SIGNED_AS = 'scrate v3 lock\0';
/** A lock dated later than this from now is treated as stale: it would otherwise never be. */
const FUTURE_SLACK_MS = 24 * 3600 * 1000;

/** This host's tag, under a key of this key's writer. */
export function hostTag(repo: Repository): string {
  return deriveKey(repo.keys.writer.chunkIdKey, Buffer.from(os.hostname()), 'scrate v3 lock host').subarray(0, 16).toString('base64');
}

function signedPart(info: LockInfo): Buffer {
  const { time, started, exclusive, pid, host, who, volume } = info;
  return Buffer.from(SIGNED_AS + JSON.stringify({ time, started, exclusive, pid, host, who, ...(volume !== undefined && { volume }) }));
}

const VOLUME_ID = /^[0-9a-f]{32}$/;

export function encodeLock(repo: Repository, info: LockInfo): Buffer {
  const salt = randomBytes(32);
  const header = Buffer.concat([MAGIC, salt]);
  return Buffer.concat([header, seal(deriveKey(repo.keys.lockKey, salt, 'scrate v3 lock'), NONCE, Buffer.from(JSON.stringify(info)), header)]);
}

export function decodeLock(repo: Repository, bytes: Buffer): LockInfo | null {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 4).equals(MAGIC)) return null;
  const plain = open(deriveKey(repo.keys.lockKey, bytes.subarray(4, HEADER_BYTES), 'scrate v3 lock'), NONCE, bytes.subarray(HEADER_BYTES), bytes.subarray(0, HEADER_BYTES));
  let j: LockInfo | null;
  try {
    j = plain && (JSON.parse(plain.toString('utf8')) as LockInfo);
  } catch {
    return null;
  }
  if (!j || typeof j.time !== 'string' || typeof j.started !== 'string' || typeof j.exclusive !== 'boolean' || !Number.isInteger(j.pid) || typeof j.host !== 'string' || typeof j.who !== 'string') return null;
  const signature = typeof j.signature === 'string' ? Buffer.from(j.signature, 'base64') : Buffer.alloc(0);
  const signed = () => verifySignature(verifyingKey(repo.keys.adminPublic), signedPart(j), signature);
  if (j.exclusive && !signed()) return null;
  // A volume claim nobody with the admin key made is no claim: the lock is a plain shared one.
  if (j.volume !== undefined && (typeof j.volume !== 'string' || !VOLUME_ID.test(j.volume) || !signed())) delete j.volume;
  return j;
}

/** The host and user a lock names, when this key can open them (a full key can, for every writer's lock). */
function namedHolder(repo: Repository, info: LockInfo): { hostname: string; username: string } | null {
  const seal = repo.keys.read?.seal;
  const who = seal ? openBox(Buffer.from(info.who, 'base64'), seal, WHO_INFO) : null;
  try {
    const { hostname, username } = JSON.parse(who?.toString('utf8') ?? 'null') as { hostname: unknown; username: unknown };
    if (typeof hostname === 'string' && typeof username === 'string') return { hostname, username };
  } catch {
    // A holder this key cannot name.
  }
  return null;
}

/** Who holds a lock, as far as this key may know. */
function holder(repo: Repository, info: LockInfo): string {
  const named = namedHolder(repo, info);
  if (named) return `pid ${info.pid} on ${named.hostname} (${named.username})`;
  return info.host === hostTag(repo) ? `pid ${info.pid} on this host` : `pid ${info.pid} on another host`;
}

/**
 * A lock is of this host when its tag (under its writer's key) is this host's for this key, or
 * when the host it names is this one: a full key sees so for every writer's lock, and so takes
 * a dead write-only backup of this host for gone at once.
 */
function ofThisHost(repo: Repository, info: LockInfo): boolean {
  return info.host === hostTag(repo) || namedHolder(repo, info)?.hostname === os.hostname();
}

/**
 * A lock's holder is gone: not refreshed for STALE_MS (or dated absurdly ahead), or a process
 * of this host that no longer exists.
 */
export function isStale(repo: Repository, info: LockInfo, now = Date.now()): boolean {
  const time = Date.parse(info.time);
  if (!Number.isFinite(time) || now - time > STALE_MS || time - now > FUTURE_SLACK_MS) return true;
  if (!ofThisHost(repo, info)) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Every lock this key can read; one it cannot (damaged, planted) is treated as absent. */
export async function listLocks(repo: Repository): Promise<{ name: string; info: LockInfo }[]> {
  const out: { name: string; info: LockInfo }[] = [];
  for (const name of await repo.listNames('locks')) {
    try {
      const info = decodeLock(repo, await repo.backend.load('locks', name, { limit: MAX_OBJECT_BYTES.locks }));
      if (info) out.push({ name, info });
    } catch {
      // Removed by its holder while we listed.
    }
  }
  return out;
}

/** When each live lock of others was taken (ms): a prune's view of the backups running now. */
export async function liveLockStarts(repo: Repository, own?: Lock): Promise<number[]> {
  const starts: number[] = [];
  for (const { name, info } of await listLocks(repo)) {
    // An unreadable start counts as the earliest: that backup may refer to anything.
    if (name !== own?.current && !isStale(repo, info)) starts.push(Number.isFinite(Date.parse(info.started)) ? Date.parse(info.started) : 0);
  }
  return starts;
}

/** The live locks that hold a volume: by volume ID, who holds it and since when. */
export async function volumeHolders(repo: Repository): Promise<Map<string, { holder: string; since: string }>> {
  const out = new Map<string, { holder: string; since: string }>();
  for (const { info } of await listLocks(repo)) if (info.volume && !isStale(repo, info)) out.set(info.volume, { holder: holder(repo, info), since: info.started });
  return out;
}

/** Writes a lock object of this host for process `pid`, held since `started` (for `volume` when given); returns its name. */
export async function saveLock(repo: Repository, exclusive: boolean, pid = process.pid, started = new Date().toISOString(), volume?: string): Promise<string> {
  if ((exclusive || volume !== undefined) && repo.keys.access !== 'full') throw new ScrateError(exclusive ? 'only a full key takes an exclusive lock' : 'only a full key holds a volume');
  const who = sealBox(repo.keys.sealPublic, WHO_INFO, padJson(JSON.stringify({ hostname: os.hostname(), username: os.userInfo().username }), 256));
  const info: LockInfo = { time: new Date().toISOString(), started, exclusive, pid, host: hostTag(repo), who: who.toString('base64'), ...(volume !== undefined && { volume }) };
  if (exclusive || volume !== undefined) info.signature = signMessage(repo.keys.writer.signing, signedPart(info)).toString('base64');
  const bytes = encodeLock(repo, info);
  const name = sha256(bytes).toString('hex');
  await repo.backend.save('locks', name, bytes, { sha256: name });
  return name;
}

/** How often a volume lock taken at the same moment as another's backs off and tries again. */
const VOLUME_RACE_ATTEMPTS = 5;

export class Lock {
  private timer: NodeJS.Timeout | undefined;
  /** The refreshes in turn (the timer's and restart's); never rejects. */
  private refreshing: Promise<void> = Promise.resolve();
  private started = new Date().toISOString();
  private written = Date.now();

  private constructor(
    private readonly repo: Repository,
    private name: string,
    readonly exclusive: boolean,
    private readonly onLost: (err: ScrateError) => void,
    /** The volume this lock holds (its ID), if any. */
    readonly volume?: string,
  ) {}

  /** The lock object's name now (it changes at every refresh). */
  get current(): string {
    return this.name;
  }

  /**
   * Takes the lock, or fails with exit code 11 naming the holder. `onLost` is told when the
   * lock could not be refreshed for so long that others may soon take it for stale: the holder
   * must stop before that. With `volume`, a shared lock that also excludes any other holder of
   * that volume; two taking it at the same moment both see each other, both back off and try
   * again after a random pause, so at most one wins.
   */
  static async acquire(repo: Repository, exclusive: boolean, onLost: (err: ScrateError) => void = () => undefined, volume?: VolumeClaim): Promise<Lock> {
    for (let attempt = 1; ; attempt++) {
      await Lock.checkConflicts(repo, exclusive, undefined, volume);
      const lock = new Lock(repo, '', exclusive, onLost, volume?.id);
      lock.name = await saveLock(repo, exclusive, process.pid, lock.started, volume?.id);
      // Two processes may have checked at the same moment: look again now that ours is visible.
      try {
        await Lock.checkConflicts(repo, exclusive, lock.name, volume);
      } catch (err) {
        await repo.backend.remove('locks', lock.name);
        if (volume && attempt < VOLUME_RACE_ATTEMPTS && err instanceof ScrateError && err.exitCode === ExitCode.locked) {
          await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 450));
          continue;
        }
        throw err;
      }
      lock.timer = setInterval(() => {
        lock.refreshing = lock.refreshing.then(() => lock.refresh()).catch(() => {
          // Tried again next time, until the lock is close to stale: then the holder stops.
          if (Date.now() - lock.written > GIVE_UP_MS) lock.onLost(new ScrateError('the repository lock could not be refreshed for 20 minutes: stopped before others take it for stale'));
        });
      }, REFRESH_MS);
      lock.timer.unref();
      return lock;
    }
  }

  /**
   * For a prune: an exclusive lock when nothing else holds one, else a shared one beside the
   * backups that hold theirs (the prune then deletes only what they cannot need).
   */
  static async acquireForMaintenance(repo: Repository, onLost?: (err: ScrateError) => void): Promise<Lock> {
    try {
      return await Lock.acquire(repo, true, onLost);
    } catch (err) {
      if (!(err instanceof ScrateError) || err.exitCode !== ExitCode.locked || (await listLocks(repo)).some(({ info }) => info.exclusive && !isStale(repo, info))) throw err;
      return Lock.acquire(repo, false, onLost);
    }
  }

  private static async checkConflicts(repo: Repository, exclusive: boolean, own: string | undefined, volume: VolumeClaim | undefined): Promise<void> {
    for (const { name, info } of await listLocks(repo)) {
      if (name === own || isStale(repo, info)) continue;
      if (exclusive || info.exclusive) {
        throw new ScrateError(
          `repository is locked ${info.exclusive ? 'exclusively ' : ''}by ${holder(repo, info)} since ${info.time}`,
          ExitCode.locked,
          'if that process is gone, `scrate unlock` removes stale locks',
        );
      }
      if (volume && info.volume === volume.id) {
        throw new ScrateError(`${volume.name} is served by ${holder(repo, info)} since ${info.started}`, ExitCode.locked, 'if that process is gone, `scrate unlock` removes stale locks');
      }
    }
  }

  private async refresh(): Promise<void> {
    const old = this.name;
    this.name = await saveLock(this.repo, this.exclusive, process.pid, this.started, this.volume);
    this.written = Date.now();
    await this.repo.backend.remove('locks', old);
  }

  /**
   * A refresh that also dates the lock as taken at `t0` (docs/FORMAT.md §9.2): a volume
   * writer that has just recorded, in a head written after t0, everything it referred to before
   * t0 is from then on like a writer that started at t0, so a two-phase prune need not wait for
   * it to end. Never earlier than the lock's own start.
   */
  async restart(t0: Date): Promise<void> {
    const done = this.refreshing.then(async () => {
      if (t0.getTime() > Date.parse(this.started)) this.started = t0.toISOString();
      await this.refresh();
    });
    this.refreshing = done.catch(() => undefined);
    await done;
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
    if (all || isStale(repo, info)) {
      await repo.backend.remove('locks', name);
      n++;
    }
  }
  return n;
}
