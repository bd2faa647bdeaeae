/** A Buffer over the same memory as `u` (a Uint8Array that crossed threads arrives as one): no copy. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
