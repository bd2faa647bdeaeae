import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { promisify } from 'node:util';
import { generateX25519 } from './keybox.js';
import { open, randomKey, seal, NONCE_BYTES } from './primitives.js';

const scrypt = promisify(scryptCb) as (pw: string | Buffer, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

/**
 * The repository's secrets. Each has one job so that a key file can carry a subset:
 * a write-only key omits the data private key and can add packs it cannot read.
 */
export interface MasterKeys {
  /** Key of the keyed BLAKE3 that names blobs: IDs reveal nothing about content without it. */
  chunkIdKey: Buffer;
  /** Seeds the FastCDC gear table, so chunk boundaries do not leak content fingerprints. */
  gearSeed: bigint;
  /** Encrypts everything that is not file content: config, snapshots, index, trees, locks. */
  metadataKey: Buffer;
  /** Data packs' keys are sealed to this X25519 public key. */
  dataPublicKey: Buffer;
  /** Absent in a write-only key. */
  dataPrivateKey?: Buffer;
}

export function generateMasterKeys(): MasterKeys {
  const pair = generateX25519();
  return {
    chunkIdKey: randomKey(),
    gearSeed: randomBytes(8).readBigUInt64BE(),
    metadataKey: randomKey(),
    dataPublicKey: pair.publicKey,
    dataPrivateKey: pair.privateKey,
  };
}

interface MasterKeysJson {
  chunkIdKey: string;
  gearSeed: string;
  metadataKey: string;
  dataPublicKey: string;
  dataPrivateKey?: string;
}

function toJson(k: MasterKeys): MasterKeysJson {
  const json: MasterKeysJson = {
    chunkIdKey: k.chunkIdKey.toString('base64'),
    gearSeed: k.gearSeed.toString(16).padStart(16, '0'),
    metadataKey: k.metadataKey.toString('base64'),
    dataPublicKey: k.dataPublicKey.toString('base64'),
  };
  if (k.dataPrivateKey) json.dataPrivateKey = k.dataPrivateKey.toString('base64');
  return json;
}

function fromJson(j: MasterKeysJson): MasterKeys {
  return {
    chunkIdKey: Buffer.from(j.chunkIdKey, 'base64'),
    gearSeed: BigInt('0x' + j.gearSeed),
    metadataKey: Buffer.from(j.metadataKey, 'base64'),
    dataPublicKey: Buffer.from(j.dataPublicKey, 'base64'),
    dataPrivateKey: j.dataPrivateKey === undefined ? undefined : Buffer.from(j.dataPrivateKey, 'base64'),
  };
}

export interface KdfParams {
  name: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
}

/** The stored form of a key file (keys/<sha256>): public metadata plus the wrapped master keys. */
export interface KeyFile {
  version: 1;
  created: string;
  hostname: string;
  username: string;
  /** 'full', or 'write-only' when the data private key is absent. */
  access: 'full' | 'write-only';
  kdf: KdfParams;
  nonce: string;
  data: string;
}

/**
 * scrypt's memory (128·N·r bytes) at most: each command holds it while it derives the key, and
 * at 64 MiB (N = 2^16, what 500 ms gave here) that was the peak RSS of a whole backup of the
 * kernel tree. Past it the cost grows with p, computed lane after lane in the same memory, as
 * restic does (N = 2^15, r = 8, p = 5 on this machine) and as OWASP's equivalents of N = 2^17
 * allow (N = 2^15, r = 8, p = 3).
 */
export const MAX_KDF_MEMORY = 32 * 1024 * 1024;

async function derive(password: string, kdf: KdfParams): Promise<Buffer> {
  const maxmem = 129 * kdf.N * kdf.r * kdf.p + 1024 * 1024;
  return scrypt(password.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem });
}

/**
 * Picks the scrypt cost so one derivation takes about `targetMs` on this machine,
 * within a memory ceiling; the parameters are stored in the key file.
 */
export async function calibrateKdf(targetMs: number): Promise<KdfParams> {
  const r = 8;
  const salt = randomBytes(32).toString('base64');
  // Timed at 8 MiB: one derivation at 1 MiB (~1 ms) was too short to time, and p came out 1 to 3.
  const timedN = 1 << 13;
  const start = performance.now();
  await derive('calibration', { name: 'scrypt', N: timedN, r, p: 1, salt });
  const elapsed = Math.max(performance.now() - start, 0.05);
  const ms = (n: number, p: number) => elapsed * (n / timedN) * p;
  let N = 1 << 10;
  const fits = (n: number) => n * 128 * r <= MAX_KDF_MEMORY;
  while (fits(N * 2) && ms(N * 2, 1) <= targetMs) N *= 2;
  let p = 1;
  if (!fits(N * 2)) while (ms(N, p + 1) <= targetMs) p++;
  return { name: 'scrypt', N, r, p, salt };
}

export async function createKeyFile(keys: MasterKeys, password: string, kdfTargetMs: number, who: { hostname: string; username: string }): Promise<KeyFile> {
  const kdf = await calibrateKdf(kdfTargetMs);
  const wrapKey = await derive(password, kdf);
  const nonce = randomBytes(NONCE_BYTES);
  const data = seal(wrapKey, nonce, Buffer.from(JSON.stringify(toJson(keys))));
  return {
    version: 1,
    created: new Date().toISOString(),
    hostname: who.hostname,
    username: who.username,
    access: keys.dataPrivateKey ? 'full' : 'write-only',
    kdf,
    nonce: nonce.toString('base64'),
    data: data.toString('base64'),
  };
}

/** Returns the master keys, or null if the password does not open this key file. */
export async function openKeyFile(file: KeyFile, password: string): Promise<MasterKeys | null> {
  const wrapKey = await derive(password, file.kdf);
  const plain = open(wrapKey, Buffer.from(file.nonce, 'base64'), Buffer.from(file.data, 'base64'));
  return plain ? fromJson(JSON.parse(plain.toString('utf8')) as MasterKeysJson) : null;
}
