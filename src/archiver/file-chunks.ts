import type { FileHandle } from 'node:fs/promises';
import type { FastCDC } from '../chunker/fastcdc.js';

/**
 * Reads a file once, front to back, and yields its content-defined chunks. The yielded
 * buffers are views into a reused buffer: valid only until the consumer asks for the next.
 */
export async function* fileChunks(fh: FileHandle, chunker: FastCDC, buffer: Buffer): AsyncGenerator<Buffer> {
  const max = chunker.params.max;
  let start = 0;
  let end = 0;
  let eof = false;
  for (;;) {
    if (!eof && end - start < max) {
      buffer.copyWithin(0, start, end);
      end -= start;
      start = 0;
      while (end < buffer.length) {
        const { bytesRead } = await fh.read(buffer, end, buffer.length - end, null);
        if (bytesRead === 0) {
          eof = true;
          break;
        }
        end += bytesRead;
      }
    }
    if (start === end) return;
    const length = chunker.cut(buffer, start, end);
    yield buffer.subarray(start, start + length);
    start += length;
  }
}

/** A buffer large enough for fileChunks to always hold a maximal chunk plus read-ahead. */
export function chunkBuffer(chunker: FastCDC): Buffer {
  return Buffer.allocUnsafe(chunker.params.max * 2);
}
