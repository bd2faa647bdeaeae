import { checkAborted, IntegrityError } from '../errors.js';
import { entriesByPack, packEntries } from '../maintenance/prune.js';
import type { Packer } from '../repository/packer.js';
import { unsealBlob, type Repository } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';

/** Blobs of one pack further apart than this are read by two requests (as restore's content plan). */
export const MAX_GAP = 1024 * 1024;
/** One request reads at most this much (unless one blob is larger): memory is this × connections. */
export const MAX_JOB_BYTES = 8 * 1024 * 1024;

/** One ranged read of a source pack: the index entries of the blobs in it, by offset. */
interface ReadJob {
  pack: number;
  offset: number;
  length: number;
  entries: number[];
}

export interface TransferStats {
  blobs: number;
  /** Bytes read from the source's packs (ranges, gaps included). */
  bytesRead: number;
}

/**
 * Source blobs to copy (a byte per source index entry) as ranged reads: packs in index order
 * (about the order they were written, so blobs stored together stay together), blobs by
 * offset, neighbours merged across small gaps.
 */
export function planReads(src: Repository, wanted: Uint8Array): ReadJob[] {
  const { index } = src;
  const byPack = entriesByPack(src, index.packs.length);
  const jobs: ReadJob[] = [];
  for (let p = 0; p < index.packs.length; p++) {
    const entries = Array.from(packEntries(byPack, p)).filter((n) => wanted[n]);
    entries.sort((a, b) => index.entry(a).offset - index.entry(b).offset);
    let job: ReadJob | undefined;
    for (const n of entries) {
      const { offset, length } = index.entry(n);
      const end = job && job.offset + job.length;
      if (job && end !== undefined && offset - end <= MAX_GAP && offset + length - job.offset <= MAX_JOB_BYTES) {
        job.length = Math.max(end, offset + length) - job.offset;
        job.entries.push(n);
      } else {
        jobs.push((job = { pack: p, offset, length, entries: [n] }));
      }
    }
  }
  return jobs;
}

/**
 * Reads the planned ranges (`connections` at once, taken in order), verifies each blob with the
 * source key of its pack's writer (GCM and keyed ID: a mislabelled blob is not spread) and puts
 * it into the target's packer of the same writer as stored, never recompressed, as prune's
 * repack does.
 */
export async function transferBlobs(src: Repository, packer: Packer, jobs: readonly ReadJob[], signal?: AbortSignal): Promise<TransferStats> {
  const { index } = src;
  const stats: TransferStats = { blobs: 0, bytesRead: 0 };
  const load = (job: ReadJob) => {
    const packId = index.packs[job.pack]!.id.toString('hex');
    return src.backend.load('data', packId, { range: { offset: job.offset, length: job.length } });
  };
  let done = 0;
  for await (const bytes of inOrder(jobs, src.backend.connections, load)) {
    const job = jobs[done++]!;
    checkAborted(signal);
    const pack = index.packs[job.pack]!;
    const packId = pack.id.toString('hex');
    if (bytes.length !== job.length) throw new IntegrityError(`pack ${packId.slice(0, 12)}`, 'shorter than the index says');
    const writer = src.writers.byNo(pack.writer);
    const key = src.packKey(packId, pack.envelope);
    stats.bytesRead += bytes.length;
    for (const n of job.entries) {
      const e = index.entry(n);
      const at = e.offset - job.offset;
      const { stored } = unsealBlob(key, writer.chunkIdKey, e.id, e, bytes.subarray(at, at + e.length), packId);
      if (!packer.claim(pack.type, e.id)) continue;
      await packer.put(pack.type, { id: Buffer.from(e.id), stored: Buffer.from(stored), compressed: e.compressed, rawLength: e.rawLength });
      stats.blobs++;
    }
  }
  return stats;
}
