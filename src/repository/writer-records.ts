import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { WriterSecrets } from '../crypto/access.js';
import { counterNonce, deriveKey, open, seal, sha256 } from '../crypto/primitives.js';
import { readdirOrEmpty } from '../util/fs.js';
import type { BlobIndex } from './blob-index.js';
import { decodeIndexFile } from './index-file.js';
import type { PreparedBlob } from './blob-prepare.js';
import { decompress } from './compression.js';

/**
 * A write-only key's record of what it stored, as bupstash's send log: the key cannot read the
 * repository back, so its incremental backups (which blobs it already stored, the trees of its
 * last snapshot of the same paths) and `scrate snapshots` come from here. Kept beside the
 * metadata cache, encrypted with a key of the writer's. Losing it costs one full upload, never
 * correctness: what it says of a pack gone from the repository (a prune by a full key,
 * damage) or marked for deletion no longer counts, and an unreadable log drops it whole.
 *
 *   index.log            segments [u32 length][sealed: index name (32) ‖ the index file's payload]
 *   snapshots/<id>       sealed JSON: a snapshot this writer stored
 *   trees/<group>        sealed: the snapshot ID and its root tree ID, then the trees of the
 *                        latest snapshot of one host and set of paths,
 *                        [id 32][flags u8][raw length u32][length u32][bytes]…
 */
export class WriterRecords {
  private constructor(
    private readonly dir: string,
    private readonly key: Buffer,
  ) {}

  static async open(root: string, repoId: string, writer: WriterSecrets): Promise<WriterRecords> {
    const dir = path.join(root, repoId, `writer-${writer.id.toString('hex')}`);
    await fs.mkdir(path.join(dir, 'snapshots'), { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(dir, 'trees'), { recursive: true, mode: 0o700 });
    return new WriterRecords(dir, deriveKey(writer.chunkIdKey, Buffer.alloc(0), 'scrate v3 writer record'));
  }

  private seal(plain: Buffer): Buffer {
    const salt = randomBytes(32);
    return Buffer.concat([salt, seal(deriveKey(this.key, salt, RECORD_INFO), NONCE, plain)]);
  }

  private open(sealed: Buffer): Buffer | null {
    return sealed.length < 48 ? null : open(deriveKey(this.key, sealed.subarray(0, 32), RECORD_INFO), NONCE, sealed.subarray(32));
  }

  /**
   * Adds the blobs this writer stored to `index` (as writer `writerNo`), but those of packs gone
   * from the repository (`present` lists those there) or marked for deletion by a prune
   * (`unusable`): those blobs count as not stored, and are stored again when needed. A log that
   * cannot be read to its end drops the record of blobs and trees: the next backup uploads
   * everything.
   */
  async loadInto(index: BlobIndex, writerNo: number, present: Set<string>, unusable: Set<string>): Promise<void> {
    const { segments, whole } = await this.segments();
    // Trees without the record of the blobs they refer to (a log lost or cut short) count on nothing.
    if (!whole || (segments.length === 0 && (await readdirOrEmpty(path.join(this.dir, 'trees'))).length > 0)) {
      await fs.rm(path.join(this.dir, 'index.log'), { force: true });
      for (const t of await readdirOrEmpty(path.join(this.dir, 'trees'))) await fs.rm(path.join(this.dir, 'trees', t), { force: true });
      return;
    }
    for (const { payload } of segments) {
      for (const { id, type, envelope, entries } of decodeIndexFile(payload, 'record')) {
        const name = id.toString('hex');
        if (present.has(name) && !unusable.has(name)) index.addPack({ id, type, writer: writerNo, envelope }, entries);
      }
    }
  }

  /** The log's segments, and whether it was read to its end (a crash while appending leaves a tail). */
  private async segments(): Promise<{ segments: { name: string; payload: Buffer }[]; whole: boolean }> {
    let log: Buffer;
    try {
      log = await fs.readFile(path.join(this.dir, 'index.log'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: [], whole: true };
      throw err;
    }
    const segments: { name: string; payload: Buffer }[] = [];
    let at = 0;
    while (at + 4 <= log.length) {
      const length = log.readUInt32LE(at);
      const plain = at + 4 + length <= log.length ? this.open(log.subarray(at + 4, at + 4 + length)) : null;
      if (!plain || plain.length < 32) break;
      segments.push({ name: plain.subarray(0, 32).toString('hex'), payload: plain.subarray(32) });
      at += 4 + length;
    }
    return { segments, whole: at === log.length };
  }

  /** Records an index file this writer saved (after it is stored): its blobs now count as stored. */
  async addIndex(name: string, payload: readonly Buffer[]): Promise<void> {
    const sealed = this.seal(Buffer.concat([Buffer.from(name, 'hex'), ...payload]));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(sealed.length);
    const fh = await fs.open(path.join(this.dir, 'index.log'), 'a', 0o600);
    try {
      await fh.write(Buffer.concat([length, sealed]));
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** The snapshots this writer recorded, by ID (JSON as stored); those gone from the repository are left out. */
  async snapshots(existing: Set<string>): Promise<{ id: string; json: Buffer }[]> {
    const out: { id: string; json: Buffer }[] = [];
    for (const id of await readdirOrEmpty(path.join(this.dir, 'snapshots'))) {
      if (!existing.has(id)) continue;
      const plain = this.open(await fs.readFile(path.join(this.dir, 'snapshots', id)));
      if (plain) out.push({ id, json: plain });
    }
    return out;
  }

  /** The trees of the last snapshot of `group`, that snapshot's ID and its root tree's; null when there are none. */
  async trees(group: string): Promise<{ snapshot: string; root: string; trees: RecordedTrees } | null> {
    let sealed: Buffer;
    try {
      sealed = await fs.readFile(this.treeFile(group));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const plain = this.open(sealed);
    if (!plain || plain.length < 64) return null;
    return { snapshot: plain.subarray(0, 32).toString('hex'), root: plain.subarray(32, 64).toString('hex'), trees: RecordedTrees.parse(plain.subarray(64)) };
  }

  private treeFile(group: string): string {
    return path.join(this.dir, 'trees', sha256(Buffer.from(group)).toString('hex'));
  }

  /**
   * After the snapshot is stored: it becomes one `snapshots` lists and, with its trees, the
   * next parent of its group. Without trees (a copy older than the group's last snapshot) it
   * is only listed.
   */
  async addSnapshot(id: string, root: string, json: Buffer, group: string, trees?: TreeLog): Promise<void> {
    if (trees) await writeAtomically(this.treeFile(group), this.seal(Buffer.concat([Buffer.from(id, 'hex'), Buffer.from(root, 'hex'), ...trees.parts])));
    await writeAtomically(path.join(this.dir, 'snapshots', id), this.seal(json));
  }
}

/** What makes two snapshots comparable, a parent and its child: the same host and the same sources. */
export function recordGroup(host: string, paths: readonly string[]): string {
  return JSON.stringify([host, paths]);
}

const RECORD_INFO = 'scrate v3 writer record file';
const NONCE = counterNonce(0);
const TREE_ENTRY_HEADER = 32 + 1 + 4 + 4;

/** The trees a backup stores, collected for the record. */
export class TreeLog {
  readonly parts: Buffer[] = [];
  private readonly seen = new Set<string>();

  add(blob: PreparedBlob): void {
    const key = blob.id.toString('latin1');
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const head = Buffer.alloc(TREE_ENTRY_HEADER);
    blob.id.copy(head, 0);
    head[32] = blob.compressed ? 1 : 0;
    head.writeUInt32LE(blob.rawLength, 33);
    head.writeUInt32LE(blob.stored.length, 37);
    this.parts.push(head, Buffer.from(blob.stored));
  }
}

/** Trees read back from the record, by ID. */
export class RecordedTrees {
  private constructor(
    private readonly bytes: Buffer,
    private readonly at: Map<string, { offset: number; length: number; raw: number; compressed: boolean }>,
  ) {}

  static parse(bytes: Buffer): RecordedTrees {
    const at = new Map<string, { offset: number; length: number; raw: number; compressed: boolean }>();
    for (let o = 0; o + TREE_ENTRY_HEADER <= bytes.length; ) {
      const length = bytes.readUInt32LE(o + 37);
      at.set(bytes.subarray(o, o + 32).toString('latin1'), { offset: o + TREE_ENTRY_HEADER, length, raw: bytes.readUInt32LE(o + 33), compressed: bytes[o + 32] === 1 });
      o += TREE_ENTRY_HEADER + length;
    }
    return new RecordedTrees(bytes, at);
  }

  /** A tree's plaintext, or undefined when the record does not have it. */
  get(id: Buffer): Buffer | undefined {
    const e = this.at.get(id.toString('latin1'));
    if (!e) return undefined;
    const stored = this.bytes.subarray(e.offset, e.offset + e.length);
    return e.compressed ? decompress(stored, e.raw) : stored;
  }
}

async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await fs.writeFile(temp, data, { mode: 0o600 });
  await fs.rename(temp, file);
}
