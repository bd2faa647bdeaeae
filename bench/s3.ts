/**
 * S3 throughput: a 1 GiB backup to a loopback S3 server (OpenStack Swift with s3api) against
 * the same server's raw PutObject throughput, measured in the same run with the same
 * connection count. Prints both and their ratio; the target is a ratio of at least 0.8.
 *
 *   npm run bench:s3            (SIZE_MIB=256 for a quicker look)
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { backup } from '../src/archiver/archiver.js';
import { openBackend } from '../src/backend/open.js';
import { Repository } from '../src/repository/repository.js';
import { startS3ServerWithCredentials } from '../test/helpers/s3-server.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env['SIZE_MIB'] ?? 1024) * MiB;
const CONNECTIONS = 8;
const PACK = 16 * MiB;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function rawPut(client: S3Client, bucket: string, run: number, data: Buffer): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i * PACK < SIZE; i = next++) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${run}/${i}`, Body: data.subarray(i * PACK, (i + 1) * PACK) }));
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return SIZE / MiB / ((performance.now() - t0) / 1000);
}

async function scrateBackup(endpoint: string, run: number, source: string): Promise<number> {
  const location = `s3:${endpoint}/bench/run${run}`;
  const opts = { 's3.connections': String(CONNECTIONS) };
  await Repository.init(openBackend(location, opts), 'bench', { kdfMs: 10 });
  const repo = await Repository.open(openBackend(location, opts), 'bench');
  await repo.loadIndex();
  const t0 = performance.now();
  await backup(repo, { paths: [source] });
  return SIZE / MiB / ((performance.now() - t0) / 1000);
}

const server = await startS3ServerWithCredentials();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-bench-s3-'));
try {
  // Incompressible data: both sides move the same number of bytes.
  const data = Buffer.allocUnsafe(SIZE);
  for (let off = 0; off < SIZE; off += 64 * MiB) randomFillSync(data, off, Math.min(64 * MiB, SIZE - off));
  const source = path.join(dir, 'data');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'random.bin'), data);

  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: agent }),
  });
  await client.send(new CreateBucketCommand({ Bucket: 'raw' }));

  const raw: number[] = [];
  const ours: number[] = [];
  // Alternate, so drift in the machine's load hits both sides alike.
  for (let run = 0; run < RUNS; run++) {
    raw.push(await rawPut(client, 'raw', run, data));
    ours.push(await scrateBackup(server.endpoint, run, source));
    console.log(`run ${run + 1}: raw PutObject ${raw[run]!.toFixed(0)} MiB/s, scrate backup ${ours[run]!.toFixed(0)} MiB/s`);
  }
  const r = median(raw);
  const o = median(ours);
  console.log(`\n${SIZE / MiB} MiB, ${CONNECTIONS} connections, ${os.cpus().length} cores, medians of ${RUNS}:`);
  console.log(`| raw PutObject | scrate backup | ratio |\n|---|---|---|\n| ${r.toFixed(0)} MiB/s | ${o.toFixed(0)} MiB/s | ${(o / r).toFixed(2)} |`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
