import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { scrateAsync } from './cli.js';

/** Why `scrate mount` cannot be tested here, or null when it can: root, /dev/fuse, fusermount. */
export function fuseUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for FUSE mounts and loop devices';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return '/dev/fuse is not usable';
  }
  for (const tool of ['fusermount', 'umount', 'diff', 'stat']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

/** Whether `dir` (absolute, without symlinks) is a mountpoint, from /proc/self/mountinfo (field 5). */
export function isMounted(dir: string): boolean {
  const escaped = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === escaped);
}

export interface RunningMount {
  child: ChildProcess;
  /** Settles when the process exits: its exit code (128 + n for a signal) and what it wrote. */
  exited: Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts `scrate mount dir` and waits until the mount is there (fails if the process ends first). */
export async function startMount(dir: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<RunningMount> {
  const child = scrateAsync(['mount', ...args, dir], env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let done = false;
  const exited = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    }),
  );
  const deadline = Date.now() + 30_000;
  while (!isMounted(dir)) {
    if (done) assert.fail(`scrate mount ended before mounting: ${(await exited).stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      assert.fail(`scrate mount did not mount within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, exited };
}

/** Leaves nothing behind whatever happened: the process killed, the mount lazily detached. */
export async function cleanupMount(m: RunningMount | undefined, dir: string): Promise<void> {
  if (m && m.child.exitCode === null && m.child.signalCode === null) {
    m.child.kill('SIGKILL');
    await m.exited;
  }
  if (isMounted(dir)) execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** Polls `check` until it holds (true) or `ms` pass; gives whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
