import { closeSync, ftruncateSync, linkSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { posix } from '../native/posix.js';
import { Excludes } from '../archiver/excludes.js';
import { ownerDb } from '../platform/owners.js';
import type { BlobReader } from '../repository/repository.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { displayName, type Node } from '../tree/node.js';
import { findNode, loadTree, pathComponents } from '../tree/walk.js';
import { ContentPlan } from './content-plan.js';
import { createFile, replacing } from './file-io.js';
import { applyMetadata, creationMode, finishFile, type Metadata } from './metadata.js';
import type { JobResult } from './pack-job.js';
import { ContentWriter } from './write-content.js';
import { EventLoopTurns } from '../util/event-loop.js';

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
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** A directory of the target, created on first need so that filters leave no empty parents. */
interface DirState {
  dest: Buffer;
  created: boolean;
  parent: DirState | null;
}

/** The first name of a hard-linked file; the others become links to it once it is written. */
interface LinkFirst {
  dest: Buffer;
  restored: boolean;
}

/**
 * Recreates a snapshot (or part of it) under a target directory. The walk creates directories,
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
  private readonly includes: Excludes;
  private readonly excludes: Excludes;
  private readonly owners = ownerDb();
  private readonly linkFirsts = new Map<string, LinkFirst>();
  /** Trees being loaded ahead of the walk, by ID. */
  private readonly treesAhead = new Map<string, Promise<Node[]>>();
  private readonly content: ContentWriter;
  /** The walk's turns for the event loop: pack reads complete and workers' results arrive while it plans. */
  private readonly turns = new EventLoopTurns(WALK_TURN_MS);
  /** Batches being written, oldest first; each settles once its directories are done. */
  private readonly batches: Promise<void>[] = [];
  private batchLimit = FIRST_BATCH_WRITES;
  private plan: ContentPlan;
  /** Of the batch: the hard-link group of planned files, by file number. */
  private planLinks = new Map<number, LinkFirst>();
  /** Of the batch: further names of hard-linked files, to link once the first is written. */
  private links: { dest: Buffer; first: LinkFirst }[] = [];
  /** Of the batch: directories whose contents are planned, in the order to set their metadata. */
  private dirs: { dest: Buffer; node: Node }[] = [];

  constructor(
    private readonly reader: BlobReader,
    private readonly opts: RestoreOptions,
  ) {
    this.includes = new Excludes(opts.includes ?? []);
    this.excludes = new Excludes(opts.excludes ?? []);
    this.plan = new ContentPlan(reader);
    this.content = new ContentWriter(reader, { overwrite: opts.overwrite ?? false, signal: opts.signal });
  }

  async run(snapshot: Snapshot): Promise<void> {
    const root = Buffer.from(snapshot.tree, 'hex');
    const sub = this.opts.subpath ?? '/';
    const top: DirState = { dest: Buffer.from(this.opts.target), created: false, parent: null };
    const start = pathComponents(sub);
    const node = start.length ? await findNode(this.reader, root, sub) : null;
    const base = '/' + start.map((c) => c.toString()).join('/');
    if (node && node.type !== 'dir') await this.restoreNode(node, top, base, this.includes.empty);
    else await this.restoreDir(node ? node.subtree! : root, top, base === '/' ? '' : base, this.includes.empty);
    await this.endBatch();
    while (this.batches.length) await this.batches.shift();
  }

  /** After the batches under way have settled, whether or not the restore failed. */
  async close(): Promise<void> {
    await Promise.allSettled(this.batches);
    await this.content.close();
  }

  private async restoreDir(tree: Buffer, dir: DirState, snapPath: string, included: boolean): Promise<void> {
    let nodes: Node[];
    try {
      nodes = await this.loadTree(tree);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.error(dir.dest, `contents lost: ${err.message}`);
      return;
    }
    for (const node of nodes) if (node.subtree) this.loadTreeAhead(node.subtree);
    for (const node of nodes) {
      if (this.opts.signal?.aborted) throw new ScrateError('interrupted', ExitCode.interrupted);
      const turn = this.turns.due();
      if (turn) await turn;
      await this.restoreNode(node, dir, `${snapPath}/${node.name.toString()}`, included);
    }
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
      const child: DirState = { dest, created: false, parent: dir };
      if (included) this.ensureDir(child);
      if (node.subtree) await this.restoreDir(node.subtree, child, snapPath, included);
      if (child.created) this.dirs.push({ dest, node });
      return;
    }
    if (!included) return;
    this.ensureDir(dir);
    try {
      if (node.type === 'file') this.planFile(dest, node);
      else this.createOther(dest, node);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw this.conflict(dest, err);
      if (err instanceof IntegrityError) this.error(dest, err.message);
      else if (err instanceof ScrateError) throw err;
      else this.error(dest, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    if (this.plan.size >= this.batchLimit) await this.endBatch();
  }

  /**
   * Starts loading the tree of a directory the walk will enter (excluded or not: the filters
   * need the path, and such a load is cheap), so that the walk rarely waits for a read.
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

  /** Creates the directory (and its parents) once, however many entries need it. */
  private ensureDir(dir: DirState): void {
    if (dir.created) return;
    if (dir.parent) this.ensureDir(dir.parent);
    try {
      mkdirSync(dir.dest, { recursive: dir.parent === null, mode: 0o700 });
    } catch (err) {
      const st = lstatSync(dir.dest, { throwIfNoEntry: false });
      if (!st?.isDirectory()) {
        if (!st || !this.opts.overwrite) throw this.conflict(dir.dest, err);
        rmSync(dir.dest);
        mkdirSync(dir.dest, { mode: 0o700 });
      }
    }
    dir.created = true;
  }

  private conflict(dest: Buffer, err: unknown): ScrateError {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return new ScrateError(`refusing to overwrite ${displayName(dest)}`, ExitCode.fatal, 'restore into an empty directory, or pass --overwrite');
    return new ScrateError(`cannot create ${displayName(dest)}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }

  /** Plans a file's content, or links it, or (with nothing to write) creates it at once. */
  private planFile(dest: Buffer, node: Node): void {
    const linkKey = `${node.deviceId}:${node.inode}`;
    const first = node.links > 1 ? this.linkFirsts.get(linkKey) : undefined;
    if (first) {
      this.links.push({ dest, first });
      return;
    }
    const meta = this.metadata(node);
    const { file, length } = this.plan.add(dest, node.sparse ?? false, meta, node.content ?? []);
    const link: LinkFirst = { dest, restored: false };
    if (node.links > 1) this.linkFirsts.set(linkKey, link);
    if (file !== null) {
      if (node.links > 1) this.planLinks.set(file, link);
      return;
    }
    // Nothing to write (empty, or all holes): created here and now.
    const fd = createFile(dest, this.opts.overwrite ?? false, creationMode(meta));
    try {
      if (length > 0) ftruncateSync(fd, length);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const problems = finishFile(fd, meta);
    link.restored = true;
    this.completed(dest, problems);
  }

  private createOther(dest: Buffer, node: Node): void {
    const overwrite = this.opts.overwrite ?? false;
    switch (node.type) {
      case 'symlink':
        replacing(dest, overwrite, () => symlinkSync(node.linkTarget ?? Buffer.alloc(0), dest));
        break;
      case 'fifo':
        replacing(dest, overwrite, () => posix.mknod(dest, S_IFIFO | 0o600, 0n));
        break;
      case 'chardev':
      case 'blockdev':
        replacing(dest, overwrite, () => posix.mknod(dest, (node.type === 'chardev' ? S_IFCHR : S_IFBLK) | 0o600, node.rdev ?? 0n));
        break;
      default:
        throw new ScrateError(`unknown node type ${node.type as string} at ${displayName(dest)}`);
    }
    for (const problem of applyMetadata(dest, this.metadata(node))) this.error(dest, problem);
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
    const content = plan.empty ? Promise.resolve() : this.content.write(plan, (result) => this.collect(plan, planLinks, result));
    const previous = this.batches.at(-1);
    const done = (async () => {
      try {
        await content;
      } finally {
        await previous;
      }
      this.link(links);
      for (const { dest, node } of dirs) {
        for (const problem of applyMetadata(dest, this.metadata(node))) this.error(dest, problem);
        this.stats.dirs++;
      }
    })();
    done.catch(() => undefined); // awaited in turn by the walk
    this.batches.push(done);
  }

  private link(links: { dest: Buffer; first: LinkFirst }[]): void {
    for (const { dest, first } of links) {
      if (!first.restored) {
        this.error(dest, `not linked: ${displayName(first.dest)} was not restored`);
        continue;
      }
      try {
        replacing(dest, this.opts.overwrite ?? false, () => linkSync(first.dest, dest));
        this.stats.files++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw this.conflict(dest, err);
        this.error(dest, (err as NodeJS.ErrnoException).code ?? String(err));
      }
    }
  }

  private collect(plan: ContentPlan, planLinks: Map<number, LinkFirst>, result: JobResult): void {
    for (const [f, problem] of result.problems) this.error(Buffer.from(plan.file(f).dest), problem);
    if (result.conflict) throw this.conflict(Buffer.from(plan.file(result.conflict[0]).dest), { code: result.conflict[1] });
    for (const f of result.restored) {
      const link = planLinks.get(f);
      if (link) link.restored = true;
      this.stats.bytes += plan.file(f).length;
      this.completed(Buffer.from(plan.file(f).dest), []);
    }
  }

  private completed(dest: Buffer, problems: string[]): void {
    for (const problem of problems) this.error(dest, problem);
    this.stats.files++;
    this.opts.onProgress?.(this.stats, displayName(dest));
  }

  /** Like tar: a stored name that exists here wins over the stored number, unless --numeric-owner. */
  private metadata(node: Node): Metadata {
    let { uid, gid } = node;
    if (!this.opts.numericOwner) {
      uid = (node.user === undefined ? undefined : this.owners.uidOf(node.user)) ?? uid;
      gid = (node.group === undefined ? undefined : this.owners.gidOf(node.group)) ?? gid;
    }
    return { uid, gid, mode: node.mode, mtimeNs: node.mtimeNs, symlink: node.type === 'symlink' };
  }

  private error(dest: Buffer, message: string): void {
    this.stats.errors++;
    this.opts.onError?.(displayName(dest), message);
  }
}
