import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../src/cli/main.js';
import { bashCompletion, manPage, REFERENCE_FILES } from '../src/cli/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the committed man page and completion match the commands (npm run reference)', () => {
  const program = buildProgram();
  assert.equal(fs.readFileSync(path.join(root, REFERENCE_FILES.man), 'utf8'), manPage(program));
  assert.equal(fs.readFileSync(path.join(root, REFERENCE_FILES.completion), 'utf8'), bashCompletion(program));
});

test('bash completes commands and their options', () => {
  const complete = (...words: string[]) =>
    execFileSync('bash', ['-c', `source "${path.join(root, REFERENCE_FILES.completion)}"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _scrate; echo "\${COMPREPLY[@]}"`]).toString().trim().split(/\s+/);
  assert.deepEqual(complete('scrate', 'back'), ['backup']);
  assert.ok(complete('scrate', '-r', '/srv/repo', 'restore', '--ver').includes('--verify'));
  assert.ok(complete('scrate', 'backup', '--stdin-f').includes('--stdin-filename'));
});
