import { checkAborted, IntegrityError, ScrateError } from '../errors.js';
import { PatternList } from '../filter/list.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader, Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';
import type { Node } from '../tree/node.js';
import { firstVisit } from '../tree/block-map.js';
import { loadTree, openBlockMap } from '../tree/walk.js';

/** Something found: an entry, and for an object search the blob or tree of it that was asked for. */
export interface Match {
  /** '/' then the names down from the snapshot's root. */
  path: Buffer;
  node: Node;
  /** The tree the entry is listed in. */
  tree: Buffer;
  /** For an object search: what of the entry's was looked for. */
  object?: FoundObject;
}

export interface FoundObject {
  kind: 'blob' | 'tree';
  id: Buffer;
}

/** What a search does with one entry: what it found there, and whether to look below it. */
export type Visitor = (node: Node, path: Buffer, tree: Buffer, reader: BlobReader) => Visit | Promise<Visit>;

interface Visit {
  matches: Match[];
  descend: boolean;
}

export type OnMatch = (m: Match) => void | Promise<void>;

/** The matches below a tree, in walk order; nested arrays are the subtrees', shared with their own memo entries. */
type Found = readonly (Match | Found)[];

/** What is remembered of a subtree: its matches and how many they are. */
interface Kept {
  found: Found;
  count: number;
}

const EMPTY: Found = [];
const SLASH = Buffer.from('/');
/**
 * What the memo holds before it starts over: entries (a key of up to a few hundred bytes each)
 * and matches (a node each, about a kilobyte). Remembering subtrees without matches saves the
 * most reading; a match costs more to print than to find again.
 */
const MEMO_ENTRIES = 200_000;
const MEMO_MATCHES = 20_000;

/**
 * Walks snapshots' trees for a visitor, each (writer, tree, path) once: snapshots of one host
 * share most of their trees, and a subtree at the same place gives the same matches, so what
 * was found below it is remembered and given again without reading it. A moved subtree is read
 * again (what matches may depend on the path).
 *
 * Memory is bounded: matches are handed on as they are found, a subtree with more than a tenth
 * of MEMO_MATCHES is not remembered (its own subtrees are), and past MEMO_ENTRIES or
 * MEMO_MATCHES the memo is dropped and filled anew.
 */
export class TreeSearch {
  /** Trees read and decoded so far. */
  treesRead = 0;
  private readonly memo = new Map<string, Kept>();
  /** Matches the memo holds, each counted at the entry of the tree that lists it. */
  private matchesHeld = 0;

  constructor(
    private readonly visit: Visitor,
    private readonly onUnreadable: (tree: Buffer, err: IntegrityError) => void,
    private readonly signal?: AbortSignal,
    private readonly limits = { entries: MEMO_ENTRIES, matches: MEMO_MATCHES },
  ) {}

  /**
   * Hands on the matches in a snapshot's tree, in name order, an entry before what is below it;
   * a promise `onMatch` returns (output waiting for its reader) is awaited before going on.
   */
  async search(reader: BlobReader, root: Buffer, onMatch: OnMatch): Promise<void> {
    await this.below(reader, root, Buffer.alloc(0), onMatch);
  }

  /** The subtree's matches, handed on; what to remember of it, or undefined when too much or not all was read. */
  private async below(reader: BlobReader, id: Buffer, path: Buffer, onMatch: OnMatch): Promise<Kept | undefined> {
    // latin1 keeps every byte of a name as one character: distinct paths, distinct keys.
    const key = `${reader.writer.no}:${id.toString('hex')}:${path.toString('latin1')}`;
    const known = this.memo.get(key);
    if (known) {
      await replay(known.found, onMatch);
      return known;
    }
    checkAborted(this.signal);
    let nodes: Node[];
    try {
      this.treesRead++;
      nodes = await loadTree(reader, id);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.onUnreadable(id, err);
      return undefined;
    }
    let kept: (Match | Found)[] | undefined = [];
    let count = 0;
    let own = 0;
    for (const node of nodes) {
      const at = Buffer.concat([path, SLASH, node.name]);
      let v: Visit;
      try {
        v = await this.visit(node, at, id, reader);
      } catch (err) {
        // A volume's map that does not load: what is below it cannot be searched.
        if (!(err instanceof IntegrityError)) throw err;
        this.onUnreadable(id, err);
        kept = undefined;
        continue;
      }
      for (const m of v.matches) await onMatch(m);
      kept?.push(...v.matches);
      count += v.matches.length;
      own += v.matches.length;
      if (v.descend && node.subtree) {
        const sub = await this.below(reader, node.subtree, at, onMatch);
        if (!sub) kept = undefined;
        else if (sub.count) {
          kept?.push(sub.found);
          count += sub.count;
        }
      }
      if (count > this.limits.matches / 10) kept = undefined;
    }
    if (!kept) return undefined;
    const entry = { found: kept.length ? kept : EMPTY, count };
    // A subtree's matches count where they are remembered, not again in every tree above.
    this.matchesHeld += own;
    if (this.memo.size >= this.limits.entries || this.matchesHeld > this.limits.matches) {
      this.memo.clear();
      this.matchesHeld = own;
    }
    this.memo.set(key, entry);
    return entry;
  }
}

async function replay(found: Found, onMatch: OnMatch): Promise<void> {
  for (const item of found) {
    if (Array.isArray(item)) await replay(item as Found, onMatch);
    else await onMatch(item as Match);
  }
}

export interface PatternOptions {
  ignoreCase: boolean;
  /** Modification times (ms since the epoch) a match must lie within. */
  oldest?: number;
  newest?: number;
}

/**
 * restic's find: a pattern matches an entry's whole path the way restic's patterns do (a name
 * anywhere, a path with '/' as consecutive components, '/…' from the root), and a directory is
 * not descended into when nothing below it can match. The patterns form a list as --include's
 * do: a '!' pattern takes back what the ones before it matched.
 */
export function patternVisitor(patterns: readonly string[], opts: PatternOptions): Visitor {
  const list = new PatternList(patterns, 'find', opts.ignoreCase);
  if (list.empty) throw new ScrateError('no pattern given', undefined, 'give a pattern such as "*.conf"');
  const oldestNs = opts.oldest === undefined ? undefined : BigInt(opts.oldest) * 1_000_000n;
  const newestNs = opts.newest === undefined ? undefined : BigInt(opts.newest) * 1_000_000n;
  return (node, path, tree) => {
    const { matched, childMayMatch } = list.matchesWithChild(path.toString('utf8'));
    const inTime = (oldestNs === undefined || node.mtimeNs >= oldestNs) && (newestNs === undefined || node.mtimeNs <= newestNs);
    const hit = matched && inTime;
    return { matches: hit ? [{ path, node, tree }] : [], descend: node.type === 'dir' && (hit || childMayMatch) };
  };
}

export type ObjectKind = 'blob' | 'tree' | 'pack';

/** The blobs an object search looks for, by writer: the same ID names different blobs for different writers. */
export interface ObjectTargets {
  data: Set<string>;
  trees: Set<string>;
}

const targetKey = (writer: Writer, id: Buffer) => `${writer.no}:${id.toString('hex')}`;

/** Whether a snapshot's own root tree is one looked for (restic reports it as path "/"). */
export function isTargetRoot(targets: ObjectTargets, writer: Writer, root: Buffer): boolean {
  return targets.trees.has(targetKey(writer, root));
}

/**
 * restic's `find --blob/--tree/--pack`: files with a blob looked for in their content,
 * directories whose tree is one, volume files whose map holds one (a block, or a map node: a tree).
 */
export function objectVisitor(targets: ObjectTargets): Visitor {
  return async (node, path, tree, reader) => {
    const { writer } = reader;
    const matches: Match[] = [];
    const found = (kind: FoundObject['kind'], id: Buffer) => matches.push({ path, node, tree, object: { kind, id } });
    if (node.subtree && targets.trees.has(targetKey(writer, node.subtree))) found('tree', node.subtree);
    for (const id of node.content ?? []) if (targets.data.has(targetKey(writer, id))) found('blob', id);
    if (node.blockMap && (targets.data.size || targets.trees.size)) {
      const first = firstVisit();
      const visitNode = (id: Buffer) => {
        if (!first(id)) return false;
        if (targets.trees.has(targetKey(writer, id))) found('tree', id);
        return true;
      };
      await openBlockMap(reader, node.blockMap, { cacheBytes: 0 }).walk(visitNode, (id) => {
        if (targets.data.has(targetKey(writer, id))) found('blob', id);
      });
    }
    return { matches, descend: node.type === 'dir' };
  };
}

const HEX_PREFIX = /^[0-9a-f]{1,64}$/;

/**
 * The blobs that IDs name: a blob's or a tree's own, or for packs every blob in them, from the
 * index. A full ID is looked for as any writer's, in the index or not (a blob `check` reports
 * lost is what one asks about); a prefix must name something the index has. An ID that is not
 * hex, a prefix naming nothing or an unknown pack is an error.
 */
export function resolveObjects(repo: Repository, kind: ObjectKind, ids: readonly string[]): ObjectTargets {
  const prefixes = ids.map((raw) => {
    const id = raw.toLowerCase();
    if (!HEX_PREFIX.test(id)) throw new ScrateError(`invalid ${kind} ID ${JSON.stringify(raw)}`, undefined, 'give hexadecimal IDs (or prefixes of them)');
    return id;
  });
  const targets: ObjectTargets = { data: new Set(), trees: new Set() };
  const index = repo.index;
  const packs = new Set<number>();
  if (kind === 'pack') {
    const unknown = prefixes.filter((p) => {
      const found = index.packs.flatMap((pack, n) => (pack.id.toString('hex').startsWith(p) ? [n] : []));
      for (const n of found) packs.add(n);
      return found.length === 0;
    });
    if (unknown.length) throw new ScrateError(`unable to find pack(s): ${unknown.join(', ')}`, undefined, 'pack IDs are the names of files under data/');
  }
  const wanted = kind === 'tree' ? targets.trees : targets.data;
  for (const id of prefixes.filter((p) => p.length === 64)) for (const w of repo.writers.all) wanted.add(`${w.no}:${id}`);
  const short = kind === 'pack' ? [] : prefixes.filter((p) => p.length < 64);
  if (kind !== 'pack' && short.length === 0) return targets;
  const seen = new Set<string>();
  for (let n = 0; n < index.size; n++) {
    const e = index.entry(n);
    const pack = index.packs[e.pack]!;
    if (kind === 'pack') {
      if (packs.has(e.pack)) (pack.type === BlobType.tree ? targets.trees : targets.data).add(`${pack.writer}:${e.id.toString('hex')}`);
      continue;
    }
    if ((pack.type === BlobType.tree) !== (kind === 'tree')) continue;
    const hex = e.id.toString('hex');
    const named = short.filter((p) => hex.startsWith(p));
    for (const p of named) seen.add(p);
    if (named.length) wanted.add(`${pack.writer}:${hex}`);
  }
  const missing = short.filter((p) => !seen.has(p));
  if (missing.length) throw new ScrateError(`no ${kind} ${missing.join(', ')} in the index`, undefined, 'give the full ID to search for a blob the index does not list');
  return targets;
}
