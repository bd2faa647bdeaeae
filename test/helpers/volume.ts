import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliEnv, scrateAsync } from './cli.js';
import { isMounted } from './fuse-mount.js';
import { scratch } from './repo.js';

const NBD_CLIENTS = ['nbdinfo', 'nbdcopy', 'nbdfuse', 'qemu-img', 'qemu-io'];

/** Why volumes cannot be tested over NBD here (CI installs everything: there it is a failure, not a skip). */
export function nbdClientsMissing(): string | false {
  const missing = NBD_CLIENTS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length && process.env['CI']) throw new Error(`NBD clients missing: ${missing.join(', ')}`);
  return missing.length ? `NBD clients missing: ${missing.join(', ')}` : false;
}

export interface RunningServe {
  child: ChildProcess;
  exited: Promise<{ code: number; stdout: string; stderr: string }>;
  /** What it printed so far. */
  output(): string;
}

/** Starts `scrate volume serve NAME --socket SOCK …` and waits until it accepts connections. */
export async function startServe(env: NodeJS.ProcessEnv, name: string, sock: string, args: string[] = []): Promise<RunningServe> {
  const child = scrateAsync(['volume', 'serve', name, '--socket', sock, ...args], env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 2), stdout, stderr })),
  );
  let ended = false;
  void exited.then(() => (ended = true));
  for (let i = 0; i < 600 && !/serving/i.test(stdout); i++) {
    if (ended) throw new Error(`volume serve ended: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!/serving/i.test(stdout)) throw new Error(`volume serve did not start: ${stderr}`);
  return { child, exited, output: () => stdout + stderr };
}

/**
 * A served volume as a block device: nbdfuse presents it as a file, a loop device over that
 * file. `detach` tears down whatever exists, whatever state a failed test left.
 */
export class NbdDisk {
  private nbdfuse: ChildProcess | undefined;
  loop: string | undefined;

  constructor(
    private readonly fuseDir: string,
    private readonly sock: string,
  ) {
    fs.mkdirSync(fuseDir, { recursive: true });
  }

  get file(): string {
    return path.join(this.fuseDir, 'nbd');
  }

  async attach(): Promise<string> {
    this.nbdfuse = spawn('nbdfuse', [this.fuseDir, '--unix', this.sock], { stdio: 'ignore' });
    for (let i = 0; i < 400 && !isMounted(this.fuseDir); i++) await new Promise((r) => setTimeout(r, 50));
    if (!isMounted(this.fuseDir)) throw new Error('nbdfuse did not mount');
    this.loop = execFileSync('losetup', ['--find', '--show', this.file]).toString().trim();
    return this.loop;
  }

  /** Detaches everything; `lazy` for a server that was killed (nothing answers the kernel any more). */
  detach(lazy = false): void {
    if (this.loop) spawnSync('losetup', ['-d', this.loop]);
    this.loop = undefined;
    if (isMounted(this.fuseDir)) spawnSync('fusermount', lazy ? ['-u', '-z', this.fuseDir] : ['-u', this.fuseDir]);
    this.nbdfuse?.kill(lazy ? 'SIGKILL' : 'SIGTERM');
    this.nbdfuse = undefined;
  }
}

export function unmount(dir: string): void {
  if (isMounted(dir)) spawnSync('umount', ['-l', dir]);
}

/** A scratch directory with a repository path, its environment (a cache of its own) and a socket for a volume named `disk`. */
export function volumeScratch(prefix: string, extraEnv: Record<string, string> = {}) {
  const { dir, cleanup } = scratch(prefix);
  const repo = path.join(dir, 'repo');
  const base = { XDG_CACHE_HOME: path.join(dir, 'cache') };
  const sock = path.join(dir, 'vol.sock');
  return { dir, cleanup, repo, base, env: cliEnv(repo, { ...base, ...extraEnv }), sock, uri: `nbd+unix:///disk?socket=${sock}` };
}
