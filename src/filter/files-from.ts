import { lstatSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ScrateError } from '../errors.js';
import { compileGlob, GlobSyntaxError, hasMeta } from './glob.js';
import { readInput, readLines } from './text-file.js';

export interface FilesFromOptions {
  /** Lines, trimmed, '#' comments skipped, each a glob (Go's filepath.Glob). */
  filesFrom?: readonly string[];
  /** Lines, each a path as it is. */
  filesFromVerbatim?: readonly string[];
  /** Paths each ended by a NUL byte. */
  filesFromRaw?: readonly string[];
}

/**
 * The paths to back up named by --files-from, --files-from-verbatim and --files-from-raw, in
 * that order, as restic 0.14 reads them. A glob that matches nothing is reported to `warn`.
 */
export function filesFrom(opts: FilesFromOptions, warn: (message: string) => void): string[] {
  const paths: string[] = [];
  for (const file of opts.filesFrom ?? []) {
    for (const raw of readLines(file, 'file list')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const found = globChecked(line);
      if (found.length === 0) warn(`pattern ${JSON.stringify(line)} does not match any files, skipping`);
      paths.push(...found);
    }
  }
  for (const file of opts.filesFromVerbatim ?? []) paths.push(...readLines(file, 'file list').filter((l) => l !== ''));
  for (const file of opts.filesFromRaw ?? []) paths.push(...rawNames(file));
  return paths;
}

function rawNames(file: string): string[] {
  const data = readInput(file, 'file list');
  if (data.length === 0) return [];
  if (data.at(-1) !== 0) throw new ScrateError(`--files-from-raw ${file}: the last name is not ended by a NUL byte`);
  const names = data.subarray(0, -1).toString('utf8').split('\0');
  if (names.includes('')) throw new ScrateError(`--files-from-raw ${file}: an empty name`);
  return names;
}

/** Go's filepath.Glob, which refuses a malformed pattern before it looks at anything. */
function globChecked(pattern: string): string[] {
  try {
    compileGlob(pattern);
    return glob(pattern);
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new ScrateError(`--files-from: invalid pattern ${JSON.stringify(pattern)}`);
    throw err;
  }
}

/** Existing paths matching, directory by directory, sorted; I/O errors ignored. */
function glob(pattern: string): string[] {
  if (!hasMeta(pattern)) return exists(pattern) ? [pattern] : [];
  const slash = pattern.lastIndexOf('/');
  const file = pattern.slice(slash + 1);
  const dir = slash < 0 ? '.' : slash === 0 ? '/' : pattern.slice(0, slash);
  if (!hasMeta(dir)) return globDir(dir, file);
  if (dir === pattern) return [];
  return glob(dir).flatMap((d) => globDir(d, file));
}

function globDir(dir: string, pattern: string): string[] {
  try {
    if (!statSync(dir).isDirectory()) return [];
    const re = compileGlob(pattern);
    const names = readdirSync(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return names.filter((n) => re.test(n)).map((n) => path.join(dir, n));
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw err;
    return [];
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
