import { ScrateError } from '../errors.js';
import { PatternList } from './list.js';

export interface RestoreFilterOptions {
  include?: readonly string[];
  iinclude?: readonly string[];
  exclude?: readonly string[];
  iexclude?: readonly string[];
}

export interface Selection {
  /** Restore this entry (a directory: create it, even if nothing in it is restored). */
  selected: boolean;
  /** A directory: look at its entries. */
  descend: boolean;
}

/**
 * What a restore writes, as restic 0.14 decides it, for paths within the snapshot (or within
 * the restored part of it): with excludes, everything not matched, never below a directory
 * that is; with includes, what matches, looking into the directories below which something
 * may match. The directories above what is restored are created whether selected or not.
 */
export class RestoreFilter {
  private readonly lists: PatternList[];
  private readonly including: boolean;

  constructor(opts: RestoreFilterOptions) {
    const includes = [new PatternList(opts.include ?? [], '--include'), new PatternList(opts.iinclude ?? [], '--iinclude', true)].filter((l) => !l.empty);
    const excludes = [new PatternList(opts.exclude ?? [], '--exclude'), new PatternList(opts.iexclude ?? [], '--iexclude', true)].filter((l) => !l.empty);
    if (includes.length && excludes.length) throw new ScrateError('exclude and include patterns are mutually exclusive', undefined, 'restore twice, or use negated (!) patterns');
    this.including = includes.length > 0;
    this.lists = this.including ? includes : excludes;
  }

  /** Everything is restored. */
  get empty(): boolean {
    return this.lists.length === 0;
  }

  /** An entry at `path` ('/' then its names down from the restored root). */
  select(path: string, isDirectory: boolean): Selection {
    if (!this.including) {
      const selected = !this.lists.some((l) => l.matches(path));
      return { selected, descend: selected && isDirectory };
    }
    let selected = false;
    let descend = false;
    for (const l of this.lists) {
      const r = l.matchesWithChild(path);
      selected ||= r.matched;
      descend ||= r.childMayMatch;
    }
    return { selected, descend: descend && isDirectory };
  }
}
