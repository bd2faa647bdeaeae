/**
 * Runs scrate as a child process under test/helpers/crashpoint.c (an LD_PRELOAD shim) that
 * reports every file system call it makes on a repository, and stops the whole process
 * (SIGSTOP) right before or after one chosen call: the n-th pack adopted, the first index file
 * written, the k-th pack deleted. The test then kills it there (SIGKILL), or lets something else
 * run and resumes it (SIGCONT): kill points and interleavings chosen from observed events, never
 * from timers. The shim can also make chosen calls fail (EIO), as a lost disk or bucket would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SCRATE, type RunResult } from './cli.js';

export type Op = 'create' | 'open' | 'rename' | 'link' | 'unlink';

/** One call the shim saw: `result` is "ok" or an errno number; a stop is `{ op: 'stop', result: <op stopped at> }`. */
export interface CallEvent {
  op: Op | 'stop';
  result: string;
  path: string;
}

/** Stop at the n-th successful call of `op` on a path matching `path` (a POSIX extended regular expression): before it is made, or after. */
export interface StopRule {
  when: 'before' | 'after';
  op: Op;
  n: number;
  path: string;
}

/** From the `from`-th matching call of `op` on, each fails with EIO without being made. */
export interface FailRule {
  op: Op;
  from: number;
  path: string;
}

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/crashpoint.c');

let built: string | null | undefined;
let buildProblem = '';

/** The shim, compiled once per test process into a directory removed at exit; null when it cannot be built. */
function shim(): string | null {
  if (built !== undefined) return built;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-crashpoint-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'crashpoint.so');
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, SOURCE, '-ldl'], { encoding: 'utf8' });
  built = r.status === 0 ? out : null;
  if (!built) buildProblem = `the crash-point shim does not build here (cc: ${r.error?.message ?? r.stderr.trim()})`;
  return built;
}

/** Why crash-point tests cannot run here (for `{ skip }`), or null when they can. */
export function crashpointUnavailable(): string | null {
  return shim() ? null : buildProblem;
}

/** A POSIX extended regular expression matching `s` literally. */
export function ere(s: string): string {
  return s.replace(/[.[\]{}()*+?^$|\\]/g, '\\$&');
}

/** The paths of a local repository's objects, as the shim's rules match them. */
export function repoPaths(repo: string) {
  const r = ere(repo);
  return {
    /** Everything in the repository: the scope to trace. */
    all: `^${r}/`,
    /** A pack in place (adopted or saved). */
    pack: `^${r}/data/[0-9a-f]{2}/[0-9a-f]{64}$`,
    /** A file being written for a pack (staged in data/, or a temporary file of a save). */
    stagedPack: `^${r}/data/(.*/)?\\.tmp-`,
    /** An object of a type in place. */
    object: (type: 'index' | 'snapshots' | 'locks' | 'marks') => `^${r}/${type}/[0-9a-f]{64}$`,
    /** A temporary file of an object of a type being saved. */
    temp: (type: 'index' | 'snapshots' | 'locks' | 'marks') => `^${r}/${type}/\\.tmp-`,
  };
}

export interface TracedOptions {
  /** Calls on paths matching it are traced and seen by the rules (normally repoPaths(repo).all); none: a plain child, without the shim. */
  scope?: string;
  stop?: StopRule;
  fail?: FailRule;
  /** Standard input: a pipe the test writes to (child.stdin), instead of nothing. */
  stdin?: boolean;
}

export interface Exit extends RunResult {
  signal: NodeJS.Signals | null;
}

let traces = 0;

/** Children not yet ended: a failed test must not leave one stopped (or waiting for input) behind. */
const live = new Set<Traced>();
process.on('exit', () => {
  for (const t of live) t.child.kill('SIGKILL');
});

/** Kills every child still running (for afterEach: a failed test may leave one stopped). */
export async function killLeftovers(): Promise<void> {
  await Promise.all([...live].map((t) => t.kill()));
}

/** A scrate process under the shim (or, without a scope, a plain one). */
export class Traced {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  private readonly tracePath: string;
  private done: Exit | undefined;

  constructor(args: string[], env: NodeJS.ProcessEnv, opts: TracedOptions) {
    const so = opts.scope === undefined ? '' : shim();
    if (so === null) throw new Error(buildProblem);
    this.tracePath = so && path.join(path.dirname(so), `trace-${process.pid}-${traces++}`);
    const rules: NodeJS.ProcessEnv = so ? { LD_PRELOAD: so, CRASHPOINT_SCOPE: opts.scope, CRASHPOINT_TRACE: this.tracePath } : {};
    if (opts.stop) rules['CRASHPOINT_STOP'] = `${opts.stop.when} ${opts.stop.op} ${opts.stop.n} ${opts.stop.path}`;
    if (opts.fail) rules['CRASHPOINT_FAIL'] = `${opts.fail.op} ${opts.fail.from} ${opts.fail.path}`;
    this.child = spawn(SCRATE, args, { env: { ...env, ...rules }, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    this.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // A child that ends before reading all its input must not fail the test with EPIPE.
    this.child.stdin?.on('error', () => undefined);
    live.add(this);
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        live.delete(this);
        this.done = { code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), signal, stdout, stderr };
        resolve(this.done);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Every call traced so far, in order. */
  events(): CallEvent[] {
    let text: string;
    if (!this.tracePath) return [];
    try {
      text = fs.readFileSync(this.tracePath, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l)
      .map((line) => {
        const [op, result, ...rest] = line.split(' ');
        return { op: op as CallEvent['op'], result: result!, path: rest.join(' ') };
      });
  }

  /**
   * Waits until the trace satisfies `seen` (polled: the trace is a file the child appends to), or
   * fails once the child has exited without it, or after `timeoutMs` (generous: a loaded machine
   * is slow, not wrong).
   */
  async until<T>(what: string, seen: (events: CallEvent[]) => T | undefined | false, timeoutMs = 120_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exitedBefore = this.done;
      const found = seen(this.events());
      if (found !== undefined && found !== false) return found;
      if (exitedBefore) throw new Error(`scrate ${this.child.spawnargs.slice(2).join(' ')} exited (${exitedBefore.code}) before ${what}: ${exitedBefore.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  }

  /** Waits until the child has stopped at its stop rule (the kernel says so, not only the trace); returns the call it stopped at. */
  async stopped(timeoutMs?: number): Promise<CallEvent> {
    const at = await this.until('the crash point', (events) => events.find((e) => e.op === 'stop'), timeoutMs);
    await this.until('the stop to take effect', () => this.done !== undefined || processState(this.pid) === 'T', timeoutMs);
    return at;
  }

  /** SIGKILL, as a power cut or the OOM killer would; resolves once it is gone. */
  async kill(): Promise<Exit> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** Lets a stopped child go on. */
  resume(): void {
    this.child.kill('SIGCONT');
  }
}

/** The state letter in /proc/<pid>/stat (T: stopped), or '' when the process is gone. */
function processState(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

/** Successful calls of `op` on paths matching `pattern` (a regular expression source) in `events`. */
export function count(events: CallEvent[], op: Op, pattern: string): number {
  const re = new RegExp(pattern);
  return events.filter((e) => e.op === op && e.result === 'ok' && re.test(e.path)).length;
}
