/**
 * The pattern syntax, for the man page's PATTERNS section: plain text, paragraphs separated by
 * blank lines, indented lines shown as written. It belongs with the pattern matcher (src/filter/),
 * which is written beside this; once that module exports its own description this file is to
 * re-export it instead.
 */
export const PATTERN_SYNTAX = `--exclude, --include, --iexclude, --iinclude, --exclude-file and the like take restic's patterns. A pattern is matched against the whole path of a file (at backup: as given on the command line, made absolute; at restore: the path inside the snapshot), component by component.

* matches any run of characters within one component, ? one character, [abc] and [a-z] one of a set ([^abc] one not in it); ** matches any number of whole components, none included. A backslash takes the next character literally.

A pattern that starts with / must match from the root; any other pattern may match at any depth, as if it began with **/. A pattern that matches a directory also matches everything below it.

The --i variants ignore case. In an exclude file, one pattern a line: empty lines and lines starting with # are skipped, and $VARIABLE and \${VARIABLE} are replaced by the environment's value.

  scrate backup ~ --exclude '*.o' --exclude '/home/*/.cache'
  scrate restore latest --target /tmp/r --include '*/adduser/*'`;
