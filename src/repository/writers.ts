import type { KeyObject } from 'node:crypto';
import { FULL_WRITER, writerKeys, type AccessKeys, type ReadSecrets } from '../crypto/access.js';
import { verifyingKey } from '../crypto/signing.js';

/**
 * Who may have written what: the writers full keys accept objects from (docs/FORMAT.md §8).
 * Writer 0 is the repository itself (full keys, signing with the admin key); the others are
 * write-only keys, registered by a full key in `writers/` objects the admin key signs.
 */
export interface Writer {
  /** This process's number for it (the blob index keeps it per pack). */
  no: number;
  id: Buffer;
  hex: string;
  access: 'full' | 'write-only';
  /** The host a write-only key was made for. */
  hostname?: string;
  /** Absent for the one writer of a format version 2 repository, which signed nothing. */
  publicKey?: KeyObject;
  /** Names its blobs: what a blob it stored is verified against. */
  chunkIdKey: Buffer;
  /** Keys its chunker's cut points; absent for the one writer of a version 2 repository. */
  chunkerKey?: Buffer;
  /** The writer whose blob and chunker keys it was given (`key add --share-full-keys`): the full writer. */
  keysOf?: Buffer;
  /** Set once a full key revoked it: objects it signed are accepted only if listed here. */
  revoked?: { time: string; snapshots: Set<string>; index: Set<string> };
}

/** A `writers/` object's content: a registration, or (with `revoked`) a revocation. */
export interface WriterRecord {
  writer: string;
  publicKey?: string;
  hostname?: string;
  created?: string;
  /** Its blob and chunker keys are this writer's (only the full writer's may be taken), not its own. */
  keysOf?: string;
  revoked?: { time: string; snapshots: string[]; index: string[] };
}

const HEX_NAMES = /^[0-9a-f]{64}$/;

export class Writers {
  private readonly list: Writer[] = [];
  private readonly byHex = new Map<string, Writer>();

  /**
   * Starts with the key's own writer; a full key (`read`) then loads every registered one, a
   * write-only key knows only itself.
   */
  constructor(
    self: Omit<Writer, 'no' | 'hex'>,
    private readonly read?: ReadSecrets,
  ) {
    this.add(self);
  }

  static of(keys: AccessKeys): Writers {
    return new Writers({ id: keys.writer.id, access: keys.access, hostname: keys.hostname, publicKey: verifyingKey(keys.writer.signing.public), chunkIdKey: keys.writer.chunkIdKey, chunkerKey: keys.writer.chunkerKey }, keys.read);
  }

  /** The writer full keys write as. */
  get full(): Writer | undefined {
    return this.byHex.get(FULL_WRITER.toString('hex'));
  }

  get self(): Writer {
    return this.list[0]!;
  }

  get all(): readonly Writer[] {
    return this.list;
  }

  get(id: Buffer): Writer | undefined {
    return this.byHex.get(id.toString('hex'));
  }

  byNo(no: number): Writer {
    return this.list[no]!;
  }

  /**
   * Takes in the `writers/` records (each already verified as signed by the admin key): a
   * registration adds a writer, a revocation marks it; a malformed record is skipped
   * (reported through `onBad`). Only full keys load them.
   */
  load(records: WriterRecord[], onBad: (why: string) => void): void {
    const read = this.read!;
    for (const r of records.filter((r) => !r.revoked)) {
      const id = hexId(r.writer);
      const key = typeof r.publicKey === 'string' ? Buffer.from(r.publicKey, 'base64') : null;
      const keysOf = r.keysOf === undefined ? undefined : hexId(r.keysOf);
      if (!id || id.equals(FULL_WRITER) || key?.length !== 32 || typeof r.hostname !== 'string' || keysOf === null || (keysOf && !keysOf.equals(FULL_WRITER))) {
        onBad(`malformed writer record for ${String(r.writer)}`);
        continue;
      }
      if (this.byHex.has(r.writer)) continue;
      this.add({ id, access: 'write-only', hostname: r.hostname, publicKey: verifyingKey(key), ...writerKeys(read, keysOf ?? id), ...(keysOf && { keysOf }) });
    }
    for (const r of records.filter((r) => r.revoked)) {
      const w = this.byHex.get(r.writer);
      const v = r.revoked!;
      if (!w || w.access === 'full' || typeof v.time !== 'string' || !isNames(v.snapshots) || !isNames(v.index)) {
        onBad(`malformed revocation of writer ${String(r.writer)}`);
        continue;
      }
      // Two revocations of one writer (two full keys at once): what either accepted stays accepted.
      w.revoked ??= { time: v.time, snapshots: new Set(), index: new Set() };
      for (const s of v.snapshots) w.revoked.snapshots.add(s);
      for (const i of v.index) w.revoked.index.add(i);
    }
  }

  private add(w: Omit<Writer, 'no' | 'hex'>): void {
    const writer: Writer = { ...w, no: this.list.length, hex: w.id.toString('hex') };
    this.list.push(writer);
    this.byHex.set(writer.hex, writer);
  }

  /** How a writer is shown to users. */
  static label(w: Writer): string {
    return w.access === 'full' ? 'full' : `${w.hostname ?? 'this key'} (${w.hex.slice(0, 8)})`;
  }
}

function hexId(s: unknown): Buffer | null {
  return typeof s === 'string' && /^[0-9a-f]{32}$/.test(s) ? Buffer.from(s, 'hex') : null;
}

function isNames(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string' && HEX_NAMES.test(s));
}
