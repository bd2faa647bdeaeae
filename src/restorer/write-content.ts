import { NotFoundError } from '../backend/backend.js';
import { abortReason, IntegrityError } from '../errors.js';
import type { BlobReader } from '../repository/repository.js';
import { Budget } from '../util/budget.js';
import type { ContentPlan, JobSpec } from './content-plan.js';
import { encodeContent, type FileStates, type JobResult, type PackJob } from './pack-job.js';
import { PackWriters } from './pack-writers.js';

/** Reads of a blob before a verification failure counts as damage (a garbled transfer is not). */
const READ_ATTEMPTS = 3;
/**
 * Pack bytes read and not yet written, at most: a pack's worth. 64 MiB (and jobs of up to 32)
 * was no faster on the kernel tree and 30 MiB higher at the peak (docs/PERFORMANCE.md).
 */
const BYTES_IN_FLIGHT = 16 * 1024 * 1024;

export interface ContentWriterOptions {
  overwrite: boolean;
  signal?: AbortSignal;
}

/**
 * Writes planned content: reads each pack range once (as many at a time as the backend likes,
 * within one memory budget however many plans are being written) and has worker threads
 * decrypt it into the files.
 */
export class ContentWriter {
  private readonly memory = new Budget(BYTES_IN_FLIGHT);
  private readonly reads: Budget;
  private writers: PackWriters | undefined;

  constructor(
    private readonly reader: BlobReader,
    private readonly opts: ContentWriterOptions,
  ) {
    this.reads = new Budget(reader.backend.connections);
  }

  /**
   * Writes the plan's files beneath `target`, a descriptor of the target directory. `onResult`
   * gets each job's outcome as it comes; throwing stops the writing (after the jobs under way).
   */
  async write(plan: ContentPlan, target: number, onResult: (result: JobResult) => void): Promise<void> {
    const states = plan.states();
    let failure: unknown;
    const running: Promise<void>[] = [];
    const run = async (spec: JobSpec, attempt: number): Promise<void> => {
      const job = await this.read(spec, states);
      this.writers ??= new PackWriters(this.reader.chunkIdKey);
      const result = await this.writers.run({ ...job, target, overwrite: this.opts.overwrite, lastAttempt: attempt >= READ_ATTEMPTS });
      onResult(result);
      if (result.retry.length) await run(plan.spec(spec.pack, result.retry.map((i) => spec.blobs[i]!)), attempt + 1);
    };
    for (const spec of plan.jobs()) {
      if (this.opts.signal?.aborted) failure ??= abortReason(this.opts.signal);
      if (failure !== undefined) break;
      const size = spec.end - spec.start;
      await this.memory.admit(size);
      running.push(
        run(spec, 1)
          .catch((err: unknown) => void (failure ??= err))
          .finally(() => this.memory.release(size)),
      );
    }
    await Promise.all(running);
    if (failure !== undefined) throw failure;
  }

  async close(): Promise<void> {
    await this.writers?.close();
  }

  /** A job with its pack range read, or with why it cannot be (damage to the files that need it). */
  private async read(spec: JobSpec, states: FileStates): Promise<Omit<PackJob, 'target' | 'overwrite' | 'lastAttempt'>> {
    const packId = spec.pack.id.toString('hex');
    const job: Omit<PackJob, 'target' | 'overwrite' | 'lastAttempt'> = { packId, packKey: Buffer.alloc(0), start: spec.start, bytes: Buffer.alloc(0), content: encodeContent(spec.blobs, spec.files), states: states.buffer };
    try {
      // A copy: a view's whole buffer would go with the message.
      job.packKey = new Uint8Array(this.reader.packKey(packId, spec.pack.envelope));
      if (spec.end > spec.start) {
        await this.reads.admit(1);
        try {
          job.bytes = await this.reader.backend.load('data', packId, { range: { offset: spec.start, length: spec.end - spec.start } });
        } finally {
          this.reads.release(1);
        }
      }
      return job;
    } catch (err) {
      if (err instanceof NotFoundError) return { ...job, unreadable: `its pack ${packId.slice(0, 12)} is missing` };
      if (err instanceof IntegrityError) return { ...job, unreadable: err.message };
      throw err;
    }
  }
}
