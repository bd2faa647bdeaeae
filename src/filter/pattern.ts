import { compileGlob, GlobSyntaxError } from './glob.js';

/**
 * One pattern as restic 0.14 parses it (internal/filter): an optional leading '!' negates it,
 * the rest is cleaned as a path (filepath.Clean) and split at '/'. A leading '/' anchors it at
 * the root; otherwise it may match any run of consecutive components. `**` stands for any
 * number of components, each other component is a glob of Go's filepath.Match.
 */
export interface Pattern {
  readonly original: string;
  readonly negated: boolean;
  readonly parts: readonly Part[];
}

/** A component of a pattern: '/' (the root, first only), `**`, a literal name or a glob. */
type Part = { kind: 'root' } | { kind: 'any' } | { kind: 'name'; name: string } | { kind: 'glob'; re: RegExp };

const ROOT: Part = { kind: 'root' };
const ANY: Part = { kind: 'any' };
const STAR: Part = { kind: 'glob', re: /^[^/]*$/u };

export class PatternSyntaxError extends Error {
  constructor(readonly pattern: string, reason: string) {
    super(`${pattern}: ${reason}`);
  }
}

export function parsePattern(original: string): Pattern {
  const negated = original.startsWith('!');
  const parts = splitPath(cleanPath(negated ? original.slice(1) : original)).map((component): Part => {
    if (component === '/') return ROOT;
    if (component === '**' || component === '') return ANY;
    if (!/[\\[\]*?]/.test(component)) return { kind: 'name', name: component };
    try {
      return { kind: 'glob', re: compileGlob(component) };
    } catch (err) {
      if (err instanceof GlobSyntaxError) throw new PatternSyntaxError(original, err.message);
      throw err;
    }
  });
  return { original, negated, parts };
}

/** A path as patterns see it: its components, an absolute path's first being '/'. */
export function splitPath(p: string): string[] {
  const parts = p.split('/');
  if (parts[0] === '') parts[0] = '/';
  return parts;
}

/** Go's filepath.Clean: no empty or '.' components, '..' resolved lexically, no trailing '/'. */
export function cleanPath(p: string): string {
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c !== '..') out.push(c);
    else if (out.length > 0 && out.at(-1) !== '..') out.pop();
    else if (!rooted) out.push('..');
  }
  const joined = out.join('/');
  return rooted ? '/' + joined : joined || '.';
}

/**
 * Whether the pattern matches the path (given as splitPath's components): an anchored one its
 * first components, another any run of them. So a pattern matching a directory matches all
 * that is below it too.
 */
export function matches(pattern: Pattern, path: readonly string[]): boolean {
  return matchParts(pattern.parts, path);
}

/** Whether something below the path may match: restore descends into a directory only then. */
export function childMayMatch(pattern: Pattern, path: readonly string[]): boolean {
  const { parts } = pattern;
  if (parts[0] !== ROOT) return true; // a relative pattern may match anywhere further down
  const any = parts.indexOf(ANY);
  const strs = any >= 0 && path.length >= any ? path.slice(0, any) : path;
  return matchParts(parts.slice(0, Math.min(strs.length, parts.length)), strs);
}

function matchParts(parts: readonly Part[], strs: readonly string[]): boolean {
  const any = parts.indexOf(ANY);
  if (any >= 0) {
    // `**` tried as no component, then one, two... as restic expands it.
    const prefix = parts.slice(0, any);
    const suffix = parts.slice(any + 1);
    for (let i = 0; i <= strs.length - parts.length + 1; i++) {
      if (matchParts([...prefix, ...new Array<Part>(i).fill(STAR), ...suffix], strs)) return true;
    }
    return false;
  }
  if (parts.length === 0) return strs.length === 0;
  if (parts.length > strs.length) return false;
  const anchored = parts[0] === ROOT;
  const maxOffset = anchored ? 0 : strs.length - parts.length;
  // A relative pattern never matches the root marker.
  const minOffset = !anchored && strs[0] === '/' ? 1 : 0;
  outer: for (let offset = maxOffset; offset >= minOffset; offset--) {
    for (let i = parts.length - 1; i >= 0; i--) {
      if (!partMatches(parts[i]!, strs[offset + i]!)) continue outer;
    }
    return true;
  }
  return false;
}

function partMatches(part: Part, s: string): boolean {
  switch (part.kind) {
    case 'root':
      return s === '/';
    case 'name':
      return part.name === s;
    case 'glob':
      return part.re.test(s);
    case 'any':
      return false; // expanded before
  }
}
