import { ScrateError } from '../errors.js';

/** Blob IDs (keyed BLAKE3) and object names (SHA-256). */
export const ID_BYTES = 32;

/** Resolves a full ID or a unique prefix of one among `ids`. */
export function resolvePrefix(ids: Iterable<string>, prefix: string, what: string): string {
  const matches = [...ids].filter((id) => id.startsWith(prefix.toLowerCase()));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new ScrateError(`no ${what} ${prefix}`);
  throw new ScrateError(`${what} prefix ${prefix} is ambiguous (${matches.length} match)`, 1, 'give more characters of the ID');
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}
