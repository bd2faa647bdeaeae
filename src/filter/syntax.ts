/**
 * The pattern syntax, for the manual's PATTERNS section: plain text, paragraphs separated by
 * blank lines, indented lines to be shown as they are.
 */
export const PATTERN_SYNTAX = `Patterns select paths for backup --exclude, --iexclude, --exclude-file and --iexclude-file, and for restore --include, --iinclude, --exclude and --iexclude. They follow restic's rules, so restic's exclude files and scripts work unchanged.

A pattern is matched against the whole absolute path of each file or directory (for restore, its path in the snapshot, or below SNAPSHOT:subpath when one is given). It is cleaned first as a path (// and /./ collapse, a/../ goes, a trailing / is dropped) and split at each /. Within one component, * matches any run of characters, ? one character, [abc] or [a-z] one of a class, [^abc] one not in it (! is not negation there), and \\ takes the next character literally. ** as a whole component matches any number of components, none included.

A pattern that starts with / is anchored: it matches a path whose first components it matches. Any other pattern matches any run of consecutive components anywhere in the path: *.o matches every file ending in .o, foo/bar matches /home/me/foo/bar and /srv/foo/bar. Since a matching directory's contents begin with the same components, a pattern that matches a directory matches everything below it too.

  /home/*/.cache     every user's cache directory, and all in it
  *.tmp              files and directories named *.tmp, at any depth
  adduser/examples   that directory wherever it is
  src/**/*.js        .js files at any depth below any directory src
  !keep.tmp          see negation below

A pattern starting with ! is negated: a path that an earlier pattern matched is no longer matched when it matches this one. Order matters: --exclude '*.log' --exclude '!important.log' keeps important.log; the reverse order excludes it. A backup does not look into an excluded directory, so a negated pattern cannot bring back something below one.

The --i variants compare in lower case: --iexclude '*.JPG' excludes photo.jpg and PHOTO.JPG.

An exclude file holds one pattern a line; leading and trailing white space is removed, empty lines and lines starting with # are skipped, $NAME and \${NAME} are replaced by that environment variable's value ($$ for a literal $). A byte order mark (UTF-8 or UTF-16) is understood.

Backups also leave out: with --exclude-if-present NAME[:HEADER], the contents (but the file itself) of every directory holding a file NAME, that starts with HEADER if one is given; with --exclude-caches, those of directories holding a CACHEDIR.TAG with its signature (https://bford.info/cachedir/); with --exclude-larger-than SIZE, files larger than SIZE (k, m, g, t: KiB, MiB, GiB, TiB). A path given on the command line is judged as any other.

restore --include restores what matches, and creates the directories above it; it looks into a directory only when something below it may match. restore --exclude restores everything but what matches and what is below it. --include and --exclude cannot be combined; use a negated include instead.

--files-from FILE names one path a line, each a glob (*, ?, [...] within a component, relative to the working directory); empty lines and lines starting with # are skipped, white space around a path removed, and a glob matching nothing is reported and skipped. --files-from-verbatim takes each line as it is, --files-from-raw takes paths each ended by a NUL byte (as find -print0 writes them). - reads standard input. They combine with paths on the command line.`;
