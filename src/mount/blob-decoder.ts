import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BlobLocation } from '../repository/blob-index.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';

export interface DecodeJob {
  seq: number;
  packKey: Uint8Array;
  chunkIdKey: Uint8Array;
  id: Uint8Array;
  loc: Omit<BlobLocation, 'pack'>;
  sealed: ArrayBuffer;
  packId: string;
}

interface Pending {
  resolve: (plain: Buffer) => void;
  reject: (err: Error) => void;
}

/**
 * Content blobs read for a mount, decrypted, decompressed and verified on worker threads: on the
 * main thread, which also answers every FUSE request, that work was what bounded a sequential
 * read. The main thread only reads the sealed bytes (one ranged read) and finds the pack's key.
 * A blob that fails on a worker is read again the usual way (reader.loadBlob), which retries a
 * garbled transfer and names the damage.
 */
export class BlobDecoder {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** A worker failed or ended: from then on blobs are read the usual way. */
  private broken = false;

  constructor(count = Math.min(4, Math.max(2, os.availableParallelism()))) {
    this.workers = Array.from({ length: count }, () => {
      const worker = new Worker(new URL('./decode-worker.js', import.meta.url));
      worker.on('message', (m: { seq: number; plain?: ArrayBuffer; error?: string }) => {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        if (m.plain) p?.resolve(Buffer.from(m.plain));
        else p?.reject(new Error(m.error));
      });
      const fail = () => {
        this.broken = true;
        for (const p of this.pending.values()) p.reject(new Error('a decoding worker ended'));
        this.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', fail);
      // Idle workers keep nothing alive: the mount's own session does while it lasts.
      worker.unref();
      return worker;
    });
  }

  async load(reader: BlobReader, id: Buffer): Promise<Buffer> {
    const loc = reader.find(BlobType.data, id);
    if (!loc || this.broken) return reader.loadBlob(BlobType.data, id);
    try {
      const packId = loc.pack.id.toString('hex');
      const sealed = await reader.backend.load('data', packId, { range: { offset: loc.offset, length: loc.length } });
      const packKey = reader.packKey(packId, loc.pack.envelope);
      const { offset, length, rawLength, compressed } = loc;
      const seq = this.seq++;
      const job: DecodeJob = { seq, packKey, chunkIdKey: reader.chunkIdKey, id, loc: { offset, length, rawLength, compressed }, sealed: transferable(sealed), packId };
      return await new Promise<Buffer>((resolve, reject) => {
        this.pending.set(seq, { resolve, reject });
        this.workers[seq % this.workers.length]!.postMessage(job, [job.sealed]);
      });
    } catch {
      return reader.loadBlob(BlobType.data, id);
    }
  }

  async close(): Promise<void> {
    this.broken = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The buffer's bytes as an ArrayBuffer of their own, to hand to a worker without a copy when they already are one. */
function transferable(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  return new Uint8Array(b).buffer;
}
