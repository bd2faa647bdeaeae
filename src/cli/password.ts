import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ExitCode, ScrateError } from '../errors.js';

const run = promisify(execFile);

export interface PasswordSources {
  passwordFile?: string;
  passwordCommand?: string;
}

/** One trailing newline is not part of the password: files and commands usually end with one. */
function chomp(s: string): string {
  return s.replace(/\r?\n$/, '');
}

/** From --password-file, --password-command, SCRATE_PASSWORD, or a hidden prompt when stdin is a terminal. */
export async function getPassword(src: PasswordSources, prompt: string, confirm = false): Promise<string> {
  if (src.passwordFile) return readPasswordFile(src.passwordFile);
  if (src.passwordCommand) {
    try {
      const { stdout } = await run('/bin/sh', ['-c', src.passwordCommand], { maxBuffer: 1024 * 1024 });
      return chomp(stdout);
    } catch (err) {
      throw new ScrateError(`password command failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message.split('\n')[0]}`);
    }
  }
  const env = process.env['SCRATE_PASSWORD'];
  if (env !== undefined) return env;
  if (!process.stdin.isTTY) {
    throw new ScrateError('no password given', ExitCode.fatal, 'use --password-file, --password-command or SCRATE_PASSWORD when there is no terminal');
  }
  return promptPassword(prompt, confirm);
}

export async function readPasswordFile(file: string): Promise<string> {
  try {
    return chomp(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ScrateError(`cannot read password file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** A hidden prompt on the terminal, asked twice when `confirm`. */
export async function promptPassword(prompt: string, confirm: boolean): Promise<string> {
  const first = await promptHidden(prompt);
  if (confirm) {
    const again = await promptHidden('enter the password again: ');
    if (again !== first) throw new ScrateError('the passwords do not match');
  }
  if (first === '') throw new ScrateError('empty password');
  return first;
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new ScrateError('interrupted', ExitCode.interrupted));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
