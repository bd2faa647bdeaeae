/**
 * Issue #25: a scrate volume against s3backer, side by side on the same loopback S3 server
 * (OpenStack Swift with s3api), one bucket per tool and run, an 8 GiB volume of 64 KiB blocks, a
 * 4 GiB local cache and 8 connections each. Per run and tool (alternating): losetup on the
 * tool's image file, mkfs.ext4, mount, `cp -a` of a source corpus, `sync` (write time, acked);
 * umount, losetup -d, unmount the tool, which uploads everything before it exits (write time,
 * durable); the bucket's objects (bytes stored); page cache dropped and every local cache
 * removed, the tool started read-only, `tar -cf - . | wc -c` of the filesystem (cold read);
 * then `e2fsck -fn` and `diff -r` against the corpus (a wrong read fails the benchmark).
 *
 *   npm run bench:volume                      (as root)
 *   env: BENCH_DIR (/var/tmp/scrate-bench), BENCH_RUNS (3),
 *        BENCH_VOLUME_TREES (/usr/include:/usr/lib/python3.11),
 *        BENCH_VOLUME_NBD=0: without the `volume serve` + nbdfuse column,
 *        BENCH_VOLUME_ENCRYPT=0: without the informational s3backer --encrypt column,
 *        BENCH_VOLUME_PROFILE=1: scrate runs with node --cpu-prof (profiles in BENCH_DIR/volume/profiles),
 *        BENCH_VOLUME_ONLY=NAME: only the tools whose names start so (e.g. "scrate volume mount")
 *
 * s3backer runs without --compress/--encrypt for the baseline (the issue's: every non-zero block
 * stored raw). Writes JSON results to BENCH_DIR/volume-results.json.
 */
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { startS3ServerWithCredentials, type S3Server } from '../test/helpers/s3-server.js';
import { cpuSeconds, median, quote, sh, shell, spawn, warmCache } from './lib.js';

const MiB = 1024 * 1024;
const MB = 1e6;
const PASSWORD = 'bench-password';
const CONNECTIONS = 8;

interface Options {
  dir: string;
  runs: number;
  scrate: string;
  trees: string[];
  nbd: boolean;
  encrypt: boolean;
  profile: boolean;
  /** Only the tools whose names start so (a profile's run). */
  only?: string;
}

/** A running tool: its image file, and how to end it (everything uploaded when `stop` resolves). */
interface Started {
  image: string;
  pids(): number[];
  /** Peak RSS so far (VmHWM) of the tool's processes, summed. */
  peakRss(): number;
  stop(): Promise<void>;
  /** Ends whatever still runs, without waiting for uploads (teardown after a failure). */
  kill(): void;
}

interface Tool {
  name: string;
  /** Prepares the empty volume in `bucket` (and any local state under `work`). */
  create(bucket: string, work: string): void;
  start(bucket: string, work: string, readOnly: boolean): Promise<Started>;
  /**
   * Removes the local caches; returns the bytes of writes the tool held back and had not
   * uploaded (scrate's cache log; none for s3backer, whose cache file holds clean copies only
   * after its flush on unmount).
   */
  dropLocal(work: string): number;
}

interface Sample {
  writeAcked: number;
  writeDurable: number;
  coldRead: number;
  bytesStored: number;
  objects: number;
  toolCpuWrite: number;
  toolCpuRead: number;
  serverCpuWrite: number;
  serverCpuRead: number;
  peakRssWrite: number;
  peakRssRead: number;
  cacheLeft: number;
}

function isMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === dir);
}

function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A background process with its stderr kept for the error message when it fails. */
class Child {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string) {
    this.child = spawnChild(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const log = fs.createWriteStream(logFile, { flags: 'a' });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
      log.write(d);
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => (log.end(), resolve(code))));
  }
  get pid(): number {
    return this.child.pid!;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async waitFor(what: string, ready: () => boolean): Promise<void> {
    const deadline = Date.now() + 120_000;
    while (!ready()) {
      if (!this.running || Date.now() > deadline) throw new Error(`${what} did not come up (exit ${this.child.exitCode}): ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  /** Waits for the exit; `signalled` is the code of a clean exit after a signal (scrate's 128 + SIGTERM). */
  async end(what: string, signalled = 0): Promise<void> {
    const code = await this.exited;
    if (code !== 0 && code !== signalled) throw new Error(`${what} exited with ${code ?? this.child.signalCode}: ${this.stderr}`);
  }
}

/** A FUSE mount's server: started, waited for until `image` appears, ended by unmounting `mnt` (the tool drains before it exits). */
async function fuseTool(cmd: string, args: string[], env: NodeJS.ProcessEnv, mnt: string, image: string, log: string): Promise<Started> {
  fs.mkdirSync(mnt, { recursive: true });
  const c = new Child(cmd, args, env, log);
  await c.waitFor(cmd, () => isMounted(mnt) && fs.existsSync(image));
  return {
    image,
    pids: () => (c.running ? [c.pid] : []),
    peakRss: () => vmHwm(c.pid),
    async stop() {
      sh('umount', mnt);
      await c.end(`${cmd} ${args.join(' ')}`);
    },
    kill() {
      if (isMounted(mnt)) spawnQuiet('umount', '-l', mnt);
      if (c.running) c.child.kill('SIGKILL');
    },
  };
}

function spawnQuiet(cmd: string, ...args: string[]): void {
  try {
    sh(cmd, ...args);
  } catch {
    // teardown: whatever is already gone stays gone
  }
}

function s3backer(server: S3Server, encrypt: boolean): Tool {
  const port = new URL(server.endpoint).port;
  const cacheFile = (work: string) => path.join(work, 's3b.cache');
  return {
    name: encrypt ? 's3backer --encrypt' : 's3backer',
    create() {},
    async start(bucket, work, readOnly) {
      const mnt = path.join(work, 'fuse');
      const pass = path.join(work, 's3b-password');
      fs.writeFileSync(pass, PASSWORD, { mode: 0o600 });
      // No --region: it turns on virtual-host requests, which the loopback server cannot
      // resolve. The access ID holds a colon, which an --accessFile line cannot.
      const args = [
        '-f',
        `--baseURL=http://127.0.0.1:${port}/`,
        '--authVersion=aws4',
        `--accessId=${server.accessKeyId}`,
        `--accessKey=${server.secretAccessKey}`,
        '--size=8G',
        '--blockSize=64K',
        '--listBlocks',
        '--force',
        // 4 GiB of 64 KiB blocks, as scrate's --cache-size 4G.
        '--blockCacheSize=65536',
        `--blockCacheFile=${cacheFile(work)}`,
        `--blockCacheThreads=${CONNECTIONS}`,
        '--blockCacheWriteDelay=250',
        '--readAhead=4',
        '--readAheadTrigger=2',
        ...(encrypt ? ['--encrypt', `--passwordFile=${pass}`] : []),
        ...(readOnly ? ['--readOnly'] : []),
        bucket,
        mnt,
      ];
      return fuseTool('s3backer', args, {}, mnt, path.join(mnt, 'file'), path.join(work, 's3backer.log'));
    },
    dropLocal(work) {
      fs.rmSync(cacheFile(work), { force: true });
      return 0;
    },
  };
}

function scrateTools(server: S3Server, o: Options): Tool[] {
  const repo = (bucket: string) => `s3:${server.endpoint}/${bucket}`;
  const profiles = path.join(o.dir, 'volume', 'profiles');
  const env = (work: string): NodeJS.ProcessEnv => ({
    SCRATE_PASSWORD: PASSWORD,
    SCRATE_KDF_MS: '50',
    XDG_CACHE_HOME: path.join(work, 'xdg-cache'),
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  // Node refuses --cpu-prof in NODE_OPTIONS: node runs bin/scrate with its shebang's settings and the profiler's flags.
  const [envs, flags] = fs.readFileSync(o.scrate, 'utf8').split('\n')[0]!.split(/\s+/).slice(2).reduce<[string[], string[]]>((acc, w) => (acc[w.includes('=') && !w.startsWith('-') ? 0 : 1].push(w), acc), [[], []]);
  const node = o.profile
    ? { cmd: process.execPath, pre: [...flags.filter((f) => f !== 'node'), '--cpu-prof', `--cpu-prof-dir=${profiles}`, o.scrate], env: Object.fromEntries(envs.map((e) => e.split('=') as [string, string])) }
    : { cmd: o.scrate, pre: [], env: {} };
  const scrate = (bucket: string, work: string, ...args: string[]) => ({ cmd: node.cmd, args: [...node.pre, '-r', repo(bucket), '-o', `s3.connections=${CONNECTIONS}`, ...args], env: { ...env(work), ...node.env } });
  const cacheDir = (work: string) => path.join(work, 'volume-cache');
  const serveArgs = (work: string, readOnly: boolean) => (readOnly ? ['--read-only'] : ['--cache-size', '4G', '--cache-dir', cacheDir(work)]);
  const common = {
    create(bucket: string, work: string) {
      const repoArgs = ['-r', repo(bucket), '-o', `s3.connections=${CONNECTIONS}`];
      spawn({ cmd: o.scrate, args: [...repoArgs, 'init', '-q'], env: env(work) });
      spawn({ cmd: o.scrate, args: [...repoArgs, 'volume', 'create', 'vol1', '--size', '8G', '--block-size', '64K'], env: env(work) });
    },
    dropLocal(work: string) {
      // The drain leaves the state file and an empty log: anything in log/ was not uploaded.
      const logs = fs.existsSync(cacheDir(work)) ? sh('find', cacheDir(work), '-path', '*/log/*', '-type', 'f', '-printf', '%s\n').split('\n').filter(Boolean) : [];
      for (const d of [cacheDir(work), path.join(work, 'xdg-cache')]) fs.rmSync(d, { recursive: true, force: true });
      return logs.reduce((sum, n) => sum + Number(n), 0);
    },
  };
  const mount: Tool = {
    name: 'scrate volume mount',
    ...common,
    async start(bucket, work, readOnly) {
      const mnt = path.join(work, 'fuse');
      const run = scrate(bucket, work, 'volume', 'mount', 'vol1', mnt, ...serveArgs(work, readOnly));
      return fuseTool(run.cmd, run.args, run.env, mnt, path.join(mnt, 'vol1'), path.join(work, 'scrate.log'));
    },
  };
  const nbd: Tool = {
    name: 'scrate volume serve + nbdfuse',
    ...common,
    async start(bucket, work, readOnly) {
      const socket = path.join(work, 'nbd.sock');
      fs.rmSync(socket, { force: true });
      const run = scrate(bucket, work, 'volume', 'serve', 'vol1', '--socket', socket, ...serveArgs(work, readOnly));
      const serve = new Child(run.cmd, run.args, run.env, path.join(work, 'scrate.log'));
      let fuse: Started | undefined;
      try {
        await serve.waitFor('scrate volume serve', () => fs.existsSync(socket));
        const mnt = path.join(work, 'fuse');
        fuse = await fuseTool('nbdfuse', [...(readOnly ? ['-r'] : []), mnt, '--unix', socket], {}, mnt, path.join(mnt, 'nbd'), path.join(work, 'nbdfuse.log'));
      } catch (err) {
        serve.child.kill('SIGKILL');
        throw err;
      }
      const f = fuse;
      return {
        image: f.image,
        pids: () => [...f.pids(), ...(serve.running ? [serve.pid] : [])],
        peakRss: () => f.peakRss() + vmHwm(serve.pid),
        async stop() {
          await f.stop();
          serve.child.kill('SIGTERM');
          await serve.end('scrate volume serve', 143);
        },
        kill() {
          f.kill();
          if (serve.running) serve.child.kill('SIGKILL');
        },
      };
    },
  };
  return o.nbd ? [mount, nbd] : [mount];
}

async function bucketObjects(client: S3Client, bucket: string): Promise<{ bytes: number; objects: number }> {
  let bytes = 0;
  let objects = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) {
      bytes += obj.Size ?? 0;
      objects++;
    }
    token = page.NextContinuationToken;
  } while (token);
  return { bytes, objects };
}

/** CPU seconds of the tool's processes while `work` runs (a process that exits meanwhile: up to its last sample). */
async function sampled<T>(started: Started, work: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const last = new Map<number, number>();
  const first = new Map<number, number>();
  const sample = () => {
    for (const pid of started.pids()) {
      try {
        const c = cpuSeconds([pid]);
        if (!first.has(pid)) first.set(pid, c);
        last.set(pid, c);
      } catch {
        // exited between the listing and the read
      }
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  try {
    const value = await work();
    return { value, cpu: [...last].reduce((sum, [pid, c]) => sum + c - first.get(pid)!, 0) };
  } finally {
    clearInterval(timer);
  }
}

/** Runs a shell pipeline without blocking the event loop (the CPU sampler keeps running). */
function shellAsync(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawnChild('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script}: exit ${code}: ${err}`))));
  });
}

async function oneRun(tool: Tool, server: S3Server, client: S3Client, o: Options, run: number, corpusBytes: number): Promise<Sample> {
  const bucket = `vol-${run}-${tool.name.replace(/[^a-z0-9]+/g, '-')}`.slice(0, 60);
  const work = path.join(o.dir, 'volume', bucket);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const mnt = path.join(work, 'ext4');
  fs.mkdirSync(mnt);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  tool.create(bucket, work);
  const serverCpu = () => cpuSeconds(server.pids());
  let started: Started | undefined;
  let loop: string | undefined;
  const teardown = () => {
    if (isMounted(mnt)) spawnQuiet('umount', '-l', mnt);
    if (loop) spawnQuiet('losetup', '-d', loop);
    loop = undefined;
    started?.kill();
  };
  try {
    // Write: the acked time ends at sync, the durable one when the tool has exited.
    started = await tool.start(bucket, work, false);
    const s0 = serverCpu();
    const t0 = performance.now();
    const w = await sampled(started, async () => {
      loop = sh('losetup', '-f', '--show', started!.image).trim();
      await shellAsync(`mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 ${loop}`);
      await shellAsync(`mount ${loop} ${quote(mnt)}`);
      await shellAsync(`cp -a ${o.trees.map(quote).join(' ')} ${quote(mnt)}/ && sync`);
      const acked = (performance.now() - t0) / 1000;
      const rss0 = started!.peakRss();
      await shellAsync(`umount ${quote(mnt)}`);
      sh('losetup', '-d', loop);
      loop = undefined;
      const rss = Math.max(rss0, started!.peakRss());
      await started!.stop();
      return { acked, rss };
    });
    const writeDurable = (performance.now() - t0) / 1000;
    const serverCpuWrite = serverCpu() - s0;
    started = undefined;
    const stored = await bucketObjects(client, bucket);
    const cacheLeft = tool.dropLocal(work);
    if (cacheLeft > 0) throw new Error(`${tool.name}: ${cacheLeft} bytes of its cache log were left after it stopped (not uploaded)`);

    // Cold read: nothing cached anywhere on this side of the S3 server.
    sh('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    started = await tool.start(bucket, work, true);
    loop = sh('losetup', '-r', '-f', '--show', started.image).trim();
    sh('mount', '-o', 'ro,noload', loop, mnt);
    const s1 = serverCpu();
    const t1 = performance.now();
    const r = await sampled(started, async () => Number((await shellAsync(`tar -cf - -C ${quote(mnt)} . | wc -c`)).trim()));
    const coldRead = (performance.now() - t1) / 1000;
    const serverCpuRead = serverCpu() - s1;
    const peakRssRead = started.peakRss();
    if (r.value < corpusBytes) throw new Error(`${tool.name}: read ${r.value} bytes of tar, the corpus alone gives ${corpusBytes}`);
    for (const t of o.trees) {
      const d = spawnChild('diff', ['-r', '--no-dereference', t, path.join(mnt, path.basename(t))], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      d.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const code = await new Promise<number | null>((res) => d.on('exit', res));
      if (code !== 0) throw new Error(`${tool.name}: the volume's ${path.basename(t)} differs from ${t}:\n${out.slice(0, 2000)}`);
    }
    sh('umount', mnt);
    spawn({ cmd: 'e2fsck', args: ['-fn', loop] });
    sh('losetup', '-d', loop);
    loop = undefined;
    await started.stop();
    started = undefined;
    return {
      writeAcked: corpusBytes / MB / w.value.acked,
      writeDurable: corpusBytes / MB / writeDurable,
      coldRead: corpusBytes / MB / coldRead,
      bytesStored: stored.bytes,
      objects: stored.objects,
      toolCpuWrite: w.cpu,
      toolCpuRead: r.cpu,
      serverCpuWrite,
      serverCpuRead,
      peakRssWrite: w.value.rss,
      peakRssRead,
      cacheLeft,
    };
  } finally {
    teardown();
    tool.dropLocal(work);
  }
}

const ROWS: [keyof Sample, string, (v: number) => string, 'higher' | 'lower'][] = [
  ['writeAcked', 'write, acked (cp + sync)', (v) => `${v.toFixed(1)} MB/s`, 'higher'],
  ['writeDurable', 'write, durable (+ umount, drain, exit)', (v) => `${v.toFixed(1)} MB/s`, 'higher'],
  ['coldRead', 'cold read (tar)', (v) => `${v.toFixed(1)} MB/s`, 'higher'],
  ['bytesStored', 'bytes stored', (v) => `${(v / MiB).toFixed(1)} MiB`, 'lower'],
  ['objects', 'objects', (v) => v.toFixed(0), 'lower'],
  ['toolCpuWrite', 'tool CPU, write', (v) => `${v.toFixed(1)} s`, 'lower'],
  ['toolCpuRead', 'tool CPU, read', (v) => `${v.toFixed(1)} s`, 'lower'],
  ['serverCpuWrite', 'S3 server CPU, write', (v) => `${v.toFixed(1)} s`, 'lower'],
  ['serverCpuRead', 'S3 server CPU, read', (v) => `${v.toFixed(1)} s`, 'lower'],
  ['peakRssWrite', 'tool peak RSS, write', (v) => `${(v / MiB).toFixed(0)} MiB`, 'lower'],
  ['peakRssRead', 'tool peak RSS, read', (v) => `${(v / MiB).toFixed(0)} MiB`, 'lower'],
];

export async function volumeBench(o: Options): Promise<void> {
  const started = performance.now();
  const corpusBytes = o.trees.reduce((sum, t) => sum + Number(sh('du', '-sb', '--apparent-size', t).split('\t')[0]), 0);
  for (const t of o.trees) warmCache(t);
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const server = await startS3ServerWithCredentials();
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  try {
    const tools = [s3backer(server, false), ...scrateTools(server, o), ...(o.encrypt ? [s3backer(server, true)] : [])].filter((t) => !o.only || t.name.startsWith(o.only));
    console.log(`## Volumes (issue #25): ${o.trees.join(' + ')} (${(corpusBytes / MB).toFixed(0)} MB), 8 GiB volume, 64 KiB blocks, ${CONNECTIONS} connections, ${o.runs} runs per tool, alternating`);
    const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
    const loads: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const order = tools.map((_, i) => tools[(i + r) % tools.length]!);
      for (const t of order) {
        const s = await oneRun(t, server, client, o, r, corpusBytes);
        samples.get(t.name)!.push(s);
        loads.push(os.loadavg()[0]!);
        console.log(
          `  run ${r + 1} ${t.name}: write ${s.writeAcked.toFixed(1)} MB/s acked, ${s.writeDurable.toFixed(1)} durable; cold read ${s.coldRead.toFixed(1)} MB/s; ` +
            `stored ${(s.bytesStored / MiB).toFixed(1)} MiB in ${s.objects} objects; CPU tool ${s.toolCpuWrite.toFixed(1)}+${s.toolCpuRead.toFixed(1)} s, ` +
            `server ${s.serverCpuWrite.toFixed(1)}+${s.serverCpuRead.toFixed(1)} s; load ${os.loadavg()[0]!.toFixed(2)}`,
        );
      }
    }
    const med = (name: string, k: keyof Sample) => median(samples.get(name)!.map((s) => s[k]));
    const base = tools[0]!.name;
    const others = tools.slice(1);
    const row = (cells: string[]) => console.log(`| ${cells.join(' | ')} |`);
    console.log('');
    row([`metric (medians of ${o.runs})`, ...tools.map((t) => t.name), ...others.map((t) => `${t.name} / ${base}`)]);
    row(['---', ...[...tools, ...others].map(() => '---:')]);
    for (const [k, label, fmt] of ROWS) row([label, ...tools.map((t) => fmt(med(t.name, k))), ...others.map((t) => (med(t.name, k) / med(base, k)).toFixed(2))]);
    const verdict = tools
      .filter((t) => t.name.startsWith('scrate'))
      .map((t) => {
        const misses = ROWS.filter(([k]) => ['writeAcked', 'writeDurable', 'coldRead', 'bytesStored'].includes(k)).filter(([k, , , better]) =>
          better === 'higher' ? med(t.name, k) < med(base, k) : med(t.name, k) > med(base, k),
        );
        return `${t.name}: ${misses.length === 0 ? 'meets the targets (write and read >= s3backer, bytes <= s3backer)' : `behind s3backer in ${misses.map(([, l]) => l).join(', ')}`}`;
      });
    console.log(`\n${verdict.join('\n')}`);
    console.log(`${os.availableParallelism()} cores, load average during the runs ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}; MB = 10^6 bytes of the corpus's files`);
    const results = {
      date: new Date().toISOString(),
      corpus: { trees: o.trees, bytes: corpusBytes },
      runs: o.runs,
      cores: os.availableParallelism(),
      loads,
      samples: Object.fromEntries(samples),
      medians: Object.fromEntries(tools.map((t) => [t.name, Object.fromEntries(ROWS.map(([k]) => [k, med(t.name, k)]))])),
    };
    const out = path.join(o.dir, 'volume-results.json');
    fs.writeFileSync(out, JSON.stringify(results, null, 2));
    console.log(`results: ${out}; total time ${((performance.now() - started) / 60_000).toFixed(1)} min`);
  } finally {
    client.destroy();
    await server.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (process.getuid?.() !== 0) throw new Error('bench:volume needs root (loop devices, mounts, drop_caches)');
  for (const tool of ['s3backer', 'losetup', 'mkfs.ext4', 'e2fsck']) shell(`command -v ${tool}`);
  await volumeBench({
    dir: path.resolve(process.env['BENCH_DIR'] || '/var/tmp/scrate-bench'),
    runs: Math.max(1, Number(process.env['BENCH_RUNS'] || 3)),
    scrate: fileURLToPath(new URL('../../bin/scrate', import.meta.url)),
    trees: (process.env['BENCH_VOLUME_TREES'] || '/usr/include:/usr/lib/python3.11').split(':').filter((t) => fs.existsSync(t)),
    nbd: process.env['BENCH_VOLUME_NBD'] !== '0',
    encrypt: process.env['BENCH_VOLUME_ENCRYPT'] !== '0',
    profile: process.env['BENCH_VOLUME_PROFILE'] === '1',
    only: process.env['BENCH_VOLUME_ONLY'],
  });
}
