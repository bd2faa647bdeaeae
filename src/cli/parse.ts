import { InvalidArgumentError } from 'commander';
import { parseTagList } from '../snapshot/tags.js';

export function intOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('not a whole number');
  return n;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A repeatable --tag or --keep-tag: restic's tag lists, `a,b` being one list of two tags. */
export function collectTagList(value: string, previous: string[][] = []): string[][] {
  return [...previous, parseTagList(value)];
}

/** Test suites lower the key-derivation time through SCRATE_KDF_MS; users keep the default. */
export function kdfMs(): number | undefined {
  const v = process.env['SCRATE_KDF_MS'];
  return v ? Number(v) : undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size as restic writes them: bytes, or with a k/m/g/t suffix (powers of 1024, either case). */
export function sizeOption(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('not a size (e.g. 500M, 2G)');
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as 30m, 1h or 2d, in milliseconds. */
export function durationOption(value: string): number {
  const m = /^(\d+)\s*([smhd])$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('not a duration (e.g. 30m, 1h, 2d)');
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

/** An option's parser from an engine module's parse function, whose errors commander reports as the option's. */
export function parsedBy<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
