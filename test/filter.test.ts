import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandVariables } from '../src/filter/expand.js';
import { compileGlob, GlobSyntaxError } from '../src/filter/glob.js';
import { PatternList } from '../src/filter/list.js';
import { cleanPath } from '../src/filter/pattern.js';
import { ScrateError } from '../src/errors.js';

// What restic inherits from Go, checked on its own: the fixture of test/patterns.test.ts
// covers how restic puts it together.
describe("Go's filepath.Match syntax", () => {
  test('characters, stars, question marks and classes match as in Go', () => {
    const cases: [string, string, boolean][] = [
      ['*', '', true],
      ['a*z', 'abcz', true],
      ['a*z', 'a/z', false],
      ['?', '☺', true], // a character, not a byte
      ['??', '☺', false],
      ['[^x]', '☺', true],
      ['[a-c]x', 'bx', true],
      ['[^a-c]x', 'bx', false],
      ['[!a]', '!', true], // '!' is a character of the class, not its negation
      ['[z-a]', 'm', false], // a reversed range matches nothing
      ['[^z-a]', 'm', true],
      ['[\\]]', ']', true],
      ['[\\-x]', '-', true],
      ['[α-ω]', 'λ', true],
      ['\\*', '*', true],
      ['\\*', 'a', false],
      ['\\a', 'a', true],
      ['a]b', 'a]b', true], // outside a class, ']' is a character
      ['.', 'x', false], // nothing of regular expressions leaks through
      ['a+', 'aa', false],
      ['(a)', '(a)', true],
    ];
    for (const [glob, name, expected] of cases) assert.equal(compileGlob(glob).test(name), expected, `${glob} against ${name}`);
  });

  test('a malformed glob is an error, wherever it is malformed', () => {
    for (const glob of ['[', 'a[', '[^', '[^bc', '[]a]', '[-]', '[x-]', '[-x]', '[a-b-c]', '\\', 'a\\', '[\\', '*[', 'x*[a']) {
      assert.throws(() => compileGlob(glob), GlobSyntaxError, glob);
    }
  });
});

describe('patterns', () => {
  test('are cleaned as Go cleans paths', () => {
    const cases: [string, string][] = [
      ['', '.'],
      ['/', '/'],
      ['a//b/./c/', 'a/b/c'],
      ['a/../../b', '../b'],
      ['/../a', '/a'],
      ['a/b/..', 'a'],
      ['./', '.'],
    ];
    for (const [input, cleaned] of cases) assert.equal(cleanPath(input), cleaned, input);
  });

  test('a malformed one is refused naming its option and itself', () => {
    assert.throws(() => new PatternList(['ok', 'src/[a'], '--exclude'), (err: unknown) => err instanceof ScrateError && err.message === '--exclude: invalid pattern "src/[a"');
  });

  test('case is ignored as Go lowers it: İ is i, a final Σ is σ', () => {
    const list = new PatternList(['/x/İ*', '/y/ΟΔΟΣ'], '--iexclude', true);
    assert.ok(list.matches('/x/iz'));
    assert.ok(list.matches('/y/οδοσ'));
    assert.ok(!list.matches('/y/οδος'));
  });
});

describe("exclude files' variables, as Go's os.Expand with restic's $$", () => {
  test('names, braces, special names and malformed references', () => {
    const env = { HOME: '/home/me', home_1: '/usr/foo', H: '(H)', '1': 'ONE', '#': 'NARGS', '*': 'ALL' };
    const cases: [string, string][] = [
      ['', ''],
      ['plain text', 'plain text'],
      ['$HOME/x', '/home/me/x'],
      ['${HOME}x', '/home/mex'],
      ['${H}OME', '(H)OME'],
      ['$home_1.bak', '/usr/foo.bak'],
      ['$UNSET/x', '/x'],
      ['$$', '$'],
      ['price$$5', 'price$5'],
      ['$1$#${*}', 'ONENARGSALL'],
      ['A$$$#$1$H$home_1*B', 'A$NARGSONE(H)/usr/foo*B'],
      ['start$+middle$^end$', 'start$+middle$^end$'],
      ['$', '$'],
      ['$}', '$}'],
      ['${', ''],
      ['${}', ''],
      ['a${b', 'ab'],
    ];
    for (const [input, expanded] of cases) assert.equal(expandVariables(input, env), expanded, input);
  });
});
