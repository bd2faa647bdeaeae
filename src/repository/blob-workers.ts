import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PreparedBlob } from './blob-prepare.js';

interface Pending {
  resolve: (p: PreparedBlob) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Worker threads that hash and compress data blobs, so that on a machine with n cores the
 * main thread only reads, chunks, encrypts and writes. Each blob goes to the least busy worker;
 * a worker keeps the process alive only while it has work.
 */
export class BlobWorkers {
  private readonly slots: Slot[];
  private seq = 0;
  private failure: Error | undefined;
  private closing = false;

  constructor(chunkIdKey: Buffer, count = Math.max(1, os.availableParallelism())) {
    this.slots = Array.from({ length: count }, () => {
      const worker = new Worker(new URL('./blob-worker.js', import.meta.url), { workerData: chunkIdKey });
      const slot: Slot = { worker, pending: new Map() };
      worker.on('message', (m: { seq: number; id: Uint8Array; stored: Uint8Array; compressed: boolean; rawLength: number }) => {
        const p = slot.pending.get(m.seq)!;
        slot.pending.delete(m.seq);
        if (slot.pending.size === 0) worker.unref();
        p.resolve({ id: toBuffer(m.id), stored: toBuffer(m.stored), compressed: m.compressed, rawLength: m.rawLength });
      });
      // A worker that dies fails its jobs and every later one: the backup stops with the error.
      const die = (err: Error) => {
        this.failure ??= err;
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
      };
      worker.on('error', die);
      worker.on('exit', (code) => {
        if (!this.closing) die(new Error(`a blob worker exited (code ${code})`));
      });
      worker.unref();
      return slot;
    });
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Hashes and compresses `data`. Before returning, it is sent away: a view into a larger buffer
   * is copied, so the caller may reuse that buffer at once; data that owns its whole memory is
   * handed over and must not be touched again.
   */
  prepare(data: Uint8Array, level: number): Promise<PreparedBlob> {
    if (this.failure) return Promise.reject(this.failure);
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const seq = this.seq++;
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : Uint8Array.prototype.slice.call(data);
    return new Promise((resolve, reject) => {
      slot.pending.set(seq, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage({ seq, data: owned, level }, [owned.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
