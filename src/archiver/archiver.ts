import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fs, read, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { checkAborted as stopIfAborted, describeError, errnoWords, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { ownerDb } from '../platform/owners.js';
import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { MAX_TREE_BYTES } from '../repository/limits.js';
import { recordGroup, TreeLog } from '../repository/writer-records.js';
import { listSnapshots, saveSnapshot, type BackupSummary, type Snapshot } from '../snapshot/snapshot.js';
import { decodeTree, displayName, encodeTree, type Node, type NodeType } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';
import { unchangedTree } from '../tree/unchanged.js';
import type { BackupFilter } from '../filter/backup-filter.js';
import { entryStat, listDirectory, type DirEntry, type EntryStat } from './dir-listing.js';
import { nodeFromStats, nodeType } from './metadata.js';
import { openNoAtime } from './open-source.js';
import { scanSources } from './scan.js';
import type { ProgressMeter } from '../util/progress.js';
import type { Chunker, ChunkerKind } from '../chunker/chunker.js';
import { FixedChunker } from '../chunker/fixed.js';
import { posix } from '../native/posix.js';
import { Budget } from '../util/budget.js';
import { EventLoopTurns } from '../util/event-loop.js';
import { DataPipeline, type ReadFn } from './data-pipeline.js';
import { BackupTarget, type Parent } from './targets.js';
import type { FastCDC } from '../chunker/fastcdc.js';
import { isZero } from '../util/zeros.js';
import type { Region } from '../util/ring-arena.js';

export interface BackupOptions {
  paths: string[];
  tags?: string[];
  host?: string;
  /** A snapshot ID (or prefix) to compare against; by default the latest with the same host and paths. */
  parent?: string;
  /** Read every file even if the parent says it is unchanged. */
  force?: boolean;
  /** What to leave out (--exclude and the like). */
  filter?: BackupFilter;
  oneFileSystem?: boolean;
  /** Do everything but write to the repository. */
  dryRun?: boolean;
  compression?: number;
  /** Back up regular files among the paths as disk images, like block devices. */
  asDevice?: boolean;
  /** How to chunk devices and disk images (files always use content-defined chunks). */
  chunker?: ChunkerKind;
  /** The snapshot's time (by default when the backup started); it also orders snapshots, as parents and for `latest`. */
  time?: Date;
  /** Instead of paths: one file read from a stream (--stdin, --stdin-from-command). */
  stream?: StreamSource;
  signal?: AbortSignal;
  /**
   * A source that could not be read: the snapshot is still written, without it. Its path, as
   * those given to onNote and the progress' current files, is as displayName shows it: safe to print.
   */
  onError?: (path: string, message: string) => void;
  /** Something worth telling that is not an error (a socket skipped, a file changed while read). */
  onNote?: (path: string, message: string) => void;
  /** Counted into as the backup goes, its totals by a scan beside it: for a status line or JSON status lines. */
  progress?: ProgressMeter;
  /** A file or directory done, and how it compares with the parent (restic's -vv listing and verbose items). */
  onItem?: (item: ItemDone) => void;
}

/** How a file or directory compares with the parent snapshot's. */
export type ItemAction = 'new' | 'modified' | 'unchanged';

export interface ItemDone {
  path: string;
  type: 'file' | 'dir';
  action: ItemAction;
  /** Bytes of content read for it (0 when unchanged, and for a directory). */
  bytesRead: number;
  /** From when it was reached until its content was read, in milliseconds. */
  ms: number;
}

export interface StreamSource {
  /** The file's name in the snapshot (at its root). */
  name: string;
  read: ReadFn;
  /** Called after the last byte was read; throws when the stream's producer failed. */
  finished?: () => Promise<void>;
}

export interface BackupResult {
  /** Absent on a dry run. */
  snapshotId?: string;
  snapshot: Snapshot;
  parentId?: string;
}

export const VERSION = '0.1.0';

/** Files up to this size are read whole on the thread pool, in batches (see saveFile). */
const SMALL_FILE_MAX = 1024 * 1024;

/**
 * Data being hashed, compressed and packed at once, across files: bounds memory (it lives in
 * the data pipeline's ring, every page of which is touched) and keeps both cores busy. 4 MiB
 * was as fast as 8 and 16 on the kernel tree (same-minute A/B) and 4 MiB lower at the peak.
 */
const BYTES_IN_FLIGHT = 4 * 1024 * 1024;

/**
 * A temporary file in the repository untouched this long is a dead writer's: a live one writes
 * a staged pack within seconds to minutes (and refreshes its lock every 5 minutes).
 */
const STALE_TEMPORARY_MS = 24 * 60 * 60 * 1000;

/** How far ahead full keys accept a write-only writer's snapshot time (checkClaims in snapshot.ts). */
const WRITE_ONLY_FUTURE_MS = 24 * 3600 * 1000;

/** The walk gives the event loop a turn this often (the pool's answers, I/O): see EventLoopTurns. */
const WALK_TURN_MS = 2;

/** A result that is still being worked on, in a box so that awaiting the box does not await it. */
interface Pending<T> {
  result: Promise<T>;
}

/** Parent trees loaded ahead of the walk at most (see prefetchSubtrees). */
const PREFETCH_TREES = 256;

/** How devices are chunked unless --chunker says otherwise, and the fixed chunk size (see docs/DESIGN.md). */
const DEVICE_CHUNKER: ChunkerKind = 'fixed';
const DEVICE_CHUNK_SIZE = 1024 * 1024;
/** The block size recorded for a disk-image file backed up with --as-device. */
const IMAGE_FILE_BLOCK = 512;

/** What a backup gave one target: its snapshot, or why it failed. */
export interface TargetResult extends Partial<BackupResult> {
  target: BackupTarget;
  /** Why this target has no snapshot (the others may have theirs). */
  failure?: unknown;
}

/**
 * Backs up into one repository (see backupTo).
 */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const [result] = await backupTo([new BackupTarget(repo, repo.backend.location)], opts);
  const { failure, snapshotId, snapshot, parentId } = result!;
  if (failure !== undefined) throw failure;
  return { snapshotId, snapshot: snapshot!, parentId };
}

/** The parent's repository failed: the walk goes on without it (the other targets' snapshots need none). */
class ParentGone extends Error {}

/**
 * The parent's trees, read from the target it belongs to. That target failing to read one (its
 * server gone) fails it alone; the walk then compares against nothing. Only when it was the
 * last target does the error end the backup, as a single repository's always did.
 */
function parentTreesOf(parent: Parent, targets: BackupTarget[]): (id: Buffer) => Promise<Node[]> {
  const owner = targets.find((t) => t.parent === parent)!;
  return async (id) => {
    if (!owner.live) throw new ParentGone();
    try {
      return await parent.trees(id);
    } catch (err) {
      if (err instanceof IntegrityError) throw err;
      owner.fail(err);
      if (targets.every((t) => !t.live)) throw err;
      throw new ParentGone();
    }
  };
}

/**
 * Walks the sources once, reuses the parent snapshot's content lists for unchanged files,
 * chunks the rest once and stores it in each target that lacks it, builds one tree blob per
 * directory bottom-up, flushes each target's packs and index, and only then writes each one's
 * snapshot that refers to them. The targets must cut and name data alike (keyClasses). A
 * target that fails is left behind and the others complete; when all fail, so does the backup.
 */
export async function backupTo(targets: BackupTarget[], opts: BackupOptions): Promise<TargetResult[]> {
  const { stream } = opts;
  if (opts.paths.length === 0 && !stream) throw new ScrateError('nothing to back up: give at least one path');
  const given = stream ? [`/${stream.name}`] : normaliseSources(opts.paths);
  // As restic: a source that is missing or unreadable is left out (an error of the run, which
  // then exits 3) and the others are saved; when none is left there is nothing to save.
  const missing = new Map<string, string>();
  if (!stream) {
    for (const src of given) await fs.lstat(src).catch((err: unknown) => missing.set(src, describeError(err)));
  }
  if (missing.size === given.length) {
    const reasons = [...missing].map(([src, reason]) => `${src}: ${reason}`);
    throw new ScrateError(`cannot back up ${reasons.length === 1 ? reasons[0] : `any of the paths (${reasons.join(', ')})`}`);
  }
  const sources = given.filter((s) => !missing.has(s));
  // Each target's own: a write-only key names its host, which another target need not share.
  const hostOf = (t: BackupTarget) => opts.host ?? t.repo.keys.hostname ?? os.hostname();
  await Promise.all(targets.map((t) => t.step(() => prepareTarget(t, opts, hostOf(t), sources))));
  if (targets.every((t) => !t.live)) return results(targets);
  // The walk compares against the newest parent: within a key class any target's trees name
  // the same blobs, and each target's presence checks keep its own snapshot complete.
  const parent = targets
    .map((t) => t.parent)
    .filter((p) => p !== undefined)
    .reduce<Parent | undefined>((a, b) => (!a || Date.parse(b.time ?? '') > Date.parse(a.time ?? '') || a.time === undefined ? b : a), undefined);
  // Left by backups killed mid-write (SIGKILL, power loss); nothing refers to them. Swept beside
  // the walk (listing a local repository's 257 directories took ~35 ms before it): this run's
  // own are never that old.
  const sweeping = opts.dryRun ? undefined : Promise.all(targets.map((t) => t.repo.backend.staging?.sweep(STALE_TEMPORARY_MS).catch(() => undefined)));
  const run = new BackupRun(targets, opts, parent && parentTreesOf(parent, targets));
  for (const [src, reason] of missing) run.sourceMissing(src, reason);
  const scanning = new AbortController();
  if (opts.progress && !stream) {
    // Only totals for a status line: a scan that fails leaves them short, nothing else.
    scanSources(sources, { filter: opts.filter?.empty ? undefined : opts.filter, oneFileSystem: opts.oneFileSystem }, opts.progress, scanning.signal).catch(() => undefined);
  }
  let tree: Buffer;
  try {
    tree = stream ? await run.saveStream(stream) : await run.saveRoot(sources, parent ? Buffer.from(parent.tree, 'hex') : undefined);
    await run.flush();
  } catch (err) {
    for (const t of targets) t.repo.packer.abandon();
    // Every target failed: each says why.
    if (targets.every((t) => !t.live)) return results(targets);
    throw err;
  } finally {
    scanning.abort();
    await run.close();
    await sweeping;
  }
  // A stream whose producer failed must not become a snapshot.
  await stream?.finished?.();
  // A Ctrl-C: no index and no snapshot anywhere. A target whose lock was lost has failed: no
  // index and no snapshot there, since a prune may already have deleted what they would name.
  stopIfAborted(opts.signal);
  if (!opts.dryRun) await Promise.all(targets.map((t) => t.step(() => t.repo.flush())));
  stopIfAborted(opts.signal);
  const end = new Date().toISOString();
  const user = os.userInfo();
  return Promise.all(
    results(targets).map(async (r) => {
      const { target: t } = r;
      if (!t.live) return r;
      const summary: BackupSummary = { ...run.summary, ...t.added, dataStored: opts.dryRun ? 0 : t.repo.packer.bytesStored, end };
      const snapshot: Snapshot = {
        time: opts.time?.toISOString() ?? run.summary.start,
        tree: tree.toString('hex'),
        paths: sources,
        hostname: hostOf(t),
        username: user.username,
        uid: user.uid,
        gid: user.gid,
        tags: opts.tags ?? [],
        programVersion: `scrate ${VERSION}`,
        summary,
      };
      if (t.parent) snapshot.parent = t.parent.id;
      if (opts.filter?.excludes.length) snapshot.excludes = opts.filter.excludes;
      r.snapshot = snapshot;
      if (opts.dryRun) return r;
      await t.step(async () => {
        const snapshotId = await saveSnapshot(t.repo, snapshot);
        if (t.treeLog) await t.repo.record!.addSnapshot(snapshotId, snapshot.tree, Buffer.from(JSON.stringify(snapshot)), recordGroup(snapshot.hostname, sources), t.treeLog);
        r.snapshotId = snapshotId;
      });
      r.failure = t.failure;
      return r;
    }),
  );
}

/** Each target's result as it stands: failed, or to be given its snapshot. */
function results(targets: BackupTarget[]): TargetResult[] {
  return targets.map((target) => ({ target, failure: target.failure, parentId: target.parent?.id }));
}

/** Checks what this target's key allows, and picks its parent (before the walk). */
async function prepareTarget(t: BackupTarget, opts: BackupOptions, host: string, sources: string[]): Promise<void> {
  const { repo } = t;
  // A write-only key backs up the host it was made for, under that name only.
  const own = repo.keys.hostname;
  if (own !== undefined && host !== own) throw new ScrateError(`this write-only key backs up host ${own} only`, ExitCode.fatal, 'leave out --host');
  if (opts.time && !repo.canRead && opts.time.getTime() > Date.now() + WRITE_ONLY_FUTURE_MS) {
    throw new ScrateError(`a write-only key cannot date a snapshot over a day ahead (${opts.time.toISOString()})`, ExitCode.fatal, 'full keys would refuse it');
  }
  if (opts.dryRun) t.dryRun();
  else if (repo.record) t.treeLog = new TreeLog();
  if (!opts.stream) t.parent = await chooseParent(repo, opts, host, sources);
}

function normaliseSources(paths: string[]): string[] {
  const abs = [...new Set(paths.map((p) => path.resolve(p)))].sort();
  // A source inside another is already covered by it.
  return abs.filter((p) => !abs.some((q) => q !== p && (q === '/' || p.startsWith(q + '/'))));
}

/**
 * The parent: always one of this writer's own snapshots (its content IDs are named with this
 * writer's key, and no other writer's snapshot can be trusted to be what it says), the newest
 * of the same host and sources unless --parent names one. A full key reads it from the
 * repository; a write-only key from its record.
 */
async function chooseParent(repo: Repository, opts: BackupOptions, host: string, sources: string[]): Promise<Parent | undefined> {
  if (opts.force) return undefined;
  if (!repo.canRead) {
    const recorded = await repo.record?.trees(recordGroup(host, sources));
    if (!recorded || (opts.parent && !recorded.snapshot.startsWith(opts.parent))) {
      if (opts.parent) throw new ScrateError(`--parent ${opts.parent}: this write-only key has no record of that snapshot's trees`, ExitCode.fatal, 'it can only use the last snapshot it made of the same paths');
      return undefined;
    }
    if (!(await repo.listNames('snapshots')).includes(recorded.snapshot)) return undefined;
    const trees = recorded.trees;
    return {
      id: recorded.snapshot,
      tree: recorded.root,
      trees: async (id) => {
        const bytes = trees.get(id);
        if (!bytes) throw new IntegrityError(`tree ${id.toString('hex').slice(0, 12)}`, 'not in this writer\'s record');
        return decodeTree(bytes);
      },
    };
  }
  const own = (await listSnapshots(repo)).filter((e) => e.writer === repo.self);
  const chosen = opts.parent
    ? own.find((e) => e.id.startsWith(opts.parent!.toLowerCase()))
    : own.filter((e) => e.snapshot.hostname === host && e.snapshot.paths.length === sources.length && e.snapshot.paths.every((p, i) => p === sources[i])).at(-1);
  if (opts.parent && !chosen) throw new ScrateError(`--parent ${opts.parent}: not a snapshot this key's writer made`, ExitCode.fatal, 'a parent must be one of the same writer\'s snapshots');
  if (!chosen) return undefined;
  const reader = repo.reader(repo.self);
  return { id: chosen.id, tree: chosen.snapshot.tree, time: chosen.snapshot.time, trees: (id) => loadTree(reader, id) };
}

/** A directory's tree in the parent snapshot: its entries by name, and (when it loaded) its ID and nodes. */
interface ParentDir {
  byName: Map<string, Node>;
  stored?: { id: Buffer; nodes: Node[] };
}

class BackupRun {
  readonly summary: BackupSummary = {
    filesNew: 0,
    filesChanged: 0,
    filesUnmodified: 0,
    dirsNew: 0,
    dirsChanged: 0,
    dirsUnmodified: 0,
    bytesProcessed: 0,
    bytesRead: 0,
    dataBlobs: 0,
    treeBlobs: 0,
    dataAdded: 0,
    dataStored: 0,
    errors: 0,
    start: new Date().toISOString(),
    end: '',
  };
  /** Undefined when it leaves nothing out. */
  private readonly filter: BackupFilter | undefined;
  private readonly owners = ownerDb();
  /** Content of multiply-linked files already stored this run, by device:inode; null when unreadable. */
  private readonly hardlinks = new Map<string, Promise<Buffer[] | null>>();
  /** Entries already listed in their directory that turned out unreadable: left out of its tree. */
  private readonly dropped = new WeakSet<Node>();
  /** Settles when the large file being read beside the walk is read (see saveFile). */
  private largeFileRead: Promise<void> | undefined;
  private readonly data: DataPipeline;
  private readonly inFlight = new Budget(BYTES_IN_FLIGHT);
  private readonly turns = new EventLoopTurns(WALK_TURN_MS);
  /** The first error of a blob being stored in the background; the walk stops on it. */
  private failure: unknown;
  /** What the directory being walked waits for before its tree is stored (see directory()). */
  private waits: Promise<unknown>[] = [];
  /** Parent trees loading ahead of the walk, by ID. */
  private readonly prefetched = new Map<string, Promise<Node[]>>();
  /** The one blob of zeros per chunk length, by length. */
  private readonly zeroBlobs = new Map<number, Promise<{ id: Buffer; stored: Promise<void> }>>();
  private rootDevices = new Set<bigint>();
  /** The paths given on the command line (as latin1 strings of their bytes): a block device among them is read as an image. */
  private readonly sources = new Set<string>();
  private readonly progress: ProgressMeter | undefined;

  /** Cuts data for every target (they are of one key class). */
  private readonly chunker: FastCDC;
  /** Some target keeps a record of its trees: no tree is taken over from the parent unwritten. */
  private readonly recordsTrees: boolean;

  constructor(
    private readonly targets: BackupTarget[],
    private readonly opts: BackupOptions,
    /** The parent snapshot's trees, by ID. */
    private readonly parentTrees: ((id: Buffer) => Promise<Node[]>) | undefined,
  ) {
    this.filter = opts.filter?.empty ? undefined : opts.filter;
    const { repo } = targets[0]!;
    this.chunker = repo.chunker;
    this.recordsTrees = targets.some((t) => t.treeLog);
    this.data = new DataPipeline({
      chunkIdKey: repo.keys.writer.chunkIdKey,
      chunker: this.chunker,
      targets: targets.map((t) => ({
        sealPublic: t.repo.keys.sealPublic,
        writer: t.repo.keys.writer.id,
        level: opts.compression ?? t.repo.config.compression,
        packSize: t.repo.config.packSize,
        staging: t.repo.packer.staging,
        sink: t,
      })),
    });
    this.progress = opts.progress;
  }

  /** Data packs still open in the pipeline's lanes are handed over. */
  async flush(): Promise<void> {
    await this.data.flush();
  }

  async close(): Promise<void> {
    await this.data.close();
  }

  /** A snapshot of one file read from a stream: a root tree holding just that file. */
  async saveStream(stream: StreamSource): Promise<Buffer> {
    const started = performance.now();
    const now = BigInt(Date.now()) * 1_000_000n;
    const user = os.userInfo();
    const { content: pending, read } = await this.storeContent(stream.read, this.chunker);
    const content = await pending;
    this.summary.bytesProcessed += read;
    this.fileDone(Buffer.from(`/${stream.name}`), true, read, started);
    const node: Node = { name: Buffer.from(stream.name), type: 'file', mode: 0o600, uid: user.uid, gid: user.gid, mtimeNs: now, ctimeNs: now, inode: 0n, deviceId: 0n, links: 1, size: read, content };
    node.user = user.username;
    return this.saveTree([node]);
  }

  /** Builds the tree from '/' down to each source; directories above the sources carry their real metadata. */
  async saveRoot(sources: string[], parentTree: Buffer | undefined): Promise<Buffer> {
    for (const s of sources) this.sources.add(Buffer.from(s).toString('latin1'));
    for (const s of sources) this.rootDevices.add((await fs.lstat(s, { bigint: true })).dev);
    // The root itself as the source: its tree is the snapshot's root tree.
    if (sources[0] === '/') return (await this.saveDir(Buffer.from('/'), entryStat(await fs.lstat('/', { bigint: true })), parentTree)).result;
    return (await this.saveVirtualDir('/', sources, parentTree)).result;
  }

  private async saveVirtualDir(dir: string, sources: string[], parentTree: Buffer | undefined): Promise<Pending<Buffer>> {
    const parent = await this.parentDir(parentTree);
    const names = [...new Set(sources.map((s) => path.relative(dir, s).split('/')[0]!))].filter((n) => n !== '');
    return this.directory(parent, async (nodes) => {
      for (const name of names) {
        const full = path.join(dir, name);
        const prev = parent.byName.get(Buffer.from(name).toString('latin1'));
        if (sources.includes(full)) {
          const node = await this.saveSource(Buffer.from(full), Buffer.from(name), prev);
          if (node) nodes.push(node);
        } else {
          // stat, not lstat: a directory above a source may be reached through a symlink (/lib → usr/lib).
          const st = entryStat(await fs.stat(full, { bigint: true }));
          const node = this.metadata(Buffer.from(name), st, 'dir');
          const { result } = await this.saveVirtualDir(full, sources.filter((s) => s.startsWith(full + '/')), prev?.subtree);
          this.defer(result.then((id) => (node.subtree = id)));
          nodes.push(node);
        }
      }
    });
  }

  /**
   * Gathers a directory's entries with `fill`; its tree is stored once every entry's content
   * is stored. Nothing waits for that here: the walk goes on while the pipeline catches up, and the
   * parent waits for the tree's ID the same way.
   */
  private async directory(parent: ParentDir, fill: (nodes: Node[]) => Promise<void>): Promise<Pending<Buffer>> {
    const outer = this.waits;
    const waits: Promise<unknown>[] = (this.waits = []);
    const nodes: Node[] = [];
    try {
      await fill(nodes);
    } finally {
      this.waits = outer;
    }
    // Only now are the entries' content and subtree IDs known. A directory exactly as in the
    // parent snapshot keeps its tree ID: no encoding, hashing or compressing. (Not for a record
    // of trees, which must hold each one.)
    const { stored } = parent;
    return {
      result: Promise.all(waits).then(() => {
        const kept = nodes.filter((n) => !this.dropped.has(n));
        return stored && !this.recordsTrees && unchangedTree(kept, stored.nodes) && this.allHave(BlobType.tree, [stored.id]) ? stored.id : this.saveTree(kept);
      }),
    };
  }

  /** Work a node still waits for; the enclosing directory's tree is stored after it. */
  private defer(work: Promise<unknown>): void {
    work.catch(() => undefined); // awaited by the directory; never an unhandled rejection
    this.waits.push(work);
  }

  private async parentDir(tree: Buffer | undefined): Promise<ParentDir> {
    const byName = new Map<string, Node>();
    if (!tree) return { byName };
    try {
      const nodes = await this.loadParentTree(tree);
      for (const n of nodes) byName.set(n.name.toString('latin1'), n);
      this.prefetchSubtrees(nodes);
      return { byName, stored: { id: tree, nodes } };
    } catch (err) {
      // A damaged parent, or one whose repository failed, only costs re-reading this directory.
      if (!(err instanceof IntegrityError) && !(err instanceof ParentGone)) throw err;
      return { byName };
    }
  }

  private loadParentTree(id: Buffer): Promise<Node[]> {
    const key = id.toString('latin1');
    const prefetched = this.prefetched.get(key);
    this.prefetched.delete(key);
    return prefetched ?? this.parentTrees!(id);
  }

  /**
   * Starts loading the parent trees of a directory's subdirectories while its files are
   * looked at: loaded one by one when the walk reaches them, their round trips were a fifth of
   * an unchanged backup's time.
   */
  private prefetchSubtrees(nodes: Node[]): void {
    for (const n of nodes) {
      if (this.prefetched.size >= PREFETCH_TREES) return;
      if (n.type !== 'dir' || !n.subtree) continue;
      const key = n.subtree.toString('latin1');
      if (this.prefetched.has(key)) continue;
      const load = this.parentTrees!(n.subtree);
      load.catch(() => undefined); // seen when the walk gets there; never an unhandled rejection
      this.prefetched.set(key, load);
    }
  }

  private async saveTree(nodes: Node[]): Promise<Buffer> {
    const encoded = encodeTree(nodes);
    // Readers refuse larger trees (see MAX_TREE_BYTES): better no snapshot than one nobody reads.
    if (encoded.length > MAX_TREE_BYTES) throw new ScrateError(`a directory of ${nodes.length} entries is too large for one tree (over ${MAX_TREE_BYTES / 1024 / 1024} MiB)`);
    // Named alike in every target (one key class): prepared once.
    const blob = this.targets[0]!.repo.prepare(BlobType.tree, encoded);
    for (const t of this.targets) {
      t.treeLog?.add(blob);
      if (t.claimAs(BlobType.tree, blob.id, blob.rawLength)) await t.put(BlobType.tree, blob);
    }
    return blob.id;
  }

  private metadata(name: Buffer, st: EntryStat, type: NodeType): Node {
    return nodeFromStats(name, st, type, this.owners);
  }

  /** Stops the walk on Ctrl-C, or as soon as storing anything has failed (a full disk, revoked credentials). */
  private checkAborted(): void {
    if (this.failure !== undefined) throw this.failure;
    if (!this.targets.some((t) => t.live)) throw this.targets[0]!.failure;
    stopIfAborted(this.opts.signal);
  }

  private error(p: Buffer, message: string): void {
    this.summary.errors++;
    if (this.progress) this.progress.errors++;
    this.opts.onError?.(displayName(p), message);
  }

  /** A source given on the command line that could not be looked at: left out of the snapshot. */
  sourceMissing(src: string, reason: string): void {
    this.error(Buffer.from(src), reason);
  }

  /** Counts a file read (new or modified) and tells onItem. */
  private fileDone(full: Buffer, isNew: boolean, bytesRead: number, started: number): void {
    if (isNew) this.summary.filesNew++;
    else this.summary.filesChanged++;
    this.done(0);
    this.opts.onItem?.({ path: displayName(full), type: 'file', action: isNew ? 'new' : 'modified', bytesRead, ms: performance.now() - started });
  }

  /** Counts a directory by its tree: the parent's same tree is unchanged, another one modified. */
  private dirDone(full: Buffer, id: Buffer, prevTree: Buffer | undefined): void {
    const action: ItemAction = !prevTree ? 'new' : prevTree.equals(id) ? 'unchanged' : 'modified';
    if (action === 'new') this.summary.dirsNew++;
    else if (action === 'modified') this.summary.dirsChanged++;
    else this.summary.dirsUnmodified++;
    this.opts.onItem?.({ path: `${displayName(full)}/`, type: 'dir', action, bytesRead: 0, ms: 0 });
  }

  /** Stores a source given on the command line, lstat'ed on its own. */
  private saveSource(full: Buffer, name: Buffer, prev: Node | undefined): Promise<Node | null> {
    if (this.filter?.rejectsPath(full.toString())) return Promise.resolve(null);
    let st: EntryStat;
    try {
      st = entryStat(lstatSync(full, { bigint: true }));
    } catch (err) {
      this.error(full, describeError(err));
      return Promise.resolve(null);
    }
    if (this.filter?.rejectsEntry(nodeType(st) === 'dir', st.size)) return Promise.resolve(null);
    return this.saveEntry(full, name, st, prev);
  }

  /** Stores one filesystem entry; null when it is skipped (unreadable, a socket). */
  private async saveEntry(full: Buffer, name: Buffer, st: EntryStat, prev: Node | undefined): Promise<Node | null> {
    this.checkAborted();
    const type = nodeType(st);
    if (!type) {
      this.opts.onNote?.(displayName(full), 'socket skipped');
      return null;
    }
    const node = this.metadata(name, st, type);
    if ((type === 'blockdev' || (type === 'file' && this.opts.asDevice)) && this.sources.has(full.toString('latin1'))) {
      return (await this.saveImage(full, st, node)) ? node : null;
    }
    switch (type) {
      case 'dir': {
        const prevTree = prev?.type === 'dir' ? prev.subtree : undefined;
        const { result } = await this.saveDir(full, st, prevTree);
        this.defer(
          result.then((id) => {
            node.subtree = id;
            this.dirDone(full, id, prevTree);
          }),
        );
        return node;
      }
      case 'file':
        return (await this.saveFile(full, st, node, prev)) ? node : null;
      case 'symlink':
        try {
          node.linkTarget = readlinkSync(full, { encoding: 'buffer' });
        } catch (err) {
          this.error(full, describeError(err));
          return null;
        }
        return node;
      default:
        node.rdev = st.rdev;
        return node;
    }
  }

  private async saveDir(full: Buffer, st: EntryStat, prevTree: Buffer | undefined): Promise<Pending<Buffer>> {
    let entries: DirEntry[] = [];
    const crossesDevice = this.opts.oneFileSystem && !this.rootDevices.has(st.dev);
    if (!crossesDevice) {
      try {
        entries = listDirectory(full);
      } catch (err) {
        this.error(full, `cannot list directory: ${describeError(err)}`);
      }
    }
    const parent = await this.parentDir(prevTree);
    const separator = Buffer.from(full.length === 1 ? '' : '/');
    return this.directory(parent, async (nodes) => {
      for (const { name, stat, error } of entries) {
        const child = Buffer.concat([full, separator, name]);
        if (this.filter?.rejectsPath(child.toString())) continue;
        // lstat failed: the entry went away (or became unreadable) after the listing.
        if (!stat) {
          this.error(child, errnoWords(error!));
          continue;
        }
        if (this.filter?.rejectsEntry(nodeType(stat) === 'dir', stat.size)) continue;
        const turn = this.turns.due();
        if (turn) await turn;
        const prev = parent.byName.size === 0 ? undefined : parent.byName.get(name.toString('latin1'));
        const node = await this.saveEntry(child, name, stat, prev);
        if (node) nodes.push(node);
      }
    });
  }

  private async saveFile(full: Buffer, st: EntryStat, node: Node, prev: Node | undefined): Promise<boolean> {
    const started = performance.now();
    const size = st.size;
    if (st.blocks * 512 < st.size) node.sparse = true;
    this.summary.bytesProcessed += size;
    if (this.progress) this.progress.current[0] = displayName(full);
    // Its blobs must still be in the index: a parent may refer to a pack or index file gone since.
    const unchanged =
      prev?.type === 'file' && prev.content && prev.size === size && prev.mtimeNs === st.mtimeNs && prev.ctimeNs === st.ctimeNs && prev.inode === st.ino && this.allHave(BlobType.data, prev.content);
    if (unchanged) {
      node.content = prev.content;
      this.summary.filesUnmodified++;
      this.done(size);
      this.opts.onItem?.({ path: displayName(full), type: 'file', action: 'unchanged', bytesRead: 0, ms: 0 });
      return true;
    }
    const linkKey = st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
    const linked = linkKey && this.hardlinks.get(linkKey);
    if (linked) {
      this.defer(linked.then((c) => this.setContent(node, c)));
      this.done(size);
      return true;
    }
    const isNew = prev?.type !== 'file';
    let content: Promise<Buffer[] | null>;
    if (size <= SMALL_FILE_MAX) {
      const admission = this.inFlight.admit(size);
      if (admission) await admission;
      content = this.saveSmallFile(full, st, node, isNew, started);
    } else {
      // Read beside the walk, one large file at a time: its chunks alone kept the pool at less
      // than one job (1–8 MiB each against 4 MiB in flight, one after another through a lane).
      await this.largeFileRead;
      const saving = this.saveLargeFile(full, st, node, isNew, started);
      this.largeFileRead = saving.then(
        () => undefined,
        () => undefined,
      );
      content = saving.then((pending) => {
        if (pending) return pending.result.then((ids) => (node.content = ids));
        this.dropped.add(node);
        return null;
      });
    }
    this.defer(content);
    if (linkKey) this.hardlinks.set(linkKey, content);
    return true;
  }

  /** Whether every live target has these blobs: what one lacks is read again (each stores what it lacks). */
  private allHave(type: BlobType, ids: Buffer[]): boolean {
    for (const t of this.targets) if (t.live && !t.has(type, ids)) return false;
    return true;
  }

  private setContent(node: Node, content: Buffer[] | null): void {
    if (content) node.content = content;
    else this.dropped.add(node);
  }

  /** A file is done: `bytes` of it not counted as read (see storeContent). */
  private done(bytes: number): void {
    if (!this.progress) return;
    this.progress.filesDone++;
    this.progress.bytesDone += bytes;
  }

  /**
   * Most files of a tree are small: they are read, cut, hashed and compressed whole on the
   * thread pool, many to a call. The walk goes on at once; an unreadable one is reported when
   * the pool answers, and then left out of its directory. Its room in the data in flight
   * (admitted by the caller) is given back once its blobs are packed. One promise per file
   * (the caller defers it): these are the walk's most numerous objects.
   */
  private saveSmallFile(full: Buffer, st: EntryStat, node: Node, isNew: boolean, started: number): Promise<Buffer[] | null> {
    const size = node.size;
    const release = (err?: unknown) => {
      if (err !== undefined) this.failure ??= err;
      this.inFlight.release(size);
    };
    return this.data.readFile(full, size, st.mtimeNs).then(
      (r) => {
        r.stored.then(() => release(), release);
        if (r.error) {
          const reason = errnoWords(r.error.code);
          this.error(full, r.error.during === 'open' ? reason : `read failed: ${reason}`);
          this.dropped.add(node);
          return null;
        }
        if (r.changed) this.changedWhileRead(full, node, r.read);
        this.summary.bytesRead += r.read;
        if (this.progress) this.progress.bytesDone += r.read;
        this.fileDone(full, isNew, r.read, started);
        node.content = r.ids;
        return r.ids;
      },
      (err: unknown) => {
        release(err);
        throw err;
      },
    );
  }

  /** Large files are read here through the thread pool, so a slow disk does not stall the walk; the pool hashes their chunks. */
  private async saveLargeFile(full: Buffer, st: EntryStat, node: Node, isNew: boolean, started: number): Promise<Pending<Buffer[]> | null> {
    let fd: number;
    try {
      fd = openNoAtime(full);
    } catch (err) {
      this.error(full, describeError(err));
      return null;
    }
    if (this.progress) this.progress.current[1] = displayName(full);
    try {
      const { content, read } = await this.storeContent(fdReader(fd), this.chunker);
      const after = fstatSync(fd, { bigint: true });
      if (after.mtimeNs !== st.mtimeNs || Number(after.size) !== st.size || read !== node.size) this.changedWhileRead(full, node, read);
      this.fileDone(full, isNew, read, started);
      return { result: content };
    } catch (err) {
      if (err instanceof ScrateError) throw err;
      this.error(full, `read failed: ${describeError(err)}`);
      return null;
    } finally {
      closeSync(fd);
      if (this.progress) this.progress.current[1] = '';
    }
  }

  private changedWhileRead(full: Buffer, node: Node, read: number): void {
    this.opts.onNote?.(displayName(full), 'file changed while being read; the snapshot holds what was read');
    node.size = read;
  }

  /**
   * Stores the content of a block device (or of a file given with --as-device) as a disk image:
   * always read whole (a device has no trustworthy mtime), cut into block-aligned chunks by
   * default, its zero regions costing nothing.
   */
  private async saveImage(full: Buffer, st: EntryStat, node: Node): Promise<boolean> {
    const started = performance.now();
    let fd: number;
    try {
      fd = openSync(full, constants.O_RDONLY);
    } catch (err) {
      this.error(full, describeError(err));
      return false;
    }
    try {
      const device = nodeType(st) === 'blockdev' ? posix.blockDevice(fd) : { size: st.size, logicalBlockSize: IMAGE_FILE_BLOCK };
      const size = Number(device.size);
      node.type = 'file';
      node.size = size;
      node.image = { blockSize: device.logicalBlockSize };
      delete node.rdev;
      this.summary.bytesProcessed += size;
      if (this.progress) this.progress.current[1] = displayName(full);
      const chunker = (this.opts.chunker ?? DEVICE_CHUNKER) === 'fixed' ? new FixedChunker(DEVICE_CHUNK_SIZE) : this.chunker;
      const { content: pending, read } = await this.storeContent(fdReader(fd), chunker);
      const content = await pending;
      if (read !== size) {
        this.opts.onNote?.(displayName(full), `read ${read} of ${size} bytes; the snapshot holds what was read`);
        node.size = read;
      }
      node.content = content;
      this.fileDone(full, true, read, started);
      return true;
    } catch (err) {
      if (err instanceof ScrateError) throw err;
      this.error(full, `read failed: ${describeError(err)}`);
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Reads and chunks one input; the chunks are hashed, compressed and packed on the thread pool
   * while reading goes on, as far as the data ring has room (so a huge input does not fill
   * memory); its chunks count in the run-wide data in flight, which the small files read beside
   * it wait for. Resolves when the input is read; `content` when every chunk is stored.
   */
  async storeContent(read: ReadFn, chunker: Chunker): Promise<{ content: Promise<Buffer[]>; read: number }> {
    const ids: Promise<Buffer>[] = [];
    let total = 0;
    for await (const chunk of this.data.readChunks(read, chunker)) {
      const length = chunk.bytes.length;
      // Already in the data ring, which bounds a large input; small files wait for it. Waiting
      // here instead could deadlock: small files read beside it hold the budget while they wait for the ring.
      this.inFlight.charge(length);
      const stored = this.storeData(chunk);
      const release = (err?: unknown) => {
        if (err !== undefined) this.failure ??= err;
        this.inFlight.release(length);
      };
      stored.then((s) => s.stored).then(() => release(), release);
      const id = stored.then((s) => s.id);
      id.catch(() => undefined); // awaited through `content`, unless the loop stops first (Ctrl-C)
      ids.push(id);
      total += length;
      this.summary.bytesRead += length;
      if (this.progress) this.progress.bytesDone += length;
      // After the chunk is handed over: its region is the pipeline's to give back.
      this.checkAborted();
    }
    const content = Promise.all(ids);
    content.catch(() => undefined); // awaited by the caller; never an unhandled rejection
    return { content, read: total };
  }

  /**
   * Hands a chunk to the pipeline; resolves with its ID, and `stored` when it is packed.
   * All-zero chunks (empty disk regions, holes) are recognised by a compare and stored once per
   * length: the first one of a length is that blob, the others are given back unsent.
   */
  private storeData(chunk: Region): Promise<{ id: Buffer; stored: Promise<void> }> {
    if (!isZero(chunk.bytes)) return this.data.storeRegion(chunk);
    const { length } = chunk.bytes;
    const zero = this.zeroBlobs.get(length);
    if (zero) {
      this.data.discard(chunk);
      return zero;
    }
    const stored = this.data.storeRegion(chunk);
    this.zeroBlobs.set(length, stored);
    return stored;
  }
}

const readAsync = promisify(read);

function fdReader(fd: number): ReadFn {
  return async (buffer, offset, length) => (await readAsync(fd, buffer, offset, length, null)).bytesRead;
}

