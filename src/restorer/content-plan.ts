import type { PackInfo } from '../repository/blob-index.js';
import type { BlobReader } from '../repository/repository.js';
import { isZeroBlob, locate } from './content.js';
import type { Metadata } from './metadata.js';
import { FileStates, type FileTarget, type JobBlob } from './pack-job.js';

/** Most bytes of a pack one job reads (a single larger blob excepted): what a job holds in memory. */
const MAX_JOB_BYTES = 8 * 1024 * 1024;
/** Needed blobs further apart than this are read separately, not as one covering range. */
const MAX_GAP = 1024 * 1024;

/** Blobs of one pack to read as one range, with the files they go to. */
export interface JobSpec {
  pack: PackInfo;
  /** In pack order. */
  blobs: JobBlob[];
  /** The range to read: from the first blob that is not a zero blob to the end of the last. */
  start: number;
  end: number;
  files: [number, FileTarget][];
}

/**
 * The content of a set of files, turned around: for each pack, the blobs needed from it and
 * every place each one goes. Each pack range is then read, decrypted and written once, however
 * many files share its blobs, and each file is written once.
 */
export class ContentPlan {
  private readonly files: FileTarget[] = [];
  private readonly writes: number[] = [];
  /** Blobs needed from each pack, by offset; packs in the order first needed (the order of the walk, mostly the order written). */
  private readonly packs = new Map<PackInfo, Map<number, JobBlob>>();
  /** Blob writes planned, a measure of the plan's memory. */
  size = 0;

  constructor(private readonly reader: BlobReader) {}

  /**
   * Plans a file (its path relative to the target): returns its number, or null when there is
   * nothing to write (it is empty, or all holes), and its length. Throws IntegrityError when a
   * blob is not in the index.
   */
  add(path: Buffer, sparse: boolean, meta: Metadata, content: readonly Buffer[]): { file: number | null; length: number } {
    const locs = content.map((id) => locate(this.reader, id));
    const f = this.files.length;
    let length = 0;
    let writes = 0;
    for (const [i, loc] of locs.entries()) {
      const id = content[i]!;
      const zero = isZeroBlob(this.reader, id, loc);
      if (!(zero && sparse)) {
        let blobs = this.packs.get(loc.pack);
        if (!blobs) this.packs.set(loc.pack, (blobs = new Map()));
        let blob = blobs.get(loc.offset);
        if (!blob) blobs.set(loc.offset, (blob = { id, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, compressed: loc.compressed, zero, targets: [] }));
        blob.targets.push(f, length);
        writes++;
      }
      length += loc.rawLength;
    }
    if (writes === 0) return { file: null, length };
    this.files.push({ path, length, sparse, meta });
    this.writes.push(writes);
    this.size += writes;
    return { file: f, length };
  }

  file(f: number): FileTarget {
    return this.files[f]!;
  }

  get empty(): boolean {
    return this.files.length === 0;
  }

  /** The shared counters the writing threads start from. */
  states(): FileStates {
    return FileStates.create(this.writes);
  }

  *jobs(): Generator<JobSpec> {
    for (const [pack, byOffset] of this.packs) {
      const blobs = [...byOffset.values()].sort((a, b) => a.offset - b.offset);
      let run: JobBlob[] = [];
      let start = -1;
      let end = 0;
      for (const blob of blobs) {
        if (!blob.zero) {
          if (start >= 0 && (blob.offset - end > MAX_GAP || blob.offset + blob.length - start > MAX_JOB_BYTES)) {
            yield this.spec(pack, run);
            run = [];
            start = -1;
          }
          if (start < 0) start = blob.offset;
          end = blob.offset + blob.length;
        }
        run.push(blob);
      }
      if (run.length) yield this.spec(pack, run);
    }
  }

  /** A job for some blobs of a pack (in pack order). */
  spec(pack: PackInfo, blobs: JobBlob[]): JobSpec {
    const read = blobs.filter((b) => !b.zero);
    const start = read[0]?.offset ?? 0;
    const end = read.length ? read[read.length - 1]!.offset + read[read.length - 1]!.length : 0;
    const files = new Set<number>();
    for (const blob of blobs) for (let t = 0; t < blob.targets.length; t += 2) files.add(blob.targets[t]!);
    return { pack, blobs, start, end, files: [...files].map((f) => [f, this.files[f]!]) };
  }
}
