import { expandVariables } from './expand.js';
import { readLines } from './text-file.js';

/**
 * The patterns of --exclude-file and --iexclude-file, read as restic reads them: one a line,
 * leading and trailing white space removed, empty lines and lines starting with '#' skipped,
 * environment variables expanded ($$ for a '$').
 */
export function readPatternFiles(files: readonly string[]): string[] {
  return files.flatMap((file) =>
    readLines(file, 'exclude file')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => expandVariables(line, process.env)),
  );
}
