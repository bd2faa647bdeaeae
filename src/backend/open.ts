import path from 'node:path';
import { ScrateError } from '../errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';

/** Turns a repository location as users write it into a backend. */
export function openBackend(location: string): Backend {
  if (location.startsWith('s3:')) throw new ScrateError('S3 repositories are not supported by this build yet', 1, 'use a local directory for now');
  const local = location.startsWith('local:') ? location.slice('local:'.length) : location;
  return new LocalBackend(path.resolve(local));
}
