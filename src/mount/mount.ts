import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { describeError, ExitCode, ScrateError } from '../errors.js';
import { fuse, FuseOp, type FuseHandler } from '../native/fuse.js';
import { errnoCode } from '../native/posix.js';
import type { Repository } from '../repository/repository.js';
import { SnapshotFilesystem } from './filesystem.js';

export interface MountOptions {
  /** Let users other than the one mounting in (FUSE's allow_other; for a non-root user, /etc/fuse.conf must allow it). */
  allowOther?: boolean;
  /** Aborted (Ctrl-C, SIGTERM, a lost lock): unmount and end with its reason. */
  signal: AbortSignal;
  onWarning: (message: string) => void;
  /** Called once the filesystem is mounted. */
  onMounted?: (mountpoint: string) => void;
}

/** The kernel's read-ahead for the mount (KiB): larger requests, fewer round trips to JavaScript. */
const READ_AHEAD_KB = 1024;
/** How often the mount is looked for: one detached from outside ends the command within this. */
const DETACH_POLL_MS = 500;

/**
 * Mounts the repository (its index not yet loaded: mounting is instant, reads wait for the
 * index) and serves it until the mount ends from outside (`fusermount -u`, `umount`), which
 * returns, or `signal` aborts, which throws its reason. Either way nothing stays mounted.
 */
export async function serveMount(repo: Repository, mountpoint: string, opts: MountOptions): Promise<void> {
  const dir = path.resolve(mountpoint);
  await checkMountpoint(dir);
  const index = repo.loadIndex((m) => opts.onWarning(m));
  index.catch(() => undefined); // raised below
  const filesystem = new SnapshotFilesystem(repo, index, { onWarning: opts.onWarning });
  try {
    // A snapshot's setuid files and device nodes are shown, never honoured: whoever wrote the
    // repository would otherwise choose what runs as root and which disks can be opened.
    const session = { ...opts, options: ['ro', 'nosuid', 'nodev', 'fsname=scrate', 'subtype=scrate', 'default_permissions'], writable: false };
    await runFuse(dir, session, (op, req, ino, a, b, data) => filesystem.handle(op, req, ino, a, b, data), index.then(() => new Promise<never>(() => undefined)));
  } finally {
    await filesystem.close();
  }
}

export interface FuseSession {
  /** libfuse's -o options; allow_other is added when `allowOther` asks. */
  options: string[];
  /** Whether the filesystem takes writes (fuse.ts: mount). */
  writable: boolean;
  allowOther?: boolean;
  /** Aborted: unmount and end with its reason. */
  signal: AbortSignal;
  /** Called once the filesystem is mounted. */
  onMounted?: (mountpoint: string) => void;
}

/**
 * The one way a FUSE filesystem of ours is served: mounts `dir` (absolute, and passed by
 * checkMountpoint before whatever the filesystem starts up), hands every request to `handler` until the mount ends from outside (`fusermount -u`,
 * `umount`, a lazy detach), which returns, or `session.signal` aborts or `failed` rejects,
 * which throw their reason. Either way nothing stays mounted when it settles.
 */
export async function runFuse(dir: string, session: FuseSession, handler: FuseHandler, failed: Promise<never> = new Promise(() => undefined)): Promise<void> {
  let ended!: (errno: number) => void;
  const outside = new Promise<number>((resolve) => (ended = resolve));
  const options = [...session.options, ...(session.allowOther ? ['allow_other'] : [])].join(',');
  try {
    fuse.mount(dir, options, (op, req, ino, a, b, data, c) => (op === FuseOp.exit ? ended(a) : handler(op, req, ino, a, b, data, c)), session.writable);
  } catch (err) {
    throw new ScrateError(`cannot mount at ${dir}: ${(err as Error).message}`);
  }
  let watch: NodeJS.Timeout | undefined;
  try {
    const device = await mountedDevice(dir);
    await raiseReadAhead(device);
    // Detached lazily (`umount -l`, `fusermount -uz`) while a process still sits in it: the
    // kernel keeps the connection until that process leaves, but the mount is gone, and so is its server.
    const detached = new Promise<number>((resolve) => {
      watch = setInterval(() => void isMounted(device).then((mounted) => mounted || resolve(0)), DETACH_POLL_MS);
    });
    session.onMounted?.(dir);
    const errno = await Promise.race([outside, detached, aborted(session.signal), failed]);
    if (errno !== 0) throw new ScrateError(`the FUSE connection failed: ${errnoCode(errno)}`);
  } finally {
    clearInterval(watch);
    fuse.unmount();
  }
}

/** A clear error for each way a mountpoint can be unusable, before libfuse says less clearly. */
export async function checkMountpoint(dir: string): Promise<void> {
  const st = await fs.stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new ScrateError(`mountpoint ${dir} does not exist`, ExitCode.fatal, 'create the directory first');
    if (err.code === 'ENOTCONN') throw new ScrateError(`mountpoint ${dir} is a FUSE mount whose server is gone`, ExitCode.fatal, `unmount it with \`fusermount -u ${dir}\``);
    throw new ScrateError(`mountpoint ${dir}: ${describeError(err)}`);
  });
  if (!st.isDirectory()) throw new ScrateError(`mountpoint ${dir} is not a directory`);
  if ((await fs.readdir(dir)).length > 0) throw new ScrateError(`mountpoint ${dir} is not empty`, ExitCode.fatal, 'mount on an empty directory');
  await fs.access('/dev/fuse', constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    throw new ScrateError(`cannot use /dev/fuse: ${describeError(err)}`, ExitCode.fatal, 'load the fuse kernel module (modprobe fuse); in a container, pass --device /dev/fuse');
  });
}

/** The mount's device as /proc and /sys name it ("0:52"). */
async function mountedDevice(dir: string): Promise<string> {
  const { dev } = await fs.stat(dir);
  return `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
}

/** Whether a filesystem of this device is mounted in this process's mount namespace (mountinfo's third field). */
async function isMounted(device: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[2] === device);
}

/**
 * FUSE mounts start with the default read-ahead of 128 KiB: a sequential read then costs a
 * request to JavaScript every 128 KiB. Raised where the system lets us (root); else it stays.
 */
async function raiseReadAhead(device: string): Promise<void> {
  await fs.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, `${READ_AHEAD_KB}\n`).catch(() => undefined);
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
