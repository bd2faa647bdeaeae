import { readFileSync } from 'node:fs';
import { describeError, ScrateError } from '../errors.js';

/**
 * restic-style exclude patterns: a pattern with a '/' matches the whole absolute path
 * (or any path below a match), one without matches any single name. `*` and `?` stay within
 * one name, `**` crosses directories, `[...]` is a character class.
 */
export class Excludes {
  private readonly byPath: RegExp[] = [];
  private readonly byName: RegExp[] = [];

  constructor(readonly patterns: string[]) {
    for (const p of patterns) {
      if (p.includes('/')) this.byPath.push(new RegExp('^' + globToRegex(p.replace(/\/+$/, '')) + '(/.*)?$', 's'));
      else this.byName.push(new RegExp('^' + globToRegex(p) + '$', 's'));
    }
  }

  static fromFiles(files: string[]): string[] {
    return files.flatMap((f) => {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (err) {
        throw new ScrateError(`cannot read exclude file ${f}: ${describeError(err)}`);
      }
      return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    });
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** `absPath` as a string (non-UTF-8 bytes decoded lossily: patterns are text). */
  excluded(absPath: string, name: string): boolean {
    return this.byName.some((r) => r.test(name)) || this.byPath.some((r) => r.test(absPath));
  }
}

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          out += '(?:.*/)?';
          i++;
        } else out += '.*';
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        out += '[' + glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return out;
}
