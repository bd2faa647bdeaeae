import binding from 'zstd-napi/binding.js';
import { decompress as zstdDecompress } from 'zstd-napi';

/**
 * zstd at a fixed level into a reused output buffer: no allocation per blob (a fresh output
 * per call, trimmed by a copy, was a tenth of a backup worker's time and most of its garbage).
 */
export class BlobCompressor {
  private readonly cctx = new binding.CCtx();
  private scratch = Buffer.alloc(0);

  constructor(readonly level: number) {
    this.cctx.setParameter(binding.CParameter.compressionLevel, level);
    this.cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
    this.cctx.setParameter(binding.CParameter.checksumFlag, 0);
  }

  /** The compressed bytes as a view valid until the next call, or null when not smaller (or level 0: off). */
  compress(data: Uint8Array): Buffer | null {
    if (this.level <= 0 || this.looksIncompressible(data)) return null;
    return this.run(data);
  }

  /**
   * Large blobs of media, archives or encrypted data are not worth a full attempt (≈ 0.9 ms per
   * MiB at level 3): three small samples that all fail to shrink stand for the whole.
   */
  private looksIncompressible(data: Uint8Array): boolean {
    if (data.length < SAMPLED_MIN) return false;
    const last = data.length - SAMPLE_BYTES;
    for (const at of [0, Math.floor(last / 2), last]) {
      const out = this.run(data.subarray(at, at + SAMPLE_BYTES));
      if (out && out.length < SAMPLE_BYTES * SAMPLE_SHRINK) return false;
    }
    return true;
  }

  private run(data: Uint8Array): Buffer | null {
    const bound = binding.compressBound(data.length);
    if (this.scratch.length < bound) this.scratch = Buffer.allocUnsafeSlow(bound);
    const length = this.cctx.compress2(this.scratch, data);
    return length < data.length ? this.scratch.subarray(0, length) : null;
  }
}

/** Blobs from this size on are sampled before a full attempt. */
const SAMPLED_MIN = 256 * 1024;
const SAMPLE_BYTES = 8 * 1024;
/** A sample that compresses below this fraction shows the blob is worth compressing. */
const SAMPLE_SHRINK = 0.97;

const compressors = new Map<number, BlobCompressor>();

/** zstd at `level` into a new buffer, or null when compressing would not make the data smaller. */
export function compress(data: Uint8Array, level: number): Buffer | null {
  let c = compressors.get(level);
  if (!c) compressors.set(level, (c = new BlobCompressor(level)));
  const out = c.compress(data);
  return out && Buffer.from(out);
}

export function decompress(data: Uint8Array): Buffer {
  return zstdDecompress(data);
}

let dctx: InstanceType<typeof binding.DCtx> | undefined;

/**
 * Decompresses data whose size is known beforehand (a blob's, from the index) straight into
 * `out`, which has exactly that size: without zstd-napi's per-call parameter reset and frame
 * size scan, which cost a restore worker about a sixth of its decompression time. Throws when
 * the data does not decompress to exactly `out.length` bytes.
 */
export function decompressInto(out: Uint8Array, data: Uint8Array): void {
  dctx ??= new binding.DCtx();
  if (dctx.decompress(out, data) !== out.length) throw new Error('unexpected decompressed size');
}
