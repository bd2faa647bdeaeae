import { ScrateError } from '../errors.js';
import { encodePackRecord, type IndexedPack } from '../repository/index-file.js';
import type { PackEntry } from '../repository/pack.js';
import { Packer } from '../repository/packer.js';
import { WRITE_ONLY, type Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';

/** What the three repairs share: who may run them, and how they write packs and index files. */

export interface RepairOptions {
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
}

/** Repairs write as the full writer, for every writer: a full key of a format version 3 repository. */
export function requireFullKey(repo: Repository): void {
  // `keys` refuses a version 2 repository, which is never written.
  if (repo.keys.access !== 'full') throw new ScrateError(WRITE_ONLY);
}

/** Index files are written as packs are added, this many blobs each: memory holds no more, a crash loses no more. */
const BLOBS_PER_INDEX_FILE = 100_000;

/** Writes index files of the packs added, signed by this key (a full key's may list any writer's packs). */
export class IndexFiles {
  private records: Buffer[] = [];
  private blobs = 0;
  readonly names: string[] = [];

  constructor(private readonly repo: Repository) {}

  async add(pack: Omit<IndexedPack, 'entries'>, entries: readonly PackEntry[]): Promise<void> {
    this.records.push(encodePackRecord(pack, entries));
    this.blobs += entries.length;
    if (this.blobs >= BLOBS_PER_INDEX_FILE) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.records.length === 0) return;
    this.names.push(await this.repo.saveIndexFile(this.records));
    this.records = [];
    this.blobs = 0;
  }
}

/** A packer per writer: blobs are stored again as their own writer's, whose key names them. */
export class WriterPackers {
  private readonly packers = new Map<number, Packer>();

  constructor(private readonly repo: Repository) {}

  of(writer: Writer): Packer {
    let packer = this.packers.get(writer.no);
    if (!packer) this.packers.set(writer.no, (packer = new Packer(this.repo, writer)));
    return packer;
  }

  /** Stores every pending pack and the index files for them. */
  async flush(): Promise<void> {
    for (const packer of this.packers.values()) await packer.flush();
  }

  /** Bytes of the packs stored so far. */
  get bytesStored(): number {
    let n = 0;
    for (const packer of this.packers.values()) n += packer.bytesStored;
    return n;
  }
}
