import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { FastCDC } from '../chunker/fastcdc.js';
import { hmacSha256 } from '../crypto/primitives.js';
import { compress } from '../repository/compression.js';
import { BlobType, newDataPack, type PackWriter } from '../repository/pack.js';
import type { FileOutcome, Job, Reply, WirePack, WorkerSetup } from './chunk-workers.js';
import { chunkBuffer, fileChunks } from './file-chunks.js';

/** A thread of ChunkWorkers: reads small files whole, cuts and hashes; compresses, encrypts and packs the new blobs. */
const setup = workerData as WorkerSetup;
const key = Buffer.from(setup.chunkIdKey);
const dataPublicKey = Buffer.from(setup.dataPublicKey);
const chunker = new FastCDC(setup.chunker);
const buffer = chunkBuffer(chunker);
/** Room for a full pack and the blob that fills it (pages never written cost no memory). */
const PACK_CAPACITY = setup.packSize + 1024 * 1024;

interface Blob {
  id: Buffer;
  data: Buffer;
}

/** Blobs hashed and waiting for the main thread's word on which are new, by job. */
const waiting = new Map<number, Blob[]>();
let pack: PackWriter | undefined;

function reply(r: Reply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(r, transfer);
}

// One job at a time, in order: the read buffer is shared. A job that throws fails alone.
let queue = Promise.resolve();
parentPort!.on('message', (job: Job) => {
  queue = queue.then(() => handle(job)).catch((err: unknown) => reply({ seq: job.seq, kind: 'failed', message: err instanceof Error ? err.message : String(err) }));
});

async function handle(job: Job): Promise<void> {
  switch (job.kind) {
    case 'files':
    case 'chunk': {
      const blobs: Blob[] = [];
      const files = job.kind === 'files' ? await readFiles(job, blobs) : [];
      if (job.kind === 'chunk') {
        const data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
        blobs.push({ id: hmacSha256(key, data), data });
      }
      waiting.set(job.seq, blobs);
      const ids = Buffer.allocUnsafeSlow(blobs.length * 32);
      blobs.forEach((b, i) => b.id.copy(ids, i * 32));
      const rawLengths = Uint32Array.from(blobs, (b) => b.data.length);
      reply({ seq: job.seq, kind: 'hashed', files, ids, rawLengths }, [ids.buffer as ArrayBuffer]);
      return;
    }
    case 'store': {
      const blobs = waiting.get(job.seq)!;
      waiting.delete(job.seq);
      const packs: WirePack[] = [];
      blobs.forEach((b, i) => {
        if (job.fresh[i] === 1) store(b, packs);
      });
      sendPacks(job.seq, packs);
      return;
    }
    case 'flush': {
      const packs: WirePack[] = [];
      if (pack) packs.push(finishPack());
      sendPacks(job.seq, packs);
      return;
    }
  }
}

function store(blob: Blob, packs: WirePack[]): void {
  const packed = compress(blob.data, setup.level);
  pack ??= newDataPack(dataPublicKey, PACK_CAPACITY);
  pack.add(BlobType.data, blob.id, packed ?? blob.data, blob.data.length, packed !== null);
  if (pack.bytes >= setup.packSize) packs.push(finishPack());
}

function finishPack(): WirePack {
  const { bytes, entries, id } = pack!.finish();
  const wire = { bytes, entries, id, envelope: pack!.envelope };
  pack = undefined;
  return wire;
}

function sendPacks(seq: number, packs: WirePack[]): void {
  // A pack's buffer is its own allocation: handed over, not copied.
  reply({ seq, kind: 'stored', packs }, packs.map((p) => p.bytes.buffer as ArrayBuffer));
}

async function readFiles(job: Extract<Job, { kind: 'files' }>, blobs: Blob[]): Promise<FileOutcome[]> {
  const paths = Buffer.from(job.paths.buffer, job.paths.byteOffset, job.paths.byteLength);
  const outcomes: FileOutcome[] = [];
  for (let i = 0; i < job.ends.length; i++) {
    const path = paths.subarray(i === 0 ? 0 : job.ends[i - 1], job.ends[i]);
    const before = blobs.length;
    const outcome = await readFile(path, job.sizes[i]!, job.mtimes[i]!, blobs);
    // A file that failed part way contributes no blobs.
    if (outcome.error) blobs.length = before;
    outcome.chunks = blobs.length - before;
    outcomes.push(outcome);
  }
  return outcomes;
}

async function readFile(path: Buffer, size: number, mtimeNs: bigint, blobs: Blob[]): Promise<FileOutcome> {
  let fd: number;
  try {
    fd = openNoAtime(path);
  } catch (err) {
    return { chunks: 0, read: 0, changed: false, error: { code: codeOf(err), during: 'open' } };
  }
  try {
    let read = 0;
    const reader = async (buf: Buffer, offset: number, length: number) => readSync(fd, buf, offset, length, null);
    for await (const chunk of fileChunks(reader, chunker, buffer)) {
      // A copy: the next read overwrites the buffer, and the blob waits for the main thread's answer.
      const data = Buffer.from(chunk);
      blobs.push({ id: hmacSha256(key, data), data });
      read += chunk.length;
    }
    const after = fstatSync(fd, { bigint: true });
    return { chunks: 0, read, changed: after.mtimeNs !== mtimeNs || Number(after.size) !== size || read !== size };
  } catch (err) {
    return { chunks: 0, read: 0, changed: false, error: { code: codeOf(err), during: 'read' } };
  } finally {
    closeSync(fd);
  }
}

/** O_NOATIME is refused for files we do not own unless we are root: then without it. */
function openNoAtime(path: Buffer): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
