import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describeError, ExitCode, ScrateError } from '../errors.js';

const run = promisify(execFile);

export interface PasswordSources {
  passwordFile?: string;
  passwordCommand?: string;
  /** The repository's password is empty: nothing is asked for, and a password given besides is an error. */
  insecureNoPassword?: boolean;
}

/**
 * How the user gives one repository's password: the options and the variable named in messages,
 * and the variable's value. -r's are below; --from-repo's are in from-repo.ts.
 */
export interface PasswordNames {
  file: string;
  command: string;
  insecure: string;
  variable: string;
  /** Read where it is needed, not before: a literal name (the man page test finds it). */
  fromEnv(): string | undefined;
}

export const REPO_PASSWORD: PasswordNames = {
  file: '--password-file',
  command: '--password-command',
  insecure: '--insecure-no-password',
  variable: 'SCRATE_PASSWORD',
  fromEnv: () => process.env['SCRATE_PASSWORD'],
};

/** One trailing newline is not part of the password: files and commands usually end with one. */
function chomp(s: string): string {
  return s.replace(/\r?\n$/, '');
}

/** A lone line end counts as empty, from wherever it came. */
function isEmpty(password: string): boolean {
  return chomp(password) === '';
}

/**
 * An empty password protects nothing, and from a file or a variable it is usually a mistake
 * (a file not yet written, a variable set from an unset one): refused unless the user said so.
 */
function nonEmpty(password: string, from: string, allowEmpty: boolean | undefined, insecure: string): string {
  if (!allowEmpty && isEmpty(password)) {
    throw new ScrateError(`empty password from ${from}`, ExitCode.fatal, `a repository without a password needs ${insecure}`);
  }
  return password;
}

/** From --password-file, --password-command, SCRATE_PASSWORD (or `names`' equivalents), or a hidden prompt when stdin is a terminal. */
export async function getPassword(src: PasswordSources, prompt: string, confirm = false, names = REPO_PASSWORD): Promise<string> {
  const given = await givenPassword(src, names);
  if (src.insecureNoPassword) {
    // As restic: an empty password given as well agrees with the option; any other contradicts it.
    if (given && !isEmpty(given.password)) throw new ScrateError(`${names.insecure} contradicts the password from ${given.from}`);
    return '';
  }
  if (given) return nonEmpty(given.password, given.from, false, names.insecure);
  if (!process.stdin.isTTY) {
    throw new ScrateError('no password given', ExitCode.fatal, `use ${names.file}, ${names.command} or ${names.variable} when there is no terminal`);
  }
  return nonEmpty(await promptPassword(prompt, confirm), 'the prompt', false, names.insecure);
}

/** The password of the first source given, and where it came from. */
async function givenPassword(src: PasswordSources, names: PasswordNames): Promise<{ password: string; from: string } | undefined> {
  if (src.passwordFile) return { password: await readPasswordFile(src.passwordFile), from: `password file ${src.passwordFile}` };
  if (src.passwordCommand) return { password: await runPasswordCommand(src.passwordCommand), from: `the password command (${names.command})` };
  const env = names.fromEnv();
  return env === undefined ? undefined : { password: env, from: names.variable };
}

async function runPasswordCommand(command: string): Promise<string> {
  try {
    const { stdout } = await run('/bin/sh', ['-c', command], { maxBuffer: 1024 * 1024 });
    return chomp(stdout);
  } catch (err) {
    throw new ScrateError(`password command failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message.split('\n')[0]}`);
  }
}

async function readPasswordFile(file: string): Promise<string> {
  try {
    return chomp(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ScrateError(`cannot read password file ${file}: ${describeError(err)}`);
  }
}

/**
 * The password for a new key: from --new-password-file, else a confirmed prompt. Never from
 * SCRATE_PASSWORD or the other sources of the current password. Empty only with
 * --insecure-no-password.
 */
export async function getNewPassword(newPasswordFile: string | undefined, allowEmpty: boolean | undefined): Promise<string> {
  if (newPasswordFile) return nonEmpty(await readPasswordFile(newPasswordFile), `--new-password-file ${newPasswordFile}`, allowEmpty, REPO_PASSWORD.insecure);
  if (!process.stdin.isTTY) throw new ScrateError('no new password given', ExitCode.fatal, 'use --new-password-file when there is no terminal');
  return nonEmpty(await promptPassword('enter the new password: ', true), 'the prompt', allowEmpty, REPO_PASSWORD.insecure);
}

/** A hidden prompt on the terminal, asked twice when `confirm`. */
async function promptPassword(prompt: string, confirm: boolean): Promise<string> {
  const first = await promptHidden(prompt);
  if (confirm) {
    const again = await promptHidden('enter the password again: ');
    if (again !== first) throw new ScrateError('the passwords do not match');
  }
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
