import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { transferable, type JobResult, type PackJob } from './pack-job.js';

interface Slot {
  worker: Worker;
  /** Jobs sent and not yet answered, in the order sent (a worker answers in order). */
  pending: { resolve: (r: JobResult) => void; reject: (err: Error) => void }[];
}

/**
 * Worker threads that decrypt, verify and write pack ranges into the restored files, one per
 * core: restoring is bound by the CPU (decryption, zstd, keyed hashes) and by file system calls
 * (creating, writing and chmod-ing tens of thousands of files), and both spread over threads.
 */
export class PackWriters {
  private readonly slots: Slot[];
  private failure: Error | undefined;
  private closing = false;

  constructor(chunkIdKey: Buffer, count = Math.max(1, os.availableParallelism())) {
    this.slots = Array.from({ length: count }, () => {
      // Its descriptors come from restore.c, not from fs.open: Node's tracking of them would warn at each close.
      const worker = new Worker(new URL('./pack-worker.js', import.meta.url), { workerData: chunkIdKey, trackUnmanagedFds: false });
      const slot: Slot = { worker, pending: [] };
      worker.on('message', (m: { result: JobResult } | { error: string }) => {
        if ('error' in m) die(new Error(`a restore worker failed: ${m.error}`));
        else slot.pending.shift()!.resolve(m.result);
      });
      // A worker that fails fails every job, later ones too: the restore stops with the error.
      const die = (err: Error) => {
        this.failure ??= err;
        for (const p of slot.pending.splice(0)) p.reject(err);
      };
      worker.on('error', die);
      worker.on('exit', (code) => {
        if (!this.closing) die(new Error(`a restore worker exited (code ${code})`));
      });
      return slot;
    });
  }

  /** Runs a job on the least busy worker; its buffers are handed over, not copied. */
  run(job: PackJob): Promise<JobResult> {
    if (this.failure) return Promise.reject(this.failure);
    const slot = this.slots.reduce((a, b) => (b.pending.length < a.pending.length ? b : a));
    return new Promise((resolve, reject) => {
      slot.pending.push({ resolve, reject });
      slot.worker.postMessage(job, transferable(job));
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
