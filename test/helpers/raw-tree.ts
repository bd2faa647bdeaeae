import { BlobType } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { saveSnapshot, type Snapshot } from '../../src/snapshot/snapshot.js';

/** A node's JSON form, as a tree blob holds it; any field may be anything. */
export type RawNode = Record<string, unknown>;

/**
 * Writes trees and snapshots straight into a repository through its own calls, as anyone holding
 * a key (a compromised host, say) could: trees of exactly the nodes given, in the order given,
 * which the archiver would never make (duplicate or unsorted names, names with slashes, …).
 */
export class RawTrees {
  constructor(private readonly repo: Repository) {}

  /** A node with plausible fields (a regular file of root's, mode 0644), then `fields` over them. */
  node(name: string, fields: RawNode = {}): RawNode {
    return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1600000000000000000', ctime: '1600000000000000000', inode: '1', device: '1', links: 1, size: 0, ...fields };
  }

  /** A file node whose content is saved as one data blob. */
  async file(name: string, content: string, fields: RawNode = {}): Promise<RawNode> {
    const data = Buffer.from(content);
    const { id } = await this.repo.saveBlob(BlobType.data, data);
    return this.node(name, { size: data.length, content: [id.toString('hex')], ...fields });
  }

  /** A directory node whose tree holds `nodes`, saved first. */
  async dir(name: string, nodes: RawNode[], fields: RawNode = {}): Promise<RawNode> {
    return this.node(name, { type: 'dir', mode: 0o755, subtree: await this.tree(nodes), ...fields });
  }

  symlink(name: string, target: string, fields: RawNode = {}): RawNode {
    return this.node(name, { type: 'symlink', mode: 0o777, linkTarget: target, ...fields });
  }

  /** Saves a tree blob of exactly these nodes; returns its ID in hex. */
  async tree(nodes: RawNode[]): Promise<string> {
    const { id } = await this.repo.saveBlob(BlobType.tree, Buffer.from(JSON.stringify({ nodes })));
    return id.toString('hex');
  }

  /** Writes the pending packs and index, then a snapshot of the tree of `nodes` as the root. */
  async snapshot(nodes: RawNode[]): Promise<{ id: string; snapshot: Snapshot }> {
    const tree = await this.tree(nodes);
    await this.repo.flush();
    const snapshot: Snapshot = { time: new Date().toISOString(), tree, paths: ['/'], hostname: 'raw', username: 'root', uid: 0, gid: 0, tags: [], programVersion: 'test' };
    return { id: await saveSnapshot(this.repo, snapshot), snapshot };
  }
}
