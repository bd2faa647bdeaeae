import { closeSync, constants, ftruncateSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { checkAborted, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { restoreNative } from '../native/restore.js';
import type { RestoreFilter, Selection } from '../filter/restore-filter.js';
import { ownerDb } from '../platform/owners.js';
import type { BlobReader } from '../repository/repository.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { displayName, type Node } from '../tree/node.js';
import { findNode, loadTree, pathComponents } from '../tree/walk.js';
import { ContentPlan } from './content-plan.js';
import { createFile, errorCode, problem, replacing } from './file-io.js';
import { applyMetadata, creationMode, finishDir, finishFile, type Metadata } from './metadata.js';
import type { JobResult } from './pack-job.js';
import { readImage, writeImage } from './image.js';
import { ContentWriter } from './write-content.js';
import { EventLoopTurns } from '../util/event-loop.js';
import type { ProgressMeter } from '../util/progress.js';

export interface RestoreOptions {
  target: string;
  /** Restore only this path of the snapshot (its contents, for a directory). */
  subpath?: string;
  /** What to restore (--include, --exclude and the like); paths are those below the restored root. */
  filter?: RestoreFilter;
  overwrite?: boolean;
  /** Use the stored uid/gid even where the stored user/group name exists here under another id. */
  numericOwner?: boolean;
  /**
   * The snapshot may come from a compromised host (by default: when a write-only key wrote it).
   * Its setuid/setgid bits are cleared and its device nodes skipped, unless `allowPrivileged`.
   */
  untrusted?: boolean;
  allowPrivileged?: boolean;
  signal?: AbortSignal;
  onError?: (path: string, message: string) => void;
  /** Something restored otherwise than stored, on purpose: not an error. */
  onNote?: (path: string, message: string) => void;
  /** Each file as it is done (the meter below is the cheaper way to follow a restore). */
  onProgress?: (stats: Readonly<RestoreStats>, currentPath: string) => void;
  /** Counted into as files are written; its totals by a count of the snapshot's files beside the restore. */
  progress?: ProgressMeter;
}

export interface RestoreStats {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
  errors: number;
}

const SLASH = Buffer.from('/');

/** An entry the walk comes to: its path as patterns see it, and what the filter makes of it. */
interface Visit extends Selection {
  snapPath: string;
}
/**
 * Blob writes planned before they are carried out. The first batch is small, so that writing
 * starts soon while the walk goes on; batches then double up to a bound on the plan's memory
 * (a few hundred bytes a write) and on the walk's time to plan one: with 262,144 the writers
 * finished the batches under way while the walk was still planning the next, and sat idle
 * (a CPU profile of the kernel tree's restore showed both for ~0.5 s). A pack needed by two
 * batches is read by each.
 */
const FIRST_BATCH_WRITES = 4096;
const MAX_BATCH_WRITES = 32_768;
const MAX_BATCHES_WRITING = 3;
/** See EventLoopTurns. */
const WALK_TURN_MS = 2;
const SETUID_SETGID = 0o6000;

/**
 * A directory of the target, created on first need so that filters leave no empty parents, and
 * held open while the walk is inside it: its entries are created relative to it.
 */
interface DirState {
  /** Relative to the target; empty for the target itself. */
  path: Buffer;
  name: Buffer;
  created: boolean;
  /** Open from its creation until the walk leaves it; -1 otherwise. */
  fd: number;
  parent: DirState | null;
}

/** The first name of a hard-linked file; the others become links to it once it is written. */
interface LinkFirst {
  path: Buffer;
  restored: boolean;
}

/**
 * Recreates a snapshot (or part of it) under a target directory. Every entry is created beneath
 * the target's descriptor without following symlinks (restore.c), so that no tree, however made,
 * and nothing already in the target leads a write outside it. The walk creates directories,
 * symlinks and device nodes and plans the files' content in batches; each batch is written
 * while the walk goes on: every pack range it needs is read once and its blobs written to every
 * file that needs them (content verified blob by blob, sparse files with their holes, each file
 * completed with ownership, mode and nanosecond times by the thread writing its last blob).
 * Batch by batch, in order, come then its hard links and last its directories' metadata, after
 * everything inside them is written.
 */
export async function restore(reader: BlobReader, snapshot: Snapshot, opts: RestoreOptions): Promise<RestoreStats> {
  const restorer = new Restorer(reader, opts);
  try {
    await restorer.run(snapshot);
  } finally {
    await restorer.close();
  }
  return restorer.stats;
}

class Restorer {
  readonly stats: RestoreStats = { files: 0, dirs: 0, others: 0, bytes: 0, errors: 0 };
  /** Undefined when everything is restored. */
  private readonly filter: RestoreFilter | undefined;
  private readonly owners = ownerDb();
  private readonly linkFirsts = new Map<string, LinkFirst>();
  /** Trees being loaded ahead of the walk, by ID. */
  private readonly treesAhead = new Map<string, Promise<Node[]>>();
  private readonly content: ContentWriter;
  /** The walk's turns for the event loop: pack reads complete and workers' results arrive while it plans. */
  private readonly turns = new EventLoopTurns(WALK_TURN_MS);
  /** Batches being written, oldest first; each settles once its directories are done. */
  private readonly batches: Promise<void>[] = [];
  private readonly overwrite: boolean;
  /** Setuid/setgid bits cleared and device nodes skipped: see RestoreOptions.untrusted. */
  private readonly unprivileged: boolean;
  private clearedNoted = false;
  private readonly top: DirState = { path: Buffer.alloc(0), name: Buffer.alloc(0), created: false, fd: -1, parent: null };
  private batchLimit = FIRST_BATCH_WRITES;
  private plan: ContentPlan;
  /** Of the batch: the hard-link group of planned files, by file number. */
  private planLinks = new Map<number, LinkFirst>();
  /** Of the batch: further names of hard-linked files, to link once the first is written. */
  private links: { path: Buffer; first: LinkFirst }[] = [];
  /** Of the batch: directories whose contents are planned, in the order to set their metadata. */
  private dirs: { path: Buffer; node: Node }[] = [];

  constructor(
    private readonly reader: BlobReader,
    private readonly opts: RestoreOptions,
  ) {
    this.filter = opts.filter?.empty ? undefined : opts.filter;
    this.overwrite = opts.overwrite ?? false;
    // A write-only writer's snapshot may come from a compromised host.
    this.unprivileged = (opts.untrusted ?? reader.writer.access === 'write-only') && !(opts.allowPrivileged ?? false);
    this.plan = new ContentPlan(reader);
    this.content = new ContentWriter(reader, { overwrite: this.overwrite, signal: opts.signal });
  }

  async run(snapshot: Snapshot): Promise<void> {
    const root = Buffer.from(snapshot.tree, 'hex');
    const sub = this.opts.subpath ?? '/';
    const start = pathComponents(sub);
    const node = start.length ? await findNode(this.reader, root, sub) : null;
    const counting = new AbortController();
    const { progress } = this.opts;
    if (progress) {
      const counted = node && node.type !== 'dir' ? Promise.resolve(this.count(node, this.select(node, `/${node.name.toString()}`), progress)) : this.countAhead(node ? node.subtree! : root, '', progress, counting.signal);
      counted.then(() => (progress.totalsFinal = !counting.signal.aborted)).catch(() => undefined);
    }
    try {
      // Patterns see the restored part as the snapshot's root, as restic's SNAPSHOT:subfolder does.
      if (node && node.type !== 'dir') await this.restoreNode(node, this.top, this.select(node, `/${node.name.toString()}`));
      else await this.restoreDir(node ? node.subtree! : root, this.top, '');
    } finally {
      counting.abort();
    }
    await this.endBatch();
    while (this.batches.length) await this.batches.shift();
  }

  /** After the batches under way have settled, whether or not the restore failed. */
  async close(): Promise<void> {
    await Promise.allSettled(this.batches);
    await this.content.close();
    this.leave(this.top);
  }

  private async restoreDir(tree: Buffer, dir: DirState, snapPath: string): Promise<void> {
    let nodes: Node[];
    try {
      nodes = await this.loadTree(tree);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.error(dir.path, `contents lost: ${err.message}`);
      return;
    }
    const visits = nodes.map((node) => this.select(node, `${snapPath}/${node.name.toString()}`));
    for (let i = 0; i < nodes.length; i++) if (nodes[i]!.subtree && visits[i]!.descend) this.loadTreeAhead(nodes[i]!.subtree!);
    for (let i = 0; i < nodes.length; i++) {
      checkAborted(this.opts.signal);
      const turn = this.turns.due();
      if (turn) await turn;
      await this.restoreNode(nodes[i]!, dir, visits[i]!);
    }
  }

  private select(node: Node, snapPath: string): Visit {
    return { snapPath, ...(this.filter?.select(snapPath, node.type === 'dir') ?? { selected: true, descend: true }) };
  }

  /**
   * Counts the files and bytes the restore will write, as the walk will find them, into the
   * meter's totals: what its percent and ETA come from. A tree that cannot be read is left out
   * (the walk reports it).
   */
  private async countAhead(tree: Buffer, snapPath: string, meter: ProgressMeter, signal: AbortSignal): Promise<void> {
    let nodes: Node[];
    try {
      nodes = await loadTree(this.reader, tree);
    } catch {
      return;
    }
    for (const node of nodes) {
      if (signal.aborted) return;
      const visit = this.select(node, `${snapPath}/${node.name.toString()}`);
      if (node.type === 'dir' && node.subtree && visit.descend) await this.countAhead(node.subtree, visit.snapPath, meter, signal);
      else this.count(node, visit, meter);
    }
  }

  private count(node: Node, { selected }: Visit, meter: ProgressMeter): void {
    if (node.type !== 'file' || !selected) return;
    meter.totalFiles++;
    meter.totalBytes += node.size;
  }

  /** `node` in `dir`; its name is one path component (decodeTree sees to it). */
  private async restoreNode(node: Node, dir: DirState, { snapPath, selected, descend }: Visit): Promise<void> {
    const path = dir.path.length ? Buffer.concat([dir.path, SLASH, node.name]) : node.name;
    if (node.type === 'dir') {
      const child: DirState = { path, name: node.name, created: false, fd: -1, parent: dir };
      try {
        if (selected) this.ensureDir(child);
        if (descend && node.subtree) await this.restoreDir(node.subtree, child, snapPath);
      } finally {
        this.leave(child);
      }
      if (child.created) this.dirs.push({ path, node });
      return;
    }
    if (!selected) return;
    this.ensureDir(dir);
    try {
      if (node.blockMap) await this.restoreVolumeFile(dir, path, node);
      else if (node.type === 'file') this.planFile(dir, path, node);
      else this.createOther(dir, path, node);
    } catch (err) {
      if (errorCode(err) === 'EEXIST') throw this.conflict(path, err);
      if (err instanceof IntegrityError) this.error(path, err.message);
      else if (err instanceof ScrateError) throw err;
      else this.error(path, problem(err));
    }
    if (this.plan.size >= this.batchLimit) await this.endBatch();
  }

  /**
   * Starts loading the tree of a directory the walk will enter, so that the walk rarely waits
   * for a read.
   */
  private loadTreeAhead(id: Buffer): void {
    const key = id.toString('hex');
    if (this.treesAhead.has(key)) return;
    const nodes = loadTree(this.reader, id);
    nodes.catch(() => undefined); // observed when the walk gets there
    this.treesAhead.set(key, nodes);
  }

  private loadTree(id: Buffer): Promise<Node[]> {
    const key = id.toString('hex');
    const ahead = this.treesAhead.get(key);
    this.treesAhead.delete(key);
    return ahead ?? loadTree(this.reader, id);
  }

  /** Creates and opens the directory (and its parents) once, however many entries need it. */
  private ensureDir(dir: DirState): void {
    if (dir.created) return;
    const { parent } = dir;
    if (parent) {
      this.ensureDir(parent);
      try {
        dir.fd = replacing(parent.fd, dir.name, this.overwrite, () => restoreNative.makeDir(parent.fd, dir.name, 0o700));
      } catch (err) {
        throw this.conflict(dir.path, err);
      }
    } else {
      dir.fd = this.openTarget();
    }
    dir.created = true;
  }

  /** Closes a directory the walk leaves: its metadata is set by path once its contents are written. */
  private leave(dir: DirState): void {
    if (dir.fd === -1) return;
    closeSync(dir.fd);
    dir.fd = -1;
  }

  /**
   * The target directory, created if need be and opened once: the user's path, resolved as
   * usual (it may be a symlink to the directory meant); everything below it is resolved beneath
   * this descriptor.
   */
  private openTarget(): number {
    const target = this.opts.target;
    try {
      mkdirSync(target, { recursive: true, mode: 0o700 });
    } catch (err) {
      // A file where the target should be: the user's own path, and never a directory here.
      if (errorCode(err) !== 'EEXIST' || !this.overwrite) throw this.conflict(this.top.path, err);
      unlinkSync(target);
      mkdirSync(target, { mode: 0o700 });
    }
    try {
      return openSync(target, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (err) {
      throw this.conflict(this.top.path, err);
    }
  }

  private conflict(path: Buffer, err: unknown): ScrateError {
    if (errorCode(err) === 'EEXIST') return new ScrateError(`refusing to overwrite ${this.shown(path)}`, ExitCode.fatal, 'restore into an empty directory, or pass --overwrite');
    return new ScrateError(`cannot create ${this.shown(path)}: ${problem(err)}`);
  }

  /** Plans a file's content, or links it, or (with nothing to write) creates it at once. */
  private planFile(dir: DirState, path: Buffer, node: Node): void {
    const linkKey = `${node.deviceId}:${node.inode}`;
    const first = node.links > 1 ? this.linkFirsts.get(linkKey) : undefined;
    if (first) {
      this.links.push({ path, first });
      return;
    }
    const meta = this.metadata(path, node);
    const { file, length } = this.plan.add(path, node.sparse ?? false, meta, node.content ?? []);
    const link: LinkFirst = { path, restored: false };
    if (node.links > 1) this.linkFirsts.set(linkKey, link);
    if (file !== null) {
      if (node.links > 1) this.planLinks.set(file, link);
      return;
    }
    // Nothing to write (empty, or all holes): created here and now.
    const fd = createFile(dir.fd, node.name, this.overwrite, creationMode(meta));
    try {
      if (length > 0) ftruncateSync(fd, length);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const problems = finishFile(fd, meta);
    link.restored = true;
    this.completed(path, problems);
  }

  /**
   * A volume's image (its content a block map): written here and now, in order, as a disk image
   * restored to a file is; its absent blocks stay holes.
   */
  private async restoreVolumeFile(dir: DirState, path: Buffer, node: Node): Promise<void> {
    const meta = this.metadata(path, node);
    const fd = createFile(dir.fd, node.name, this.overwrite, creationMode(meta));
    try {
      await writeImage(fd, readImage(this.reader, node), { device: false, size: node.size, signal: this.opts.signal });
      ftruncateSync(fd, node.size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.stats.bytes += node.size;
    this.completed(path, finishFile(fd, meta));
  }

  private createOther(dir: DirState, path: Buffer, node: Node): void {
    const { fd } = dir;
    const { name } = node;
    switch (node.type) {
      case 'symlink':
        replacing(fd, name, this.overwrite, () => restoreNative.symlink(node.linkTarget ?? Buffer.alloc(0), fd, name));
        break;
      case 'fifo':
        replacing(fd, name, this.overwrite, () => restoreNative.mknod(fd, name, constants.S_IFIFO | 0o600, 0n));
        break;
      case 'chardev':
      case 'blockdev':
        if (this.unprivileged) {
          this.opts.onNote?.(this.shown(path), 'device node not restored: the snapshot was written with a write-only key (--allow-privileged restores it)');
          return;
        }
        replacing(fd, name, this.overwrite, () => restoreNative.mknod(fd, name, (node.type === 'chardev' ? constants.S_IFCHR : constants.S_IFBLK) | 0o600, node.rdev ?? 0n));
        break;
    }
    for (const problem of applyMetadata(fd, name, this.metadata(path, node))) this.error(path, problem);
    this.stats.others++;
  }

  /**
   * Starts writing the batch planned so far. Three batches are written at most at once (with
   * two, the writers ran dry while the next was planned), so at most four plans are in memory;
   * a failure of any stops the walk here.
   */
  private async endBatch(): Promise<void> {
    while (this.batches.length >= MAX_BATCHES_WRITING) await this.batches.shift();
    const { plan, planLinks, links, dirs } = this;
    this.plan = new ContentPlan(this.reader);
    this.planLinks = new Map();
    this.links = [];
    this.dirs = [];
    this.batchLimit = Math.min(2 * this.batchLimit, MAX_BATCH_WRITES);
    const target = this.top.fd;
    const content = plan.empty ? Promise.resolve() : this.content.write(plan, target, (result) => this.collect(plan, planLinks, result));
    const previous = this.batches.at(-1);
    const done = (async () => {
      try {
        await content;
      } finally {
        await previous;
      }
      this.link(target, links);
      for (const { path, node } of dirs) {
        for (const problem of finishDir(target, path, this.metadata(path, node))) this.error(path, problem);
        this.stats.dirs++;
      }
    })();
    done.catch(() => undefined); // awaited in turn by the walk
    this.batches.push(done);
  }

  private link(target: number, links: { path: Buffer; first: LinkFirst }[]): void {
    for (const { path, first } of links) {
      if (!first.restored) {
        this.error(path, `not linked: ${this.shown(first.path)} was not restored`);
        continue;
      }
      try {
        replacing(target, path, this.overwrite, () => restoreNative.link(target, first.path, path));
        this.stats.files++;
      } catch (err) {
        if (errorCode(err) === 'EEXIST') throw this.conflict(path, err);
        this.error(path, problem(err));
      }
    }
  }

  private collect(plan: ContentPlan, planLinks: Map<number, LinkFirst>, result: JobResult): void {
    if (this.opts.progress) this.opts.progress.bytesDone += result.written;
    for (const [f, problem] of result.problems) this.error(Buffer.from(plan.file(f).path), problem);
    if (result.conflict) throw this.conflict(Buffer.from(plan.file(result.conflict[0]).path), { code: result.conflict[1] });
    for (const f of result.restored) {
      const link = planLinks.get(f);
      if (link) link.restored = true;
      this.stats.bytes += plan.file(f).length;
      this.completed(Buffer.from(plan.file(f).path), []);
    }
  }

  private completed(path: Buffer, problems: string[]): void {
    for (const problem of problems) this.error(path, problem);
    this.stats.files++;
    this.opts.onProgress?.(this.stats, this.shown(path));
    const { progress } = this.opts;
    if (progress) {
      progress.filesDone = this.stats.files;
      progress.current[0] = this.shown(path);
    }
  }

  /**
   * Like tar: a stored name that exists here wins over the stored number, unless --numeric-owner.
   * Setuid and setgid bits of an untrusted snapshot are cleared (and said so once).
   */
  private metadata(path: Buffer, node: Node): Metadata {
    let { uid, gid, mode } = node;
    if (!this.opts.numericOwner) {
      uid = (node.user === undefined ? undefined : this.owners.uidOf(node.user)) ?? uid;
      gid = (node.group === undefined ? undefined : this.owners.gidOf(node.group)) ?? gid;
    }
    if (this.unprivileged && mode & SETUID_SETGID) {
      mode &= ~SETUID_SETGID;
      if (!this.clearedNoted) this.opts.onNote?.(this.shown(path), 'setuid/setgid bits cleared, here and wherever else they are: the snapshot was written with a write-only key (--allow-privileged keeps them)');
      this.clearedNoted = true;
    }
    return { uid, gid, mode, mtimeNs: node.mtimeNs, symlink: node.type === 'symlink' };
  }

  /** A path relative to the target as the user knows it. */
  private shown(path: Buffer): string {
    return displayName(path.length ? Buffer.concat([Buffer.from(this.opts.target), SLASH, path]) : Buffer.from(this.opts.target));
  }

  private error(path: Buffer, message: string): void {
    this.stats.errors++;
    if (this.opts.progress) this.opts.progress.errors = this.stats.errors;
    this.opts.onError?.(this.shown(path), message);
  }
}
