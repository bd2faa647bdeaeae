import { InvalidArgumentError } from 'commander';

export function intOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('not a whole number');
  return n;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Test suites lower the key-derivation time through SCRATE_KDF_MS; users keep the default. */
export function kdfMs(): number | undefined {
  const v = process.env['SCRATE_KDF_MS'];
  return v ? Number(v) : undefined;
}
