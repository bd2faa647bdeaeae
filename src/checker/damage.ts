import { checkAborted, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import type { BlockMapRef } from '../tree/block-map.js';
import { displayName, type Node } from '../tree/node.js';
import { loadTree, openBlockMap } from '../tree/walk.js';

/** Something a snapshot needs and cannot have, below a tree: where (relative to the tree) and why. */
export interface Loss<C> {
  /** `/name/name…` below the tree; '' for the tree itself (it does not load). */
  path: string;
  cause: C;
}

/** Whether an error loading a tree is damage to report (a fatal ScrateError: a key that cannot open it), not a failure of the run. */
export function isDamage(err: unknown): err is ScrateError {
  return err instanceof IntegrityError || (err instanceof ScrateError && err.exitCode === ExitCode.fatal);
}

const NONE: readonly Loss<never>[] = Object.freeze([]);
const CLEAN: ReadonlySet<never> = new Set();

/**
 * Finds what the snapshots have lost: the files one of whose blobs is lost and the directories
 * whose tree does not load. Each tree is walked once per writer, whatever the number of
 * snapshots and places that share it, and what it lost is kept (relative to it), so that every
 * snapshot that reaches a damaged tree learns its own paths: a file unchanged for months is in
 * every snapshot since, through the same trees. Clean trees cost an entry in a map.
 */
export class DamageFinder<C> {
  private readonly below = new Map<string, readonly Loss<C>[]>();
  /** The causes lost below each map node walked (versions of a volume share most of theirs). */
  private readonly mapBelow = new Map<string, ReadonlySet<C>>();
  /** Trees that loaded. */
  trees = 0;

  constructor(
    /** Why a blob of the reader's writer is lost, or undefined if it is not. */
    private readonly lostBlob: (reader: BlobReader, type: BlobType, id: Buffer) => C | undefined,
    /** Why a tree did not load (`err`). */
    private readonly lostTree: (reader: BlobReader, id: Buffer, err: ScrateError) => C,
    private readonly signal?: AbortSignal,
  ) {}

  /** What is lost below the tree `id` of the reader's writer (none: an empty list). */
  async lossesBelow(reader: BlobReader, id: Buffer): Promise<readonly Loss<C>[]> {
    const key = `${reader.writer.no}:${id.toString('hex')}`;
    const known = this.below.get(key);
    if (known) return known;
    checkAborted(this.signal);
    let losses: Loss<C>[];
    try {
      losses = await this.walk(reader, id);
    } catch (err) {
      if (!isDamage(err)) throw err;
      losses = [{ path: '', cause: this.lostTree(reader, id, err) }];
    }
    const kept = losses.length ? losses : NONE;
    this.below.set(key, kept);
    return kept;
  }

  /** The distinct reasons a file node is lost (none: it is whole). */
  async fileLosses(reader: BlobReader, node: Node): Promise<Set<C>> {
    const causes = new Set<C>();
    for (const blob of node.content ?? []) {
      const cause = this.lostBlob(reader, BlobType.data, blob);
      if (cause !== undefined) causes.add(cause);
    }
    if (node.blockMap) await this.mapLosses(reader, node.blockMap, causes);
    return causes;
  }

  /**
   * Adds what a volume's map lost: nodes and blocks. Each map node is walked once; the nodes
   * open on the way down are closed (their causes kept and handed to their parent) when the
   * walk reaches a node at their level or above.
   */
  private async mapLosses(reader: BlobReader, map: BlockMapRef, causes: Set<C>): Promise<void> {
    const open: { key: string; id: Buffer; level: number; causes: Set<C> }[] = [];
    const into = () => open.at(-1)?.causes ?? causes;
    const close = (level: number) => {
      while (open.length && open.at(-1)!.level <= level) {
        const done = open.pop()!;
        this.mapBelow.set(done.key, done.causes.size ? done.causes : CLEAN);
        for (const cause of done.causes) into().add(cause);
      }
    };
    const visitNode = (id: Buffer, level: number) => {
      checkAborted(this.signal);
      close(level);
      const key = `${reader.writer.no}:${id.toString('hex')}`;
      const known = this.mapBelow.get(key);
      const lost = known ? undefined : this.lostBlob(reader, BlobType.tree, id);
      if (lost !== undefined) this.mapBelow.set(key, new Set([lost]));
      for (const cause of known ?? (lost !== undefined ? [lost] : [])) into().add(cause);
      if (known || lost !== undefined) return false;
      open.push({ key, id, level, causes: new Set() });
      return true;
    };
    const visitBlock = (blob: Buffer) => {
      const cause = this.lostBlob(reader, BlobType.data, blob);
      if (cause !== undefined) into().add(cause);
    };
    try {
      await openBlockMap(reader, map, { cacheBytes: 0 }).walk(visitNode, visitBlock);
      close(Infinity);
    } catch (err) {
      if (!isDamage(err)) throw err;
      // The node that did not load is the last one opened.
      causes.add(this.lostTree(reader, open.at(-1)?.id ?? map.root, err));
      for (const o of open) for (const cause of o.causes) causes.add(cause);
    }
  }

  private async walk(reader: BlobReader, id: Buffer): Promise<Loss<C>[]> {
    const nodes = await loadTree(reader, id);
    this.trees++;
    const losses: Loss<C>[] = [];
    for (const node of nodes) {
      const path = `/${displayName(node.name)}`;
      if (node.subtree) for (const loss of await this.lossesBelow(reader, node.subtree)) losses.push({ path: path + loss.path, cause: loss.cause });
      for (const cause of await this.fileLosses(reader, node)) losses.push({ path, cause });
    }
    return losses;
  }
}
