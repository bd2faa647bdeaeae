import { checkAborted, IntegrityError } from '../errors.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import type { BlockMapRef } from '../tree/block-map.js';
import { encodeTree, type Node } from '../tree/node.js';
import { sameBlockMap } from '../tree/unchanged.js';
import { loadTree, openBlockMap } from '../tree/walk.js';

/** One snapshot's side of a diff: its root tree (or a directory's) and the reader of its writer. */
export interface DiffSide {
  reader: BlobReader;
  tree: Buffer;
}

/** What happened to one path: restic's modifiers, `+ - M T U` and `?` (content changed, metadata not). */
export interface Change {
  /** '/' then the names down from the compared trees' roots. */
  path: Buffer;
  dir: boolean;
  modifier: string;
}

/** restic's DiffStat: entries and blobs only one side has, and the plaintext bytes of those blobs. */
export interface DiffStat {
  files: number;
  dirs: number;
  others: number;
  dataBlobs: number;
  treeBlobs: number;
  bytes: number;
}

export interface DiffResult {
  changedFiles: number;
  added: DiffStat;
  removed: DiffStat;
}

export interface DiffOptions {
  /** Also report entries whose metadata alone changed (U). */
  metadata: boolean;
  signal?: AbortSignal;
  /** A promise it returns (output waiting for its reader) is awaited before going on. */
  onChange: (c: Change) => void | Promise<void>;
  onWarning: (message: string) => void;
}

const SLASH = Buffer.from('/');

/** Blob handles as set keys: a type letter and the ID's bytes, one character each (latin1). The writer is the set's side's. */
const blobKey = (type: BlobType, id: Buffer) => (type === BlobType.tree ? 't' : 'd') + id.toString('latin1');

/**
 * Compares two trees by their IDs, as restic's diff does, without reading any file data: two
 * directories of one writer with the same tree ID are the same and are not descended into, and
 * files compare by their lists of content blob IDs.
 *
 * Blob IDs are keyed by writer (docs/FORMAT.md §2), so across writers nothing compares by ID: no
 * subtree is shared, and a file's content counts as unchanged when its size and modification
 * time are (the rule a backup uses to skip reading it). Neither do blobs count as shared across
 * writers: the repository keeps each writer's separately.
 *
 * A directory that replaced a file (or was replaced by one) is listed with its contents as
 * added (removed); restic shows only the T.
 */
export async function diffTrees(a: DiffSide, b: DiffSide, opts: DiffOptions): Promise<DiffResult> {
  return new Comparer(a, b, opts).run();
}

class Comparer {
  private readonly sameWriter: boolean;
  private readonly before = new Set<string>();
  private readonly after = new Set<string>();
  /** Subtrees both sides share: what is in them is in neither side alone. */
  private readonly shared: Buffer[] = [];
  private readonly result: DiffResult = { changedFiles: 0, added: emptyStat(), removed: emptyStat() };

  constructor(
    private readonly a: DiffSide,
    private readonly b: DiffSide,
    private readonly opts: DiffOptions,
  ) {
    this.sameWriter = a.reader.writer.no === b.reader.writer.no;
  }

  async run(): Promise<DiffResult> {
    this.before.add(blobKey(BlobType.tree, this.a.tree));
    this.after.add(blobKey(BlobType.tree, this.b.tree));
    if (this.sameWriter && this.a.tree.equals(this.b.tree)) this.shared.push(this.a.tree);
    else await this.diffTree(this.a.tree, this.b.tree, Buffer.alloc(0));
    const onlyBefore = difference(this.before, this.after);
    const onlyAfter = difference(this.after, this.before);
    await this.dropShared(onlyBefore, onlyAfter);
    this.count(onlyBefore, this.a.reader, this.result.removed);
    this.count(onlyAfter, this.b.reader, this.result.added);
    return this.result;
  }

  private async diffTree(idA: Buffer | undefined, idB: Buffer | undefined, prefix: Buffer): Promise<void> {
    checkAborted(this.opts.signal);
    const [nodesA, nodesB] = await Promise.all([loadNodes(this.a.reader, idA), loadNodes(this.b.reader, idB)]);
    let i = 0;
    let j = 0;
    while (i < nodesA.length || j < nodesB.length) {
      const na = nodesA[i];
      const nb = nodesB[j];
      const order = !na ? 1 : !nb ? -1 : Buffer.compare(na.name, nb.name);
      const path = Buffer.concat([prefix, SLASH, (order <= 0 ? na : nb)!.name]);
      if (order < 0) {
        await this.whole('-', na!, path, this.a.reader, this.before, this.result.removed);
        i++;
      } else if (order > 0) {
        await this.whole('+', nb!, path, this.b.reader, this.after, this.result.added);
        j++;
      } else {
        await this.both(na!, nb!, path);
        i++;
        j++;
      }
    }
  }

  /** An entry on both sides. */
  private async both(n1: Node, n2: Node, path: Buffer): Promise<void> {
    addBlobs(this.before, n1);
    addBlobs(this.after, n2);
    await this.addMapBlobs(path, n1, n2);
    let modifier = n1.type === n2.type ? '' : 'T';
    if (n1.type === 'file' && n2.type === 'file' && !this.sameContent(n1, n2)) {
      this.result.changedFiles++;
      modifier += 'M';
      if (this.sameWriter && sameMetadata(n1, n2)) modifier += '?';
    } else if (this.opts.metadata && !sameMetadata(n1, n2)) modifier += 'U';
    if (modifier) await this.opts.onChange({ path, dir: n2.type === 'dir', modifier });
    if (n1.type === 'dir' && n2.type === 'dir') {
      if (this.sameWriter && n1.subtree && n2.subtree?.equals(n1.subtree)) this.shared.push(n1.subtree);
      else await this.diffTree(n1.subtree, n2.subtree, path);
    } else {
      if (n1.type === 'dir') await this.listTree('-', n1.subtree, path, this.a.reader, this.before, this.result.removed);
      if (n2.type === 'dir') await this.listTree('+', n2.subtree, path, this.b.reader, this.after, this.result.added);
    }
  }

  private sameContent(n1: Node, n2: Node): boolean {
    if (!this.sameWriter) return n1.size === n2.size && n1.mtimeNs === n2.mtimeNs;
    if (n1.blockMap || n2.blockMap) return n1.blockMap !== undefined && n2.blockMap !== undefined && sameBlockMap(n1.blockMap, n2.blockMap);
    const [c1, c2] = [n1.content ?? [], n2.content ?? []];
    return c1.length === c2.length && c1.every((id, k) => id.equals(c2[k]!));
  }

  /** An entry only one side has: it and everything below it. */
  private async whole(modifier: string, node: Node, path: Buffer, reader: BlobReader, blobs: Set<string>, stat: DiffStat): Promise<void> {
    await this.opts.onChange({ path, dir: node.type === 'dir', modifier });
    addNode(stat, node);
    addBlobs(blobs, node);
    if (blobs === this.before) await this.addMapBlobs(path, node, undefined);
    else await this.addMapBlobs(path, undefined, node);
    if (node.type === 'dir') await this.listTree(modifier, node.subtree, path, reader, blobs, stat);
  }

  /**
   * The map nodes and blocks of volume files into their side's set: of two maps of one writer
   * only what differs (a lockstep walk that skips the subtrees both share), so a diff of two
   * versions of a large volume costs what changed between them.
   */
  private async addMapBlobs(path: Buffer, n1: Node | undefined, n2: Node | undefined): Promise<void> {
    const sets = [this.before, this.after] as const;
    const visitNode = (side: 0 | 1, id: Buffer) => {
      checkAborted(this.opts.signal);
      const key = blobKey(BlobType.tree, id);
      if (sets[side].has(key)) return false;
      sets[side].add(key);
      return true;
    };
    const visitBlock = (side: 0 | 1, id: Buffer) => sets[side].add(blobKey(BlobType.data, id));
    const a = n1?.blockMap && openBlockMap(this.a.reader, n1.blockMap, { cacheBytes: 0 });
    const b = n2?.blockMap && openBlockMap(this.b.reader, n2.blockMap, { cacheBytes: 0 });
    try {
      if (a && b && this.sameWriter) await a.walkDifference(b, visitNode, visitBlock);
      else {
        if (a) await a.walk((id) => visitNode(0, id), (id) => visitBlock(0, id));
        if (b) await b.walk((id) => visitNode(1, id), (id) => visitBlock(1, id));
      }
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.opts.onWarning(`${path.toString()}: ${err.message}`);
    }
  }

  private async listTree(modifier: string, id: Buffer | undefined, prefix: Buffer, reader: BlobReader, blobs: Set<string>, stat: DiffStat): Promise<void> {
    checkAborted(this.opts.signal);
    for (const node of await loadNodes(reader, id)) await this.whole(modifier, node, Buffer.concat([prefix, SLASH, node.name]), reader, blobs, stat);
  }

  /**
   * Takes out of the candidates what the shared subtrees hold (a file moved into an unchanged
   * directory is not new data). Their trees are read, never their files, and only until no
   * candidate is left: restic reads them all.
   */
  private async dropShared(onlyBefore: Set<string>, onlyAfter: Set<string>): Promise<void> {
    const seen = new Set<string>();
    const pending = [...this.shared];
    while (pending.length && (onlyBefore.size || onlyAfter.size)) {
      checkAborted(this.opts.signal);
      const id = pending.pop()!;
      const key = blobKey(BlobType.tree, id);
      if (seen.has(key)) continue;
      seen.add(key);
      onlyBefore.delete(key);
      onlyAfter.delete(key);
      for (const node of await loadTree(this.a.reader, id)) {
        for (const blob of node.content ?? []) {
          const k = blobKey(BlobType.data, blob);
          onlyBefore.delete(k);
          onlyAfter.delete(k);
        }
        if (node.subtree) pending.push(node.subtree);
        if (node.blockMap) await this.dropSharedMap(node.blockMap, onlyBefore, onlyAfter);
      }
    }
  }

  /** As dropShared, for a volume's map in a shared subtree: walked only while candidates are left. */
  private async dropSharedMap(map: BlockMapRef, onlyBefore: Set<string>, onlyAfter: Set<string>): Promise<void> {
    const drop = (key: string) => {
      onlyBefore.delete(key);
      onlyAfter.delete(key);
      return onlyBefore.size > 0 || onlyAfter.size > 0;
    };
    try {
      await openBlockMap(this.a.reader, map, { cacheBytes: 0 }).walk((id) => drop(blobKey(BlobType.tree, id)), (id) => drop(blobKey(BlobType.data, id)));
    } catch (err) {
      // Not a change of either side; its damage is check's to report.
      if (!(err instanceof IntegrityError)) throw err;
    }
  }

  /** Blob counts and sizes from the index: no blob is read. */
  private count(keys: Set<string>, reader: BlobReader, stat: DiffStat): void {
    for (const key of keys) {
      const type = key[0] === 't' ? BlobType.tree : BlobType.data;
      if (type === BlobType.tree) stat.treeBlobs++;
      else stat.dataBlobs++;
      const id = Buffer.from(key.slice(1), 'latin1');
      const loc = reader.find(type, id);
      if (loc) stat.bytes += loc.rawLength;
      else this.opts.onWarning(`unable to find the size of ${type === BlobType.tree ? 'tree' : 'data'} blob ${id.toString('hex').slice(0, 12)}: not in the index`);
    }
  }
}

/** A directory's entries; one without a tree (which only a hand-made tree has) is empty, as walkTree takes it. */
async function loadNodes(reader: BlobReader, id: Buffer | undefined): Promise<Node[]> {
  return id ? loadTree(reader, id) : [];
}

function emptyStat(): DiffStat {
  return { files: 0, dirs: 0, others: 0, dataBlobs: 0, treeBlobs: 0, bytes: 0 };
}

function addNode(stat: DiffStat, node: Node): void {
  if (node.type === 'file') stat.files++;
  else if (node.type === 'dir') stat.dirs++;
  else stat.others++;
}

function addBlobs(blobs: Set<string>, node: Node): void {
  for (const id of node.content ?? []) blobs.add(blobKey(BlobType.data, id));
  if (node.subtree) blobs.add(blobKey(BlobType.tree, node.subtree));
}

function difference(a: Set<string>, b: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const k of a) if (!b.has(k)) out.add(k);
  return out;
}

/**
 * Everything a node records but its content and subtree IDs (which M and the entries below
 * report, and which do not compare across writers), as the tree encoding writes it.
 */
function sameMetadata(n1: Node, n2: Node): boolean {
  const bare = (n: Node): Node => ({ ...n, content: undefined, blockMap: undefined, subtree: undefined });
  return encodeTree([bare(n1)]).equals(encodeTree([bare(n2)]));
}
