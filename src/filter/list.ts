import { ScrateError } from '../errors.js';
import { childMayMatch, matches, parsePattern, PatternSyntaxError, splitPath, type Pattern } from './pattern.js';

/**
 * Patterns applied in order, as restic's filter.List: a path matches when a pattern matches
 * it and no negated ('!') pattern after the last such one does. Case-insensitive lists
 * (--iexclude, --iinclude) compare lower-cased patterns and paths.
 */
export class PatternList {
  private readonly patterns: Pattern[];
  private readonly hasNegated: boolean;

  /** `option` names where the patterns come from in the error a malformed one gives. */
  constructor(
    patterns: readonly string[],
    option: string,
    private readonly insensitive = false,
  ) {
    try {
      // Empty patterns are ignored, as restic ignores them.
      this.patterns = patterns.filter((p) => p !== '').map((p) => parsePattern(insensitive ? lower(p) : p));
    } catch (err) {
      if (err instanceof PatternSyntaxError) throw new ScrateError(`${option}: invalid pattern ${JSON.stringify(err.pattern)}`, undefined, 'see PATTERNS in the manual');
      throw err;
    }
    this.hasNegated = this.patterns.some((p) => p.negated);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether an absolute, clean path matches. */
  matches(path: string): boolean {
    return this.evaluate(path, false).matched;
  }

  /** Also whether something below it may match (childMayMatch of restic's ListWithChild). */
  matchesWithChild(path: string): { matched: boolean; childMayMatch: boolean } {
    return this.evaluate(path, true);
  }

  private evaluate(path: string, children: boolean): { matched: boolean; childMayMatch: boolean } {
    let matched = false;
    let child = false;
    if (this.patterns.length === 0) return { matched, childMayMatch: child };
    const subject = this.insensitive ? lower(path) : path;
    const strs = children ? splitPath(subject) : [];
    for (const p of this.patterns) {
      const m = matches(p, subject);
      if (p.negated) {
        matched &&= !m;
        child &&= !m;
      } else {
        matched ||= m;
        child ||= !children || childMayMatch(p, strs);
        // Only a negated pattern could undo the result.
        if (matched && child && !this.hasNegated) break;
      }
    }
    return { matched, childMayMatch: child };
  }
}

/**
 * Lower case as Go's strings.ToLower: character by character (JavaScript's toLowerCase makes
 * a final sigma ς and İ two characters, Go σ and i).
 */
function lower(s: string): string {
  if (!/[\u0130\u03a3]/.test(s)) return s.toLowerCase();
  return Array.from(s, (c) => (c === '\u0130' ? 'i' : c.toLowerCase())).join('');
}
