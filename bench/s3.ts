/**
 * S3 throughput: a 1 GiB backup to a loopback S3 server (OpenStack Swift with s3api) against
 * the same server's raw PutObject throughput, measured in the same run with the same
 * connection count and object size. Prints both, their ratio (the target is at least 0.8), and
 * the CPU time per MiB of the client (this process, all threads) and of the server: on a small
 * machine the two share the cores, so the CPU time says more than the wall time.
 *
 *   npm run bench:s3            (SIZE_MIB=256 for a quicker look)
 *   PIN=1 npm run bench:s3      (the server on the last core, the client on the others, as if
 *                                the server were another machine; both sides alike)
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { backup } from '../src/archiver/archiver.js';
import { openBackend } from '../src/backend/open.js';
import { presetPayloadHash } from '../src/backend/s3.js';
import { Repository } from '../src/repository/repository.js';
import { startS3ServerWithCredentials, type S3Server } from '../test/helpers/s3-server.js';
import { cpuSeconds, median } from './lib.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env['SIZE_MIB'] ?? 1024) * MiB;
const CONNECTIONS = 8;
const PACK = 16 * MiB;
const RUNS = 3;
const PIN = process.env['PIN'] === '1';

interface Result {
  mibPerSecond: number;
  /** CPU milliseconds per MiB stored, of this process and of the server's processes. */
  clientCpu: number;
  serverCpu: number;
}

/** User and system CPU time of the server's processes (all their threads) so far, in ms. */
const serverCpuMs = (server: S3Server): number => cpuSeconds(server.pids()) * 1000;

async function measure(server: S3Server, run: () => Promise<void>): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuMs(server);
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mib = SIZE / MiB;
  return { mibPerSecond: mib / seconds, clientCpu: (cpu.user + cpu.system) / 1000 / mib, serverCpu: (serverCpuMs(server) - server0) / mib };
}

/**
 * The server's own speed: the SDK with scrate's client settings, its payload hashes computed
 * beforehand (as scrate knows a pack's), so that the client costs as little as it can.
 */
async function rawPut(client: S3Client, bucket: string, run: number, data: Buffer, hashes: string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i * PACK < SIZE; i = next++) {
      const command = new PutObjectCommand({ Bucket: bucket, Key: `raw/${run}/${i}`, Body: data.subarray(i * PACK, (i + 1) * PACK) });
      presetPayloadHash(command, hashes[i]!);
      await client.send(command);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

/** Creates and opens run `run`'s repository; returns the backup into it, to be timed. */
async function prepareBackup(endpoint: string, run: number, source: string): Promise<() => Promise<void>> {
  const location = `s3:${endpoint}/bench/run${run}`;
  const opts = { 's3.connections': String(CONNECTIONS) };
  await Repository.init(await openBackend(location, opts), 'bench', { kdfMs: 10 });
  const repo = await Repository.open(await openBackend(location, opts), 'bench');
  await repo.loadIndex();
  return async () => {
    await backup(repo, { paths: [source] });
  };
}

/** Pins every thread of the processes, and the threads they start later, to the CPUs in `list`. */
function pin(pids: number[], list: string): void {
  for (const pid of pids) execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', list, String(pid)], { stdio: 'ignore' });
}

const server = await startS3ServerWithCredentials();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-bench-s3-'));
try {
  const cores = os.availableParallelism();
  if (PIN) {
    if (cores < 2) throw new Error('PIN=1 needs at least 2 cores');
    pin(server.pids(), String(cores - 1));
    pin([process.pid], cores > 2 ? `0-${cores - 2}` : '0');
  }
  // Incompressible data: both sides move the same number of bytes.
  const data = Buffer.allocUnsafe(SIZE);
  for (let off = 0; off < SIZE; off += 64 * MiB) randomFillSync(data, off, Math.min(64 * MiB, SIZE - off));
  const hashes: string[] = [];
  for (let off = 0; off < SIZE; off += PACK) hashes.push(createHash('sha256').update(data.subarray(off, off + PACK)).digest('hex'));
  const source = path.join(dir, 'data');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'random.bin'), data);

  // The settings of S3Backend's client.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: agent, connectionTimeout: 10_000, socketTimeout: 120_000 }),
  });
  await client.send(new CreateBucketCommand({ Bucket: 'raw' }));

  const raw: Result[] = [];
  const ours: Result[] = [];
  const line = (r: Result) => `${r.mibPerSecond.toFixed(0)} MiB/s (CPU ms/MiB: client ${r.clientCpu.toFixed(2)}, server ${r.serverCpu.toFixed(2)})`;
  // Alternate, so drift in the machine's load hits both sides alike.
  for (let run = 0; run < RUNS; run++) {
    raw.push(await measure(server, () => rawPut(client, 'raw', run, data, hashes)));
    ours.push(await measure(server, await prepareBackup(server.endpoint, run, source)));
    console.log(`run ${run + 1}: raw PutObject ${line(raw[run]!)}; scrate backup ${line(ours[run]!)}; ratio ${(ours[run]!.mibPerSecond / raw[run]!.mibPerSecond).toFixed(2)}`);
  }
  const m = (rs: Result[], k: keyof Result) => median(rs.map((r) => r[k]));
  const r = m(raw, 'mibPerSecond');
  const o = m(ours, 'mibPerSecond');
  console.log(`\n${SIZE / MiB} MiB, ${CONNECTIONS} connections, ${cores} cores${PIN ? ' (server pinned to the last)' : ''}, medians of ${RUNS}:`);
  console.log('| | MiB/s | client CPU ms/MiB | server CPU ms/MiB |\n|---|---|---|---|');
  for (const [name, rs] of [['raw PutObject', raw], ['scrate backup', ours]] as const) {
    console.log(`| ${name} | ${m(rs, 'mibPerSecond').toFixed(0)} | ${m(rs, 'clientCpu').toFixed(2)} | ${m(rs, 'serverCpu').toFixed(2)} |`);
  }
  console.log(`\nratio ${(o / r).toFixed(2)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
