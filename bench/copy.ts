/**
 * Issue #24: `scrate copy` against `restic copy` of the same snapshots, in one run. The
 * benchmark tree (A) and its deterministic update (B, planUpdate/applyUpdate of lib.ts) are
 * backed up once into a scrate and a restic source repository (local). Per run, tool and target
 * (a local directory; a bucket of the loopback S3 server), in a fresh target made with
 * `init --from-repo SRC --copy-chunker-params` and fresh caches: the copy of A, the
 * incremental copy of everything (B new, A skipped), and the no-op copy of everything again.
 * Prints medians of wall time, CPU (user+sys of the tool, not of the S3 server) and peak RSS,
 * and scrate/restic ratios.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/copy.js
 *   env: BENCH_DIR (/var/tmp/scrate-bench), BENCH_RUNS (3), BENCH_SEED (6101),
 *        BENCH_COPY_TREE (BENCH_DIR/pristine, the kernel tree of bench/run.ts, if there; else /usr/share),
 *        BENCH_COPY_S3=0: local targets only
 *
 * bench/run.ts runs it at its end with BENCH_COPY=1 (with its frozen build). Needs restic,
 * GNU time and, for the S3 rows, OpenStack Swift (.ci/install-swift).
 */
import { spawn as spawnChild } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { startS3ServerWithCredentials, type S3Server } from '../test/helpers/s3-server.js';
import { applyUpdate, duBytes, listFiles, median, planUpdate, sh, spawn, timed, warmCache, type Run, type Timing } from './lib.js';

const PASSWORD = 'bench-password';
const MiB = 1024 * 1024;

export interface CopyBenchOptions {
  dir: string;
  runs: number;
  /** bin/scrate of the build to measure. */
  scrate: string;
  tree: string;
  seed: number;
  s3: boolean;
}

type ToolName = 'scrate' | 'restic';
const STEPS = ['init --from-repo', 'copy A', 'copy all (B new)', 'copy all again (no-op)'] as const;
type Step = (typeof STEPS)[number];

interface CopyTool {
  name: ToolName;
  source: string;
  /** The source's snapshot IDs of A and B. */
  a: string;
  b: string;
  init(target: string): Run;
  copy(target: string, ...ids: string[]): Run;
  /** How many snapshots the target holds. */
  count(target: string): number;
}

function tools(o: CopyBenchOptions, root: string, s3: TlsS3 | undefined): Record<ToolName, Omit<CopyTool, 'a' | 'b'>> {
  const passFile = path.join(root, 'password');
  fs.writeFileSync(passFile, PASSWORD);
  const cache = (name: ToolName) => path.join(root, `cache-${name}`);
  const aws = s3 ? { AWS_ACCESS_KEY_ID: s3.server.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.server.secretAccessKey, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } : {};
  const scrate = (repo: string, ...args: string[]): Run => ({ cmd: o.scrate, args: ['-r', repo, ...args], env: { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: cache('scrate'), ...aws, ...(s3 && { NODE_EXTRA_CA_CERTS: s3.cert }) } });
  const restic = (repo: string, ...args: string[]): Run => ({ cmd: 'restic', args: ['-r', repo, ...args, ...(s3 ? ['--cacert', s3.cert] : [])], env: { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: cache('restic'), ...aws } });
  const from = (source: string) => ['--from-repo', source, '--from-password-file', passFile];
  const s = path.join(root, 'source-scrate');
  const r = path.join(root, 'source-restic');
  return {
    scrate: {
      name: 'scrate',
      source: s,
      init: (t) => scrate(t, 'init', '-q', ...from(s), '--copy-chunker-params'),
      copy: (t, ...ids) => scrate(t, 'copy', '-q', ...from(s), ...ids),
      count: (t) => (JSON.parse(spawn(scrate(t, 'snapshots', '--json')).stdout) as unknown[]).length,
    },
    restic: {
      name: 'restic',
      source: r,
      init: (t) => restic(t, 'init', '--quiet', ...from(r), '--copy-chunker-params'),
      copy: (t, ...ids) => restic(t, 'copy', '--quiet', ...from(r), ...ids),
      count: (t) => (JSON.parse(spawn(restic(t, 'snapshots', '--json')).stdout) as unknown[]).length,
    },
  };
}

/** Backs A, then B, up into each tool's source repository; returns the snapshot IDs. */
function prepareSources(o: CopyBenchOptions, root: string, bare: Record<ToolName, Omit<CopyTool, 'a' | 'b'>>): CopyTool[] {
  const work = path.join(root, 'work', path.basename(o.tree));
  fs.rmSync(path.dirname(work), { recursive: true, force: true });
  fs.mkdirSync(path.dirname(work), { recursive: true });
  sh('cp', '-a', o.tree, work);
  warmCache(work);
  const backup: Record<ToolName, (repo: string) => string> = {
    scrate: (repo) => jsonSummary(spawn({ cmd: o.scrate, args: ['-r', repo, 'backup', '--json', work], env: { SCRATE_PASSWORD: PASSWORD, XDG_CACHE_HOME: path.join(root, 'cache-scrate') } }).stdout)['full_snapshot_id'] as string,
    restic: (repo) => jsonSummary(spawn({ cmd: 'restic', args: ['-r', repo, 'backup', '--json', work], env: { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: path.join(root, 'cache-restic') } }).stdout)['snapshot_id'] as string,
  };
  for (const t of Object.values(bare)) {
    fs.rmSync(t.source, { recursive: true, force: true });
    const init = t.name === 'scrate' ? { cmd: o.scrate, args: ['-r', t.source, 'init', '-q'], env: { SCRATE_PASSWORD: PASSWORD } } : { cmd: 'restic', args: ['-r', t.source, 'init', '--quiet'], env: { RESTIC_PASSWORD: PASSWORD } };
    spawn(init);
  }
  const a = { scrate: backup.scrate(bare.scrate.source), restic: backup.restic(bare.restic.source) };
  const update = applyUpdate(work, planUpdate(listFiles(work), o.seed));
  const b = { scrate: backup.scrate(bare.scrate.source), restic: backup.restic(bare.restic.source) };
  console.log(`- B: ${update.patched} files patched, ${update.rewritten} rewritten, ${update.added} added, ${update.deleted} deleted (seed ${o.seed})`);
  for (const t of Object.values(bare)) console.log(`- ${t.name} source: ${(duBytes(t.source) / MiB).toFixed(1)} MiB, snapshots A ${a[t.name].slice(0, 8)}, B ${b[t.name].slice(0, 8)}`);
  fs.rmSync(path.dirname(work), { recursive: true, force: true });
  return Object.values(bare).map((t) => ({ ...t, a: a[t.name], b: b[t.name] }));
}

function jsonSummary(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return lines.filter((l) => l['message_type'] === 'summary').at(-1)!;
}

type Sample = Record<Step, Timing> & { targetBytes?: number };

function measure(t: CopyTool, target: string, scratch: string, local: boolean): Sample {
  const step = (run: Run): Timing => {
    const r = timed(run, scratch);
    sh('sync');
    return r;
  };
  const init = step(t.init(target));
  const first = step(t.copy(target, t.a));
  if (t.count(target) !== 1) throw new Error(`${t.name}: the copy of A did not leave one snapshot in ${target}`);
  const incremental = step(t.copy(target));
  const noop = step(t.copy(target));
  if (t.count(target) !== 2) throw new Error(`${t.name}: the copies did not leave two snapshots in ${target}`);
  return { 'init --from-repo': init, 'copy A': first, 'copy all (B new)': incremental, 'copy all again (no-op)': noop, ...(local && { targetBytes: duBytes(target) }) };
}

function printTable(kind: string, samples: Record<ToolName, Sample[]>): void {
  console.log(`\n### ${kind}`);
  console.log('| step | metric | scrate | restic | scrate/restic |');
  console.log('|---|---|---:|---:|---:|');
  const metrics: [string, (t: Timing) => number, (v: number) => string][] = [
    ['wall', (t) => t.seconds, (v) => `${v.toFixed(2)} s`],
    ['CPU', (t) => t.cpuSeconds, (v) => `${v.toFixed(2)} s`],
    ['peak RSS', (t) => t.peakRss, (v) => `${(v / MiB).toFixed(0)} MiB`],
  ];
  for (const step of STEPS) {
    for (const [label, pick, fmt] of metrics) {
      const [a, b] = (['scrate', 'restic'] as const).map((n) => median(samples[n].map((s) => pick(s[step]))));
      console.log(`| ${step} | ${label} | ${fmt(a!)} | ${fmt(b!)} | ${(a! / b!).toFixed(2)} |`);
    }
  }
  if (samples.scrate[0]?.targetBytes !== undefined) {
    const [a, b] = (['scrate', 'restic'] as const).map((n) => median(samples[n].map((s) => s.targetBytes!)));
    console.log(`| target size | | ${(a! / MiB).toFixed(1)} MiB | ${(b! / MiB).toFixed(1)} MiB | ${(a! / b!).toFixed(2)} |`);
  }
}

/**
 * The S3 server behind a TLS proxy (a child process: this one blocks while a command runs).
 * restic 0.14 signs uploads over plain HTTP as aws-chunked streams, which Swift's s3api
 * refuses; over HTTPS it does not. Both tools go through the proxy.
 */
interface TlsS3 {
  server: S3Server;
  endpoint: string;
  cert: string;
  stop(): Promise<void>;
}

const TLS_PROXY = `
const [certFile, keyFile, upstream] = process.argv.slice(1);
const fs = require('node:fs'), net = require('node:net'), tls = require('node:tls');
const server = tls.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (c) => {
  const u = net.connect(Number(upstream), '127.0.0.1');
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function startTlsS3(root: string): Promise<TlsS3> {
  const server = await startS3ServerWithCredentials();
  const cert = path.join(root, 'cert.pem');
  const key = path.join(root, 'key.pem');
  sh('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert);
  const proxy = spawnChild(process.execPath, ['-e', TLS_PROXY, cert, key, String(server.ports.proxy)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    proxy.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
    proxy.once('exit', (code) => reject(new Error(`the TLS proxy exited (${code})`)));
  });
  return {
    server,
    endpoint: `https://127.0.0.1:${port}`,
    cert,
    async stop() {
      proxy.kill();
      await server.stop();
    },
  };
}

export async function copyBench(o: CopyBenchOptions): Promise<void> {
  const root = path.join(o.dir, 'copy');
  const scratch = path.join(root, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  console.log(`\n## Copy (issue #24): ${o.tree} (A) and its update (B), ${o.runs} runs per tool, alternating`);
  const s3 = o.s3 ? await startTlsS3(root) : undefined;
  try {
    const all = prepareSources(o, root, tools(o, root, s3));
    const kinds: { name: string; target: (tool: ToolName, run: number) => string; local: boolean }[] = [
      { name: 'local → local', target: (tool) => path.join(root, `target-${tool}`), local: true },
      ...(s3 ? [{ name: 'local → loopback S3 (through TLS)', target: (tool: ToolName, run: number) => `s3:${s3.endpoint}/copy-${run}-${tool}/repo`, local: false }] : []),
    ];
    for (const kind of kinds) {
      const samples: Record<ToolName, Sample[]> = { scrate: [], restic: [] };
      for (let r = 0; r < o.runs; r++) {
        for (const t of r % 2 === 0 ? all : [...all].reverse()) {
          for (const d of [path.join(root, `cache-${t.name}`), kind.local ? kind.target(t.name, r) : '']) if (d) fs.rmSync(d, { recursive: true, force: true });
          const s = measure(t, kind.target(t.name, r), scratch, kind.local);
          samples[t.name].push(s);
          console.log(
            `  ${kind.name} run ${r + 1} ${t.name.padEnd(6)}: ` +
              STEPS.map((st) => `${st} ${s[st].seconds.toFixed(2)} s (CPU ${s[st].cpuSeconds.toFixed(2)}, ${(s[st].peakRss / MiB).toFixed(0)} MiB)`).join('; ') +
              `; load ${os.loadavg()[0]!.toFixed(2)}`,
          );
          if (kind.local) fs.rmSync(kind.target(t.name, r), { recursive: true, force: true });
        }
      }
      printTable(kind.name, samples);
    }
    console.log('(medians; CPU is user+sys of the copying process only)');
  } finally {
    await s3?.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const started = performance.now();
  const dir = path.resolve(process.env['BENCH_DIR'] || '/var/tmp/scrate-bench');
  const pristine = path.join(dir, 'pristine');
  await copyBench({
    dir,
    runs: Math.max(1, Number(process.env['BENCH_RUNS'] || 3)),
    scrate: fileURLToPath(new URL('../../bin/scrate', import.meta.url)),
    tree: process.env['BENCH_COPY_TREE'] || (fs.existsSync(pristine) ? pristine : '/usr/share'),
    seed: Number(process.env['BENCH_SEED'] || 6101),
    s3: process.env['BENCH_COPY_S3'] !== '0',
  });
  console.log(`\ntotal time: ${((performance.now() - started) / 60_000).toFixed(1)} min`);
}
