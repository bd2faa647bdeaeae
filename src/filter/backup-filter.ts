import { PatternList } from './list.js';
import { readPatternFiles } from './pattern-file.js';
import { CACHEDIR_TAG, TagFile } from './tag-file.js';

export interface BackupFilterOptions {
  exclude?: readonly string[];
  iexclude?: readonly string[];
  excludeFile?: readonly string[];
  iexcludeFile?: readonly string[];
  /** name[:header], see TagFile. */
  excludeIfPresent?: readonly string[];
  excludeCaches?: boolean;
  /** Files (anything but directories) larger than this many bytes are left out. */
  excludeLargerThan?: number;
}

/**
 * What a backup leaves out, decided as restic 0.14 decides it: by absolute path first (the
 * patterns, tagged directories), then by what lstat says (the size). A source given on the
 * command line is judged as any other path.
 */
export class BackupFilter {
  /** The patterns to record in the snapshot: --exclude's and those of --exclude-file. */
  readonly excludes: string[];
  private readonly byPath: { rejects(absPath: string): boolean }[] = [];
  private readonly largerThan: number | undefined;

  constructor(opts: BackupFilterOptions, warn: (message: string) => void) {
    this.excludes = [...(opts.exclude ?? []), ...readPatternFiles(opts.excludeFile ?? [])];
    const iexcludes = [...(opts.iexclude ?? []), ...readPatternFiles(opts.iexcludeFile ?? [])];
    for (const list of [new PatternList(iexcludes, '--iexclude', true), new PatternList(this.excludes, '--exclude')]) {
      if (!list.empty) this.byPath.push({ rejects: (p) => list.matches(p) });
    }
    const tags = [...(opts.excludeIfPresent ?? []), ...(opts.excludeCaches ? [CACHEDIR_TAG] : [])];
    for (const spec of tags) this.byPath.push(new TagFile(spec, warn));
    this.largerThan = opts.excludeLargerThan;
  }

  /** Nothing is ever left out: the walk need not build paths as strings. */
  get empty(): boolean {
    return this.byPath.length === 0 && this.largerThan === undefined;
  }

  /** Whether to leave out an absolute, clean path, judged before it is looked at. */
  rejectsPath(absPath: string): boolean {
    return this.byPath.some((f) => f.rejects(absPath));
  }

  /** Whether to leave out an entry for what lstat says of it. */
  rejectsEntry(isDirectory: boolean, size: number): boolean {
    return this.largerThan !== undefined && !isDirectory && size > this.largerThan;
  }
}
