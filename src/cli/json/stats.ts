import type { Stats } from '../../browse/stats.js';

/** restic's `stats --json`: its fields in its order, those it omits when 0 omitted. */
export function statsJson(s: Stats): Record<string, number> {
  const omitZero = (name: string, v: number) => (v ? { [name]: v } : {});
  return {
    total_size: s.totalSize,
    ...omitZero('total_uncompressed_size', s.totalUncompressedSize),
    ...omitZero('compression_ratio', s.compressionRatio),
    ...omitZero('compression_progress', s.compressionProgress),
    ...omitZero('compression_space_saving', s.compressionSpaceSaving),
    ...omitZero('total_file_count', s.totalFileCount),
    ...omitZero('total_blob_count', s.totalBlobCount),
    snapshots_count: s.snapshotsCount,
  };
}
