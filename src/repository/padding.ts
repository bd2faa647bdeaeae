/**
 * Packs and sealed objects are padded (with zeros, inside their encryption) to a length that
 * keeps only their size's top bits: an observer of the bucket learns a size to within 1/128
 * (or 1 KiB), not the exact sum of blob lengths that would fingerprint known files by their
 * chunks. The cost is at most 1/128 of a large pack, 0.4 % on average.
 */
const MIN_UNIT = 1024;
const KEPT_BITS = 7;

/**
 * JSON padded with spaces (which JSON.parse ignores) to a multiple of `unit` bytes: the length
 * of a small secret then tells nothing (a write-only key's secrets are longer than a full key's).
 */
export function padJson(json: string, unit: number): Buffer {
  return Buffer.from(json.padEnd(Math.ceil((json.length + 1) / unit) * unit));
}

/** The stored length of something `length` bytes long before padding. */
export function paddedLength(length: number): number {
  const unit = Math.max(MIN_UNIT, 2 ** (Math.floor(Math.log2(Math.max(length, 1))) - KEPT_BITS));
  return Math.ceil(length / unit) * unit;
}
