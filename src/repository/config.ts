import { ScrateError } from '../errors.js';

/** docs/FORMAT.md's version; 2 named blobs by keyed BLAKE3 instead of version 1's HMAC-SHA256. */
export const FORMAT_VERSION = 2;

/** Repository-wide settings, fixed at init (stored encrypted as the `config` object). */
export interface RepoConfig {
  version: typeof FORMAT_VERSION;
  /** Random; names the repository in caches and messages. */
  id: string;
  chunker: { min: number; avg: number; max: number };
  /** Default zstd level for data blobs; 0 stores them uncompressed. */
  compression: number;
  /** Packs are closed once they reach this many bytes. */
  packSize: number;
}

export const DEFAULT_CHUNKER = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };
export const DEFAULT_COMPRESSION = 3;
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;

export function checkChunkerParams(p: { min: number; avg: number; max: number }): void {
  const ok = Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max) && p.min >= 64 && p.min < p.avg && p.avg < p.max && p.max <= 64 * 1024 * 1024;
  if (!ok) throw new ScrateError(`invalid chunk sizes ${p.min}/${p.avg}/${p.max}`, 1, 'need 64 ≤ min < avg < max ≤ 64 MiB');
}

export function checkCompressionLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > 19) throw new ScrateError(`invalid compression level ${level}`, 1, 'use 0 (off) to 19');
}
