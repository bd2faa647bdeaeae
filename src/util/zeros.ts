const ZEROS = Buffer.alloc(64 * 1024);

/** Whether every byte is zero: a memcmp against a zero page, far faster than hashing. */
export function isZero(data: Uint8Array): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const end = Math.min(at + ZEROS.length, data.length);
    if (Buffer.compare(ZEROS.subarray(0, end - at), data.subarray(at, end)) !== 0) return false;
  }
  return true;
}
