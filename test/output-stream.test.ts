import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliEnv, SCRATE, scrate } from './helpers/cli.js';
import { RawTrees } from './helpers/raw-tree.js';
import { initRepo, PASSWORD, scratch } from './helpers/repo.js';

/** A field of /proc/<pid>/status in KiB (VmHWM: the peak resident set so far); undefined once the process is gone. */
function statusKiB(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time the process has used, in clock ticks (utime + stime of /proc/<pid>/stat). */
function cpuTicks(pid: number): number | undefined {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

interface Throttled {
  /** VmHWM (KiB) once the command had stopped for want of a reader, or at its end if it never had to. */
  peakKiB: number;
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs scrate with standard output a pipe nobody reads until the command has stopped using CPU
 * for a second (it waits for its reader, or, holding all its output, for its exit): its peak RSS
 * then. Then everything is read.
 */
async function throttled(args: string[], env: NodeJS.ProcessEnv): Promise<Throttled> {
  const child = spawn(SCRATE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const closed = new Promise((resolve) => child.stdout.on('close', resolve));
  void code.then(() => (exited = true));
  let peakKiB = 0;
  let ticks = cpuTicks(pid);
  for (let idle = 0, waited = 0; !exited && idle < 5 && waited < 120_000; waited += 200) {
    await new Promise((r) => setTimeout(r, 200));
    peakKiB = statusKiB(pid, 'VmHWM') ?? peakKiB;
    const now = cpuTicks(pid);
    idle = now === ticks ? idle + 1 : 0;
    ticks = now;
  }
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  await closed;
  return { peakKiB, code: await code, stdout: Buffer.concat(chunks), stderr };
}

/** The peak RSS (KiB) of a command of tiny output, sampled until it exits: what scrate takes before it prints anything to speak of. */
async function baselineKiB(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(SCRATE, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', resolve)).then(() => (exited = true));
  let peak = 0;
  while (!exited) {
    peak = statusKiB(child.pid!, 'VmHWM') ?? peak;
    await new Promise((r) => setTimeout(r, 5));
  }
  await done;
  return peak;
}

describe('output without bound waits for its reader', () => {
  const tmp = scratch('output-stream');
  const repo = path.join(tmp.dir, 'repo');
  const env = cliEnv(repo, { SCRATE_PASSWORD: PASSWORD });
  const DIRS = 200;
  const FILES = 1000;
  let full = '';
  let part = '';

  before(async () => {
    // 200,000 entries with names of 40 characters, written as trees straight into the repository:
    // megabytes of listing, hundreds of times what a pipe holds, in a second or two.
    const raw = new RawTrees(await initRepo(repo));
    const dirs = [];
    for (let d = 0; d < DIRS; d++) {
      const files = Array.from({ length: FILES }, (_, f) => raw.node(`a-file-with-a-fairly-long-name-${String(f).padStart(6, '0')}`));
      dirs.push(await raw.dir(`directory-${String(d).padStart(4, '0')}`, files));
    }
    full = (await raw.snapshot(dirs)).id;
    part = (await raw.snapshot(dirs.slice(0, 1))).id;
  });
  after(() => tmp.cleanup());

  const commands: [string, () => string[]][] = [
    ['--json ls', () => ['--json', 'ls', full]],
    ['ls -l', () => ['ls', '-l', full]],
    ['--json diff', () => ['--json', 'diff', full, part]],
  ];
  test('SIGINT while nobody reads the listing: exit 130 within seconds, not when a reader comes', async () => {
    const child = spawn(SCRATE, ['ls', full], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    // Stopped for want of a reader: the pipe is full and the process idle.
    let ticks = cpuTicks(child.pid!);
    for (let idle = 0; idle < 5; ) {
      await new Promise((r) => setTimeout(r, 200));
      const now = cpuTicks(child.pid!);
      idle = now === ticks ? idle + 1 : 0;
      ticks = now;
    }
    child.kill('SIGINT');
    const stillWaiting = Symbol('still waiting for a reader');
    const code = await Promise.race([exit, new Promise((r) => setTimeout(() => r(stillWaiting), 10_000))]);
    child.stdout.resume();
    assert.equal(code, 130, `exit code (stderr: ${stderr})`);
    assert.match(stderr, /interrupted/);
  });

  for (const [name, args] of commands) {
    test(`${name} of 200,000 entries into a pipe read late: peak RSS near a tiny listing's, the output whole and as read at once`, async (t) => {
      const argv = args();
      const whole = scrate(argv, env, { maxBuffer: 1 << 30 });
      assert.equal(whole.code, 0, whole.stderr);
      const lines = whole.stdout.split('\n').length - 1;
      assert.ok(lines >= (DIRS - 1) * FILES, `${lines} lines`);
      const base = await baselineKiB(['ls', full, '/directory-0000/a-file-with-a-fairly-long-name-000000'], env);
      const late = await throttled(argv, env);
      assert.equal(late.code, 0, late.stderr);
      assert.equal(late.stderr, '');
      assert.ok(late.stdout.equals(Buffer.from(whole.stdout)), 'the same bytes as a run read at once');
      const bytes = late.stdout.length;
      t.diagnostic(`${name}: ${bytes} bytes of output; peak RSS ${late.peakKiB} KiB while not read, ${base} KiB for one entry`);
      // Holding the output would take at least its size beyond the tiny listing's peak (and far more at a write a line).
      assert.ok(late.peakKiB - base < Math.min(32 * 1024, bytes / 1024 / 2), `${late.peakKiB - base} KiB more than a tiny listing, for ${bytes} bytes of output`);
    });
  }
});
