import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from './main.js';
import { bashCompletion } from './reference/bash.js';
import { fishCompletion } from './reference/fish.js';
import { manPage } from './reference/man.js';
import { describeProgram } from './reference/model.js';
import { zshCompletion } from './reference/zsh.js';

/**
 * The man page and the shell completions, generated from the command definitions so that they
 * cannot drift from them. `npm run reference` rewrites the files; a test fails when the
 * committed ones are stale. `scrate completion <shell>` prints the same scripts.
 */

/** Each generated file, relative to the package root, and what it holds. */
export const REFERENCE_FILES: Record<string, (program: Command) => string> = {
  'man/scrate.1': (p) => manPage(describeProgram(p)),
  'completions/scrate.bash': (p) => bashCompletion(describeProgram(p)),
  'completions/_scrate': (p) => zshCompletion(describeProgram(p)),
  'completions/scrate.fish': (p) => fishCompletion(describeProgram(p)),
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // dist/src/cli/reference.js → package root
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const program = buildProgram();
  for (const [file, generate] of Object.entries(REFERENCE_FILES)) writeFileSync(path.join(root, file), generate(program));
}
