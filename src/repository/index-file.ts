import { WRITER_ID_BYTES } from '../crypto/access.js';
import { EPHEMERAL_BYTES } from '../crypto/keybox.js';
import { TAG_BYTES } from '../crypto/primitives.js';
import { IntegrityError } from '../errors.js';
import { COMPRESSED_BIT } from './blob-index.js';
import { ID_BYTES } from './ids.js';
import { MAX_BLOB_BYTES } from './limits.js';
import { BlobType, type PackEntry } from './pack.js';

/**
 * The body of an index object (docs/FORMAT.md §6): packs, each with its writer, its envelope,
 * when a prune marked it for deletion, and its blobs.
 */
export interface IndexedPack {
  id: Buffer;
  type: BlobType;
  writer: Buffer;
  envelope: Buffer;
  /** 0, or when a prune marked it for deletion (ms since the epoch). */
  markedAt: number;
  entries: PackEntry[];
}

export const BLOB_RECORD_BYTES = ID_BYTES + 12;
const BLOB_RECORD = BLOB_RECORD_BYTES;
const PACK_HEADER = ID_BYTES + 1 + WRITER_ID_BYTES + EPHEMERAL_BYTES + 8 + 4;

/**
 * One pack's part of an index object, encoded when the pack is stored: a writer holds a few
 * bytes per blob until its next index object, not an object per blob (the first backup of a
 * source tree held ~90,000 of them to the end).
 */
export function encodePackRecord(pack: Omit<IndexedPack, 'entries'>, entries: readonly PackEntry[]): Buffer {
  const out = Buffer.alloc(PACK_HEADER + entries.length * BLOB_RECORD);
  let at = pack.id.copy(out, 0);
  out[at++] = pack.type;
  at += pack.writer.copy(out, at);
  at += pack.envelope.copy(out, at);
  at = out.writeDoubleLE(pack.markedAt, at);
  at = out.writeUInt32LE(entries.length, at);
  for (const e of entries) {
    at += e.id.copy(out, at);
    at = out.writeUInt32LE(e.offset, at);
    at = out.writeUInt32LE(e.length, at);
    at = out.writeUInt32LE((e.rawLength | (e.compressed ? COMPRESSED_BIT : 0)) >>> 0, at);
  }
  return out;
}

/** The body of an index object: how many packs, then their records (in parts, for encodeObject). */
export function encodeIndexFile(records: readonly Buffer[]): Buffer[] {
  const count = Buffer.alloc(4);
  count.writeUInt32LE(records.length);
  return [count, ...records];
}

/**
 * An index object's body, every length checked: an index comes from the repository, and a
 * malformed one is damage, never a crash.
 */
export function decodeIndexFile(buf: Buffer, what: string): IndexedPack[] {
  const bad = (detail: string) => new IntegrityError(what, detail);
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw bad('truncated');
  };
  need(4);
  const count = buf.readUInt32LE(0);
  at = 4;
  const packs: IndexedPack[] = [];
  for (let i = 0; i < count; i++) {
    need(PACK_HEADER);
    const id = Buffer.from(buf.subarray(at, (at += ID_BYTES)));
    const type = buf[at++]!;
    if (type !== BlobType.data && type !== BlobType.tree) throw bad(`unknown blob type ${type}`);
    const writer = Buffer.from(buf.subarray(at, (at += WRITER_ID_BYTES)));
    const envelope = Buffer.from(buf.subarray(at, (at += EPHEMERAL_BYTES)));
    const markedAt = buf.readDoubleLE(at);
    at += 8;
    if (!Number.isFinite(markedAt) || markedAt < 0) throw bad('bad mark');
    const n = buf.readUInt32LE(at);
    at += 4;
    need(n * BLOB_RECORD);
    packs.push({ id, type: type as BlobType, writer, envelope, markedAt, entries: decodeBlobRecords(buf, at, n, type as BlobType, bad) });
    at += n * BLOB_RECORD;
  }
  if (at !== buf.length) throw bad('trailing bytes');
  return packs;
}

/** `n` blob records at `at` (the same layout in format versions 2 and 3). */
export function decodeBlobRecords(buf: Buffer, at: number, n: number, type: BlobType, bad: (detail: string) => Error): PackEntry[] {
  const entries: PackEntry[] = [];
  for (let j = 0; j < n; j++, at += BLOB_RECORD) {
    const offset = buf.readUInt32LE(at + ID_BYTES);
    const length = buf.readUInt32LE(at + ID_BYTES + 4);
    const raw = buf.readUInt32LE(at + ID_BYTES + 8);
    const rawLength = raw & ~COMPRESSED_BIT;
    // A blob is stored compressed only when that is smaller, else as it is: its tag on top.
    if (rawLength > MAX_BLOB_BYTES || length < TAG_BYTES || length > rawLength + TAG_BYTES) throw bad('blob lengths out of range');
    entries.push({ type, id: Buffer.from(buf.subarray(at, at + ID_BYTES)), offset, length, rawLength, compressed: (raw & COMPRESSED_BIT) !== 0 });
  }
  return entries;
}
