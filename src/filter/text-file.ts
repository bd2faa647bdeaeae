import { readFileSync } from 'node:fs';
import { describeError, ScrateError } from '../errors.js';

/**
 * A text file's lines as restic reads pattern and file lists (internal/textfile, bufio.Scanner):
 * a UTF-8 byte order mark dropped, UTF-16 with a byte order mark converted, lines split at
 * '\n' with a '\r' before it dropped, no last empty line. '-' is standard input.
 */
export function readLines(file: string, what: string): string[] {
  const text = decode(readInput(file, what));
  if (text === '') return [];
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (text.endsWith('\n')) lines.pop();
  return lines;
}

/** The bytes of a file ('-': standard input); `what` it is names it when it cannot be read. */
export function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new ScrateError(`cannot read ${what} ${file}: ${describeError(err)}`);
  }
}

function decode(data: Buffer): string {
  if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) return data.subarray(3).toString('utf8');
  if (data[0] === 0xff && data[1] === 0xfe) return new TextDecoder('utf-16le').decode(data.subarray(2));
  if (data[0] === 0xfe && data[1] === 0xff) return new TextDecoder('utf-16be').decode(data.subarray(2));
  return data.toString('utf8');
}
