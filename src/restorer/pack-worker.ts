import { parentPort, workerData } from 'node:worker_threads';
import { runPackJob, type PackJob } from './pack-job.js';

/** A worker thread of PackWriters: writes the content of the pack ranges it is sent. */
const chunkIdKey = Buffer.from(workerData as Uint8Array);

parentPort!.on('message', (job: PackJob) => {
  try {
    parentPort!.postMessage({ result: runPackJob(job, chunkIdKey) });
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
