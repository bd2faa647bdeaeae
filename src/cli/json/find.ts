import type { FoundObject } from '../../browse/find.js';
import type { SnapshotEntry } from '../../snapshot/snapshot.js';
import type { Node } from '../../tree/node.js';
import { jsonTimeOfIso } from '../local-time.js';
import { jsonName, nodeJson } from './node.js';

/**
 * An entry `find --json` found, as restic prints one: its node without name, content and
 * subtree, with its path and permissions. scrate stores no access time: there is no atime.
 */
export function foundNodeJson(n: Node, path: Buffer): Record<string, unknown> {
  const { type, mode, permissions, mtime, ctime } = nodeJson(n, path);
  return {
    path: jsonName(path),
    permissions,
    type,
    mode,
    mtime,
    ctime,
    uid: n.uid,
    gid: n.gid,
    ...(n.user ? { user: n.user } : {}),
    ...(n.group ? { group: n.group } : {}),
    ...(n.inode ? { inode: Number(n.inode) } : {}),
    ...(n.deviceId ? { device_id: Number(n.deviceId) } : {}),
    ...(n.size && n.type !== 'dir' ? { size: n.size } : {}),
    ...(n.links ? { links: n.links } : {}),
    ...(n.linkTarget ? { linktarget: jsonName(n.linkTarget) } : {}),
    ...(n.rdev ? { device: Number(n.rdev) } : {}),
  };
}

/** An object `find --blob/--tree/--pack --json` found: restic's fields; a root tree has the path "/". */
export function foundObjectJson(o: FoundObject, path: Buffer, tree: Buffer, e: SnapshotEntry): Record<string, unknown> {
  return {
    object_type: o.kind,
    id: o.id.toString('hex'),
    path: path.length ? jsonName(path) : '/',
    ...(o.kind === 'blob' ? { parent_tree: tree.toString('hex') } : {}),
    snapshot: e.id,
    time: jsonTimeOfIso(e.snapshot.time),
  };
}

/**
 * restic's `find --json` output: one JSON array, streamed as found (a search may find
 * millions), of objects, or for patterns of {matches, hits, snapshot} groups, one a snapshot.
 */
export class FindJsonWriter {
  private started = false;
  private group: { id: string; hits: number } | undefined;
  private items = 0;

  constructor(private readonly write: (text: string) => void) {}

  /** An entry found in the snapshot `id`. */
  match(id: string, item: object): void {
    if (this.group?.id !== id) {
      this.closeGroup(',');
      this.open();
      this.write('{"matches":[');
      this.group = { id, hits: 0 };
    }
    this.write((this.group.hits++ ? ',' : '') + JSON.stringify(item));
  }

  object(item: object): void {
    this.open();
    this.write((this.items++ ? ',' : '') + JSON.stringify(item));
  }

  finish(): void {
    this.closeGroup('');
    this.write(this.started ? ']\n' : '[]\n');
  }

  private open(): void {
    if (!this.started) this.write('[');
    this.started = true;
  }

  private closeGroup(then: string): void {
    if (this.group) this.write(`],"hits":${this.group.hits},"snapshot":${JSON.stringify(this.group.id)}}${then}`);
    this.group = undefined;
  }
}
