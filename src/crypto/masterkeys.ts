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

const MAX_KDF_MEMORY = 256 * 1024 * 1024;

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
  const p = 1;
  const salt = randomBytes(32).toString('base64');
  let N = 1 << 10;
  const start = performance.now();
  await derive('calibration', { name: 'scrypt', N, r, p, salt });
  const elapsed = Math.max(performance.now() - start, 0.05);
  while (N * 2 * 128 * r <= MAX_KDF_MEMORY && elapsed * ((N * 2) / 1024) <= targetMs) N *= 2;
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
