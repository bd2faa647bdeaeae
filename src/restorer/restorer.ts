import { chmodSync, closeSync, constants, ftruncateSync, lchownSync, openSync, promises as fs, writeSync } from 'node:fs';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { posix } from '../native/posix.js';
import { Excludes } from '../archiver/excludes.js';
import { ownerDb } from '../platform/owners.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { displayName, type Node } from '../tree/node.js';
import { findNode, loadTree, pathComponents } from '../tree/walk.js';
import { Budget } from '../util/budget.js';
import { readContent } from './content.js';

export interface RestoreOptions {
  target: string;
  /** Restore only this path of the snapshot (its contents, for a directory). */
  subpath?: string;
  includes?: string[];
  excludes?: string[];
  overwrite?: boolean;
  /** Use the stored uid/gid even where the stored user/group name exists here under another id. */
  numericOwner?: boolean;
  signal?: AbortSignal;
  onError?: (path: string, message: string) => void;
  onProgress?: (stats: Readonly<RestoreStats>, currentPath: string) => void;
}

export interface RestoreStats {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
  errors: number;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
/** Files restored at once. */
const FILES_IN_FLIGHT = 8;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** A directory of the target, created on first need so that filters leave no empty parents. */
interface DirState {
  dest: Buffer;
  node: Node | null;
  created: boolean;
  /** Set on first need; concurrent restores of its files share it. */
  creating?: Promise<void>;
  parent: DirState | null;
}

/**
 * Recreates a snapshot (or part of it) under a target directory: content verified blob by
 * blob, sparse files with their holes, hard links as links, then ownership, mode and
 * nanosecond times; directories' metadata last, after their contents are written.
 */
export async function restore(repo: Repository, snapshot: Snapshot, opts: RestoreOptions): Promise<RestoreStats> {
  const restorer = new Restorer(repo, opts);
  await restorer.run(snapshot);
  return restorer.stats;
}

class Restorer {
  readonly stats: RestoreStats = { files: 0, dirs: 0, others: 0, bytes: 0, errors: 0 };
  private readonly includes: Excludes;
  private readonly excludes: Excludes;
  private readonly hardlinks = new Map<string, Buffer>();
  private readonly owners = ownerDb();
  private readonly isRoot = process.getuid?.() === 0;
  private readonly files = new Budget(FILES_IN_FLIGHT);
  /** The first fatal error of a file restored in the background. */
  private failure: unknown;

  constructor(
    private readonly repo: Repository,
    private readonly opts: RestoreOptions,
  ) {
    this.includes = new Excludes(opts.includes ?? []);
    this.excludes = new Excludes(opts.excludes ?? []);
  }

  async run(snapshot: Snapshot): Promise<void> {
    const root = Buffer.from(snapshot.tree, 'hex');
    const sub = this.opts.subpath ?? '/';
    const top: DirState = { dest: Buffer.from(this.opts.target), node: null, created: false, parent: null };
    const start = pathComponents(sub);
    const node = start.length ? await findNode(this.repo, root, sub) : null;
    const base = '/' + start.map((c) => c.toString()).join('/');
    if (node && node.type !== 'dir') {
      await this.restoreNode(node, top, base, this.includes.empty);
      return;
    }
    const tree = node ? node.subtree! : root;
    await this.restoreDir(tree, top, base === '/' ? '' : base, this.includes.empty);
  }

  private async restoreDir(tree: Buffer, dir: DirState, snapPath: string, included: boolean): Promise<void> {
    let nodes: Node[];
    try {
      nodes = await loadTree(this.repo, tree);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.error(dir.dest, `contents lost: ${err.message}`);
      return;
    }
    // Files are restored several at a time (each mostly waits on blob reads and syscalls); the
    // directory's own metadata comes after all of them. Hard-linked files go one by one, so
    // that the first name exists before the others link to it.
    const running: Promise<void>[] = [];
    try {
      for (const node of nodes) {
        if (this.opts.signal?.aborted) throw new ScrateError('interrupted', ExitCode.interrupted);
        if (this.failure !== undefined) throw this.failure;
        const snapChild = `${snapPath}/${node.name.toString()}`;
        if (node.type !== 'file' || node.links > 1) {
          await this.restoreNode(node, dir, snapChild, included);
          continue;
        }
        await this.files.admit(1);
        const done = this.restoreNode(node, dir, snapChild, included).finally(() => this.files.release(1));
        done.catch((err: unknown) => (this.failure ??= err)); // stops the walk; awaited below too
        running.push(done);
      }
    } finally {
      await Promise.allSettled(running);
    }
    await Promise.all(running);
  }

  private async restoreNode(node: Node, dir: DirState, snapPath: string, inherited: boolean): Promise<void> {
    // A tree is data from the repository: a name that is not one path component would write
    // outside the target.
    if (node.name.length === 0 || node.name.includes(0x2f) || node.name.includes(0) || node.name.equals(DOT) || node.name.equals(DOTDOT)) {
      this.error(Buffer.concat([dir.dest, Buffer.from('/'), node.name]), 'refusing an entry whose name is not a single path component');
      return;
    }
    const name = node.name.toString();
    if (this.excludes.excluded(snapPath, name)) return;
    const included = inherited || this.includes.excluded(snapPath, name);
    const dest = Buffer.concat([dir.dest, Buffer.from('/'), node.name]);
    if (node.type === 'dir') {
      const child: DirState = { dest, node, created: false, parent: dir };
      if (included) await this.ensureDir(child);
      if (node.subtree) await this.restoreDir(node.subtree, child, snapPath, included);
      if (child.created) {
        await this.applyMetadata(dest, node);
        this.stats.dirs++;
      }
      return;
    }
    if (!included) return;
    await this.ensureDir(dir);
    this.opts.onProgress?.(this.stats, snapPath);
    try {
      await this.create(dest, node);
    } catch (err) {
      // A damaged or lost blob costs only its file: report it, leave no half-written file, go on.
      if (err instanceof IntegrityError) {
        await fs.rm(dest, { force: true });
        this.error(dest, err.message);
        return;
      }
      if (err instanceof ScrateError) throw err;
      this.error(dest, (err as NodeJS.ErrnoException).code ?? String(err));
    }
  }

  /** Creates the directory once, however many files restored at once need it. */
  private ensureDir(dir: DirState): Promise<void> {
    dir.creating ??= this.createDir(dir);
    return dir.creating;
  }

  private async createDir(dir: DirState): Promise<void> {
    if (dir.parent) await this.ensureDir(dir.parent);
    try {
      await fs.mkdir(dir.dest, { recursive: dir.parent === null, mode: 0o700 });
    } catch (err) {
      const st = await fs.lstat(dir.dest).catch(() => null);
      if (!st?.isDirectory()) {
        if (!st || !this.opts.overwrite) throw this.conflict(dir.dest, err);
        await fs.rm(dir.dest);
        await fs.mkdir(dir.dest, { mode: 0o700 });
      }
    }
    dir.created = true;
  }

  private conflict(dest: Buffer, err: unknown): ScrateError {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return new ScrateError(`refusing to overwrite ${displayName(dest)}`, ExitCode.fatal, 'restore into an empty directory, or pass --overwrite');
    return new ScrateError(`cannot create ${displayName(dest)}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }

  private async create(dest: Buffer, node: Node): Promise<void> {
    const linkKey = `${node.deviceId}:${node.inode}`;
    const first = node.links > 1 ? this.hardlinks.get(linkKey) : undefined;
    try {
      if (first) {
        await fs.link(first, dest);
        this.stats.files++;
        return;
      }
      await this.createNew(dest, node);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!this.opts.overwrite) throw this.conflict(dest, err);
      await fs.rm(dest, { recursive: true });
      return this.create(dest, node);
    }
    if (node.type === 'file' && node.links > 1) this.hardlinks.set(linkKey, dest);
    await this.applyMetadata(dest, node);
  }

  private async createNew(dest: Buffer, node: Node): Promise<void> {
    switch (node.type) {
      case 'file':
        await this.writeFile(dest, node);
        this.stats.files++;
        return;
      case 'symlink':
        await fs.symlink(node.linkTarget ?? Buffer.alloc(0), dest);
        break;
      case 'fifo':
        posix.mknod(dest, S_IFIFO | 0o600, 0n);
        break;
      case 'chardev':
      case 'blockdev':
        posix.mknod(dest, (node.type === 'chardev' ? S_IFCHR : S_IFBLK) | 0o600, node.rdev ?? 0n);
        break;
      default:
        throw new ScrateError(`unknown node type ${node.type as string} at ${displayName(dest)}`);
    }
    this.stats.others++;
  }

  // Files and metadata are written with plain system calls (see DESIGN.md: a thread-pool
  // hand-off per call costs more than the call); only blob reads are asynchronous.
  private async writeFile(dest: Buffer, node: Node): Promise<void> {
    const fd = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      let offset = 0;
      for await (const { data, zero } of readContent(this.repo, node.content ?? [])) {
        if (!node.sparse) {
          writeAll(fd, data, offset);
        } else if (!zero) {
          // Zero blocks of a file that had holes become holes again: not written, the final
          // truncate sets the size.
          for (const [from, to] of nonZeroRuns(data, offset)) writeAll(fd, data.subarray(from, to), offset + from);
        }
        offset += data.length;
        this.stats.bytes += data.length;
      }
      ftruncateSync(fd, offset);
    } finally {
      closeSync(fd);
    }
  }

  private async applyMetadata(dest: Buffer, node: Node): Promise<void> {
    const [uid, gid] = this.owner(node);
    try {
      // Ownership first: chown clears setuid/setgid, so the mode must come after it.
      lchownSync(dest, uid, gid);
    } catch (err) {
      if (this.isRoot) this.error(dest, `cannot set owner: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      if (node.type !== 'symlink') chmodSync(dest, node.mode);
      posix.setTimes(dest, node.mtimeNs, node.mtimeNs, false);
    } catch (err) {
      this.error(dest, `cannot set metadata: ${(err as NodeJS.ErrnoException).code}`);
    }
  }

  /** Like tar: a stored name that exists here wins over the stored number, unless --numeric-owner. */
  private owner(node: Node): [number, number] {
    if (this.opts.numericOwner) return [node.uid, node.gid];
    const uid = node.user === undefined ? undefined : this.owners.uidOf(node.user);
    const gid = node.group === undefined ? undefined : this.owners.gidOf(node.group);
    return [uid ?? node.uid, gid ?? node.gid];
  }

  private error(dest: Buffer, message: string): void {
    this.stats.errors++;
    this.opts.onError?.(displayName(dest), message);
  }
}

export function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Filesystems allocate in blocks of this size (or a divisor of it): a hole is made of whole blocks. */
const HOLE_BLOCK = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK);

/**
 * The [from, to) ranges of `data` that are not all-zero, cut at file offsets that are multiples
 * of HOLE_BLOCK (data starts at file offset `position`), adjacent ranges merged.
 */
function* nonZeroRuns(data: Buffer, position: number): Generator<[number, number]> {
  let runStart = -1;
  let at = 0;
  while (at < data.length) {
    const end = Math.min(data.length, at + HOLE_BLOCK - ((position + at) % HOLE_BLOCK));
    const zero = data.compare(ZEROS, 0, end - at, at, end) === 0;
    if (!zero && runStart < 0) runStart = at;
    if (zero && runStart >= 0) {
      yield [runStart, at];
      runStart = -1;
    }
    at = end;
  }
  if (runStart >= 0) yield [runStart, data.length];
}
