import { parentPort, workerData } from 'node:worker_threads';
import { prepareBlob } from './blob-prepare.js';

/** A worker thread of BlobWorkers: hashes and compresses the blobs it is sent. */
const key = Buffer.from(workerData as Uint8Array);

parentPort!.on('message', ({ seq, data, level }: { seq: number; data: Uint8Array; level: number }) => {
  const p = prepareBlob(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength), level);
  const message = { seq, id: p.id, stored: p.stored, compressed: p.compressed, rawLength: p.rawLength };
  const owned = p.stored.byteOffset === 0 && p.stored.byteLength === p.stored.buffer.byteLength;
  try {
    parentPort!.postMessage(message, owned ? [p.stored.buffer as ArrayBuffer] : []);
  } catch {
    // Memory the compressor allocated may not be transferable: copy it instead.
    parentPort!.postMessage(message);
  }
});
