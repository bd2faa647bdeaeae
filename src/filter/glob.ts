/**
 * Go's filepath.Match syntax (which restic's patterns use for each path component), compiled
 * to a regular expression: `*` any run of characters but '/', `?` one such character, `[...]`
 * a class (`[^...]` negated, `a-z` ranges, `\` escaping), `\c` the character c. A malformed
 * pattern is an error, as Go reports it, whether or not it would have matched.
 */
export class GlobSyntaxError extends Error {}

/** A glob anchored at both ends; `/` in it is an ordinary character. */
export function compileGlob(glob: string): RegExp {
  return new RegExp(`^${globSource(glob)}$`, 'u');
}

/**
 * A glob as the source of a regular expression (flag u) that matches within one path
 * component: nothing in it matches a '/'.
 */
export function globSource(glob: string): string {
  const chars = Array.from(glob);
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') i = compileClass(chars, i + 1, (part) => (re += part));
    else if (c === '\\') {
      if (++i === chars.length) throw new GlobSyntaxError('a trailing backslash escapes nothing');
      re += literal(chars[i]!);
    } else re += literal(c);
  }
  return re;
}

/** Whether `glob` has any of the characters that make it more than a literal name. */
export function hasMeta(glob: string): boolean {
  return /[*?[\\]/.test(glob);
}

/** Compiles the class starting after its '[' at `i`; returns the index of its ']'. */
function compileClass(chars: string[], i: number, emit: (part: string) => void): number {
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  let ranges = '';
  for (let n = 0; ; n++) {
    if (chars[i] === ']' && n > 0) break;
    const lo = classChar(chars, i);
    let hi = lo;
    i = lo.next;
    if (chars[i] === '-') {
      hi = classChar(chars, i + 1);
      i = hi.next;
    }
    // Go accepts a reversed range, which matches nothing; a regular expression would refuse it.
    if (lo.cp <= hi.cp) ranges += `${literal(lo.char)}-${literal(hi.char)}`;
  }
  emit(`(?!/)[${negated ? '^' : ''}${ranges}]`);
  return i;
}

/** Go's getEsc: one (possibly escaped) character of a class, which must not end the pattern. */
function classChar(chars: string[], i: number): { char: string; cp: number; next: number } {
  let c = chars[i];
  if (c === undefined || c === '-' || c === ']') throw new GlobSyntaxError('a character class is empty or unclosed');
  if (c === '\\') {
    c = chars[++i];
    if (c === undefined) throw new GlobSyntaxError('a character class is unclosed');
  }
  if (i + 1 >= chars.length) throw new GlobSyntaxError('a character class is unclosed');
  return { char: c, cp: c.codePointAt(0)!, next: i + 1 };
}

function literal(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}
