import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** bin/scrate of this checkout (tests run from dist/test/helpers), run as an installed command is: its own launcher. */
export const SCRATE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/scrate');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a cron job would have: no terminal, the password in the environment. */
export function cliEnv(repo: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], SCRATE_REPOSITORY: repo, SCRATE_PASSWORD: 'cli test password', SCRATE_KDF_MS: '5', ...extra };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

export function scrate(args: string[], env: NodeJS.ProcessEnv, opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(SCRATE, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw r.error;
  return { code: r.status ?? 128 + 2, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts scrate and returns the child, for tests that signal it. */
export function scrateAsync(args: string[], env: NodeJS.ProcessEnv) {
  return spawn(SCRATE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Errors are one line (a hint is folded into it), never a stack trace. */
export function assertCleanError(r: RunResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

/** The JSON lines a command printed under --json (restic's form: one message a line). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The one message of a type (`summary` of a backup, a restore or a check) among a command's JSON lines. */
export function jsonMessage<T = Record<string, unknown>>(stdout: string, type: string): T {
  const found = jsonLines(stdout).filter((m) => m.message_type === type);
  assert.equal(found.length, 1, `one ${type} message in ${stdout}`);
  return found[0] as T;
}

/** The full ID of the snapshot `backup --json` printed it saved. */
export function backupSnapshotId(stdout: string): string {
  return jsonMessage<{ full_snapshot_id: string }>(stdout, 'summary').full_snapshot_id;
}

/** `copy --json`'s summary line. */
export interface CopySummary {
  mode: string;
  snapshots_copied: number;
  snapshots_skipped: number;
  snapshots_failed: number;
  blobs_copied: number;
  bytes_read: number;
  bytes_stored: number;
}
