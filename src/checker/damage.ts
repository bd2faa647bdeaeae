import { checkAborted, ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { displayName } from '../tree/node.js';
import { loadTree } from '../tree/walk.js';

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

/**
 * Finds what the snapshots have lost: the files one of whose blobs is lost and the directories
 * whose tree does not load. Each tree is walked once per writer, whatever the number of
 * snapshots and places that share it, and what it lost is kept (relative to it), so that every
 * snapshot that reaches a damaged tree learns its own paths: a file unchanged for months is in
 * every snapshot since, through the same trees. Clean trees cost an entry in a map.
 */
export class DamageFinder<C> {
  private readonly below = new Map<string, readonly Loss<C>[]>();
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
  fileLosses(reader: BlobReader, content: readonly Buffer[]): Set<C> {
    const causes = new Set<C>();
    for (const blob of content) {
      const cause = this.lostBlob(reader, BlobType.data, blob);
      if (cause !== undefined) causes.add(cause);
    }
    return causes;
  }

  private async walk(reader: BlobReader, id: Buffer): Promise<Loss<C>[]> {
    const nodes = await loadTree(reader, id);
    this.trees++;
    const losses: Loss<C>[] = [];
    for (const node of nodes) {
      const path = `/${displayName(node.name)}`;
      if (node.subtree) for (const loss of await this.lossesBelow(reader, node.subtree)) losses.push({ path: path + loss.path, cause: loss.cause });
      for (const cause of this.fileLosses(reader, node.content ?? [])) losses.push({ path, cause });
    }
    return losses;
  }
}
