import type { BlobReader } from '../repository/repository.js';
import { archiveEntries, type DumpStart, type EntryOptions } from './entries.js';
import type { Sink } from './sink.js';
import { TarWriter } from './tar.js';
import { ZipWriter } from './zip.js';

export const ARCHIVE_FORMATS = ['tar', 'zip'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

/** Streams an archive of what `start` names to `sink`, member by member, content blob by blob. */
export async function writeArchive(format: ArchiveFormat, reader: BlobReader, start: DumpStart, sink: Sink, opts: EntryOptions = {}): Promise<void> {
  const writer = format === 'tar' ? new TarWriter(reader, sink) : new ZipWriter(reader, sink);
  for await (const entry of archiveEntries(reader, start, opts)) await writer.add(entry);
  await writer.end();
}
