import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { describeError, ScrateError } from '../errors.js';

/** The Cache Directory Tagging Standard's file and signature (https://bford.info/cachedir/), as --exclude-caches uses them. */
export const CACHEDIR_TAG = 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55';

/** Directories looked at whose verdict is kept: a walk is depth-first, so few are needed at once. */
const REMEMBERED_DIRS = 4096;

/**
 * --exclude-if-present name[:header]: the contents of a directory holding a file of that name
 * (starting with that header, if one is given) are left out, except that file; the directory
 * itself is kept.
 */
export class TagFile {
  private readonly name: string;
  private readonly header: Buffer;
  private readonly verdicts = new Map<string, boolean>();

  constructor(
    spec: string,
    private readonly warn: (message: string) => void,
  ) {
    const colon = spec.indexOf(':');
    this.name = colon < 0 ? spec : spec.slice(0, colon);
    this.header = Buffer.from(colon < 0 ? '' : spec.slice(colon + 1));
    if (this.name === '') throw new ScrateError(`--exclude-if-present ${JSON.stringify(spec)}: no file name given`, undefined, 'use NAME or NAME:HEADER');
  }

  /** Whether an absolute path is left out because its directory is tagged. */
  rejects(absPath: string): boolean {
    const dir = path.dirname(absPath);
    if (path.basename(absPath) === this.name) return false;
    let tagged = this.verdicts.get(dir);
    if (tagged === undefined) {
      tagged = this.tagged(dir);
      if (this.verdicts.size >= REMEMBERED_DIRS) this.verdicts.clear();
      this.verdicts.set(dir, tagged);
    }
    return tagged;
  }

  private tagged(dir: string): boolean {
    const file = path.join(dir, this.name);
    try {
      lstatSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(`${file}: cannot look at this exclusion tag file (${describeError(err)})`);
      return false;
    }
    if (this.header.length === 0) return true;
    const start = Buffer.alloc(this.header.length);
    let got = 0;
    try {
      const fd = openSync(file, 'r');
      try {
        for (let n = -1; n !== 0 && got < start.length; got += n) n = readSync(fd, start, got, start.length - got, null);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      this.warn(`${file}: cannot read this exclusion tag file (${describeError(err)})`);
      return false;
    }
    if (got < start.length) this.warn(`${file}: exclusion tag file too short for its signature; directory kept`);
    else if (!start.equals(this.header)) this.warn(`${file}: exclusion tag file without the expected signature; directory kept`);
    else return true;
    return false;
  }
}
