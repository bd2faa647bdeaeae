import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describeError, ExitCode, ScrateError } from '../errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { RetryBackend } from './retry.js';
import { parseS3Location } from './s3-location.js';

/** Backend options: `-o s3.region=eu-west-1`, or the environment (`SCRATE_S3_REGION`). */
export type BackendOptions = Record<string, string>;

const S3_OPTIONS = ['region', 'path-style', 'connections', 'storage-class', 'ca-bundle'] as const;

/** Parses `key=value` strings; the environment fills in what they leave out. */
export function parseBackendOptions(pairs: string[], env: NodeJS.ProcessEnv = process.env): BackendOptions {
  const opts: BackendOptions = {};
  for (const name of S3_OPTIONS) {
    const v = env[`SCRATE_S3_${name.toUpperCase().replace('-', '_')}`];
    if (v !== undefined && v !== '') opts[`s3.${name}`] = v;
  }
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ScrateError(`option ${pair} is not key=value`);
    const key = pair.slice(0, at);
    if (!S3_OPTIONS.some((n) => `s3.${n}` === key)) throw new ScrateError(`unknown option ${key}`, ExitCode.fatal, `known: ${S3_OPTIONS.map((n) => `s3.${n}`).join(', ')}`);
    opts[key] = pair.slice(at + 1);
  }
  return opts;
}

function boolOption(opts: BackendOptions, key: string, fallback: boolean): boolean {
  const v = opts[key];
  if (v === undefined) return fallback;
  if (/^(true|1|yes|on)$/i.test(v)) return true;
  if (/^(false|0|no|off)$/i.test(v)) return false;
  throw new ScrateError(`option ${key}=${v}: expected true or false`);
}

function intOption(opts: BackendOptions, key: string, fallback: number, max: number): number {
  const v = opts[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ScrateError(`option ${key}=${v}: expected a whole number from 1 to ${max}`);
  return n;
}

/** Turns a repository location as users write it into a backend. */
export async function openBackend(location: string, opts: BackendOptions = {}): Promise<Backend> {
  if (location.startsWith('s3:')) {
    const where = parseS3Location(location);
    const caFile = opts['s3.ca-bundle'];
    let caBundle: Buffer | undefined;
    if (caFile) {
      try {
        caBundle = readFileSync(caFile);
      } catch (err) {
        throw new ScrateError(`cannot read CA bundle ${caFile}: ${describeError(err)}`);
      }
    }
    // Loaded only for S3 repositories: the SDK costs ~0.3 s of start-up CPU.
    const { S3Backend } = await import('./s3.js');
    const s3 = new S3Backend({
      ...where,
      region: opts['s3.region'],
      // Virtual-hosted buckets need DNS per bucket, which S3-compatible servers rarely have.
      pathStyle: boolOption(opts, 's3.path-style', where.endpoint !== undefined),
      connections: intOption(opts, 's3.connections', 8, 256),
      storageClass: opts['s3.storage-class'],
      caBundle,
    });
    return new RetryBackend(s3);
  }
  if (/^[a-z0-9]+:\/\//i.test(location)) throw new ScrateError(`unsupported repository location ${location}`, ExitCode.fatal, 'use a directory, or s3:…');
  const local = location.startsWith('local:') ? location.slice('local:'.length) : location;
  return new LocalBackend(path.resolve(local));
}
