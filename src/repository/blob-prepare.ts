import { blobId } from '../crypto/primitives.js';
import { compress } from './compression.js';

/** A blob ready for a pack: its ID, and the bytes to encrypt (compressed when that is smaller). */
export interface PreparedBlob {
  id: Buffer;
  stored: Buffer;
  compressed: boolean;
  rawLength: number;
}

/** The CPU-heavy half of storing a blob, the same on the main thread and in blob workers. */
export function prepareBlob(chunkIdKey: Uint8Array, data: Buffer, level: number): PreparedBlob {
  const packed = compress(data, level);
  return { id: blobId(chunkIdKey, data), stored: packed ?? data, compressed: packed !== null, rawLength: data.length };
}
