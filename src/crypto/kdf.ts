import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (pw: string | Buffer, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

/** How a password becomes the key that wraps a key file's secrets; stored in the key file. */
export interface KdfParams {
  name: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** 32 bytes, base64. */
  salt: string;
}

/**
 * The least a key file may cost, whatever the load or SCRATE_KDF_MS: OWASP's minimum for
 * scrypt is N = 2^17 at r = 8, p = 1, or its equivalents in less memory, N = 2^15 with p = 3
 * among them. Calibration starts here and only adds lanes.
 */
export const KDF_FLOOR = { N: 2 ** 15, r: 8 } as const;

/**
 * scrypt's memory (128·N·r bytes) at most: every command holds it while it derives the key, and
 * at 64 MiB (N = 2^16) that was the peak RSS of a whole backup of the kernel tree. Past it the
 * cost grows with p, lanes computed one after another in the same memory, as restic does.
 */
export const MAX_KDF_MEMORY = 32 * 1024 * 1024;

/**
 * The most one key file may make a command spend, as work of the floor (N·r·p against
 * N = 2^15, r = 8, p = 1): 16 of those took ~1.5 s here. A key file asking more is refused
 * unread, so no planted key file can stall a command.
 */
const MAX_KDF_WORK = 16 * KDF_FLOOR.N * KDF_FLOOR.r;
const MAX_N = 2 ** 20;

/** Why `kdf` is not acceptable, or null. Bounds every parameter a planted key file could inflate. */
export function kdfProblem(kdf: unknown, floor: { N: number; r: number } = KDF_FLOOR): string | null {
  if (typeof kdf !== 'object' || kdf === null) return 'no kdf object';
  const { name, N, r, p, salt } = kdf as Record<string, unknown>;
  if (name !== 'scrypt') return `unknown kdf ${String(name)}`;
  if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p)) return 'kdf parameters are not integers';
  const [n, rr, pp] = [N as number, r as number, p as number];
  if (n < floor.N || n > MAX_N || (n & (n - 1)) !== 0) return `scrypt N=${n} is out of bounds`;
  if (rr < floor.r || pp < 1 || 128 * n * rr > MAX_KDF_MEMORY || n * rr * pp > MAX_KDF_WORK) return `scrypt N=${n} r=${rr} p=${pp} is out of bounds`;
  if (typeof salt !== 'string' || Buffer.from(salt, 'base64').length !== 32) return 'kdf salt is not 32 bytes';
  return null;
}

export async function deriveWrapKey(password: string, kdf: KdfParams): Promise<Buffer> {
  const maxmem = 129 * kdf.N * kdf.r + 1024 * 1024;
  return scrypt(password.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem });
}

/**
 * Parameters for a new key file: the floor's N and r, and as many lanes as make one derivation
 * take about `targetMs` on this machine (at least one, within MAX_KDF_WORK).
 */
export async function calibrateKdf(targetMs: number): Promise<KdfParams> {
  const { N, r } = KDF_FLOOR;
  const salt = randomBytes(32).toString('base64');
  // One lane timed twice: the first pays for faulting in its 32 MiB.
  await deriveWrapKey('calibration', { name: 'scrypt', N, r, p: 1, salt });
  const start = performance.now();
  await deriveWrapKey('calibration', { name: 'scrypt', N, r, p: 1, salt });
  const lane = Math.max(performance.now() - start, 1);
  const p = Math.min(Math.max(1, Math.round(targetMs / lane)), MAX_KDF_WORK / (N * r));
  return { name: 'scrypt', N, r, p, salt };
}
