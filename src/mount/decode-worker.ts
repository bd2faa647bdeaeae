import { parentPort } from 'node:worker_threads';
import { decodeSealedBlob } from '../repository/repository.js';
import type { DecodeJob } from './blob-decoder.js';

/** A worker thread of BlobDecoder: decrypts, decompresses and verifies the blobs it is sent. */
parentPort!.on('message', (job: DecodeJob) => {
  try {
    const sealed = Buffer.from(job.sealed);
    const plain = decodeSealedBlob(Buffer.from(job.packKey), Buffer.from(job.chunkIdKey), Buffer.from(job.id), job.loc, sealed, job.packId);
    // A small blob lies in Node's shared buffer pool, which must not be given away: a copy of its own goes.
    const own = plain.byteOffset === 0 && plain.byteLength === plain.buffer.byteLength ? (plain.buffer as ArrayBuffer) : new Uint8Array(plain).buffer;
    parentPort!.postMessage({ seq: job.seq, plain: own }, [own]);
  } catch (err) {
    parentPort!.postMessage({ seq: job.seq, error: (err as Error)?.message ?? String(err) });
  }
});
