import { Compressor, decompress as zstdDecompress } from 'zstd-napi';

const compressors = new Map<number, Compressor>();

function compressor(level: number): Compressor {
  let c = compressors.get(level);
  if (!c) {
    c = new Compressor();
    c.setParameters({ compressionLevel: level, contentSizeFlag: true, checksumFlag: false });
    compressors.set(level, c);
  }
  return c;
}

/** zstd at `level`, or null when compressing would not make the data smaller. */
export function compress(data: Uint8Array, level: number): Buffer | null {
  if (level <= 0) return null;
  const out = compressor(level).compress(data);
  return out.length < data.length ? out : null;
}

export function decompress(data: Uint8Array): Buffer {
  return zstdDecompress(data);
}
