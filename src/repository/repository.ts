import { randomBytes } from 'node:crypto';
import { NotFoundError, type Backend, type ObjectType } from '../backend/backend.js';
import { CachedBackend } from '../backend/cache.js';
import { FastCDC } from '../chunker/fastcdc.js';
import { openSealedKey } from '../crypto/keybox.js';
import { generateMasterKeys, type MasterKeys } from '../crypto/masterkeys.js';
import { deriveKey, blobId, openInto, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { ExitCode, IntegrityError, ScrateError } from '../errors.js';
import { prepareBlob, type PreparedBlob } from './blob-prepare.js';
import { BlobIndex, decodeIndexFile, encodeIndexFile, type BlobLocation } from './blob-index.js';
import { decompressInto } from './compression.js';
import { checkChunkerParams, checkCompressionLevel, DEFAULT_CHUNKER, DEFAULT_COMPRESSION, DEFAULT_PACK_SIZE, FORMAT_VERSION, type RepoConfig } from './config.js';
import { addKey, DEFAULT_KDF_MS, unlockKeys } from './keys.js';
import { blobNonce, BlobType, KeyKind, readEnvelope, readPackHeader, type PackEntry } from './pack.js';
import { Packer } from './packer.js';
import { decodeObject, encodeObject, ObjectKind } from './sealed-object.js';
import { TreePackCache } from './tree-pack-cache.js';

export interface InitOptions {
  chunker?: { min: number; avg: number; max: number };
  compression?: number;
  packSize?: number;
  kdfMs?: number;
}

const TREE_KEY_INFO = 'scrate v1 tree pack';
/** Reads of one object before a verification failure counts as damage. */
const VERIFY_ATTEMPTS = 3;
/**
 * Trees are small and compress well; their level is not the user's data level. They are
 * compressed on the main thread, which a backup of many small files keeps busy: level 1 took
 * ~0.36 s of it for the kernel tree where level 3 took ~0.6 s, for 0.2% more repository bytes.
 */
const TREE_COMPRESSION = 1;
/** Two full tree packs: walks read trees in about the order they were packed. */
const TREE_PACK_CACHE_BYTES = 2 * (DEFAULT_PACK_SIZE + 1024 * 1024);

/**
 * Where decodeSealedBlob puts a blob's bytes, reused from blob to blob by a caller done with
 * each blob before it decodes the next (a restore worker): no allocation, and no garbage, per
 * blob. Without it, each blob gets buffers of its own.
 */
export class BlobScratch {
  private opened = Buffer.alloc(0);
  private plain = Buffer.alloc(0);

  forOpened(length: number): Buffer {
    if (this.opened.length < length) this.opened = Buffer.allocUnsafeSlow(length);
    return this.opened.subarray(0, length);
  }

  forPlain(length: number): Buffer {
    if (this.plain.length < length) this.plain = Buffer.allocUnsafeSlow(length);
    return this.plain.subarray(0, length);
  }
}

/**
 * Decrypts, decompresses and verifies one blob of pack `packId` with that pack's key: the part
 * of Repository.decodeBlob that needs no repository, so worker threads can run it. With
 * `scratch`, the result is a view into it, valid until its next use.
 */
export function decodeSealedBlob(packKey: Buffer, chunkIdKey: Buffer, id: Buffer, loc: Omit<BlobLocation, 'pack'>, sealed: Buffer, packId: string, scratch?: BlobScratch): Buffer {
  const what = () => `blob ${id.toString('hex').slice(0, 12)} in pack ${packId.slice(0, 12)}`;
  if (sealed.length !== loc.length || sealed.length < TAG_BYTES) throw new IntegrityError(what(), 'truncated');
  const opened = scratch?.forOpened(sealed.length - TAG_BYTES) ?? Buffer.allocUnsafe(sealed.length - TAG_BYTES);
  if (!openInto(packKey, blobNonce(loc.offset), sealed, opened)) throw new IntegrityError(what(), 'blob failed authentication');
  let plain = opened;
  if (loc.compressed) {
    plain = scratch?.forPlain(loc.rawLength) ?? Buffer.allocUnsafe(loc.rawLength);
    try {
      decompressInto(plain, opened);
    } catch {
      throw new IntegrityError(what(), 'does not decompress');
    }
  }
  if (plain.length !== loc.rawLength || !blobId(chunkIdKey, plain).equals(id)) throw new IntegrityError(what(), 'content does not match its ID');
  return plain;
}

/**
 * An open repository: its keys, config and index, and typed access to its objects.
 * Every object read is verified (name = SHA-256 of its bytes; blobs: ID = keyed hash of plaintext).
 */
export class Repository {
  readonly index = new BlobIndex();
  readonly chunker: FastCDC;
  private readonly packKeys = new Map<string, Buffer>();
  private packer: Packer | undefined;
  private readonly zeroIds = new Map<number, Buffer>();
  private readonly treePacks = new TreePackCache(TREE_PACK_CACHE_BYTES);

  private constructor(
    readonly backend: Backend,
    readonly keys: MasterKeys,
    readonly keyId: string,
    readonly config: RepoConfig,
  ) {
    // TODO(format v3): the writer's own chunker key
    this.chunker = new FastCDC({ ...config.chunker, key: deriveKey(keys.chunkIdKey, Buffer.alloc(32), 'scrate v3 chunker') });
  }

  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    if (await backend.exists()) throw new ScrateError(`repository ${backend.location} already exists`);
    const chunker = opts.chunker ?? DEFAULT_CHUNKER;
    checkChunkerParams(chunker);
    const compression = opts.compression ?? DEFAULT_COMPRESSION;
    checkCompressionLevel(compression);
    const config: RepoConfig = { version: FORMAT_VERSION, id: randomBytes(32).toString('hex'), chunker, compression, packSize: opts.packSize ?? DEFAULT_PACK_SIZE };
    const keys = generateMasterKeys();
    await backend.create();
    const keyId = await addKey(backend, keys, password, opts.kdfMs ?? DEFAULT_KDF_MS);
    // The config is written last: until it exists, the directory is not a repository.
    await backend.save('config', 'config', encodeObject(keys.metadataKey, ObjectKind.config, Buffer.from(JSON.stringify(config))));
    return new Repository(backend, keys, keyId, config);
  }

  /**
   * `cacheRoot`: keep metadata of this repository in a local cache below this directory. A cache
   * that cannot be set up (no home, a read-only one) only costs downloads: the repository opens without it.
   */
  static async open(backend: Backend, password: string, opts: { cacheRoot?: string } = {}): Promise<Repository> {
    if (!(await backend.exists())) throw new ScrateError(`repository ${backend.location} does not exist`, ExitCode.noRepository, 'create it with `scrate init`');
    const { keyId, keys } = await unlockKeys(backend, password);
    const stored = await backend.load('config', 'config');
    const config = JSON.parse(decodeObject(keys.metadataKey, ObjectKind.config, stored, 'config').toString('utf8')) as RepoConfig;
    if (config.version !== FORMAT_VERSION) {
      const hint = config.version < FORMAT_VERSION ? 'it was made by a development build of scrate that named blobs differently; back up into a new repository' : 'a newer scrate made it';
      throw new ScrateError(`repository format version ${config.version} is not supported by this scrate (it reads version ${FORMAT_VERSION})`, ExitCode.fatal, hint);
    }
    const store = opts.cacheRoot ? await CachedBackend.open(backend, opts.cacheRoot, config.id).catch(() => backend) : backend;
    return new Repository(store, keys, keyId, config);
  }

  /** The keyed hash that names a blob. */
  blobId(data: Uint8Array): Buffer {
    return blobId(this.keys.chunkIdKey, data);
  }

  /** The ID of `length` zero bytes: the blob the archiver stores for every empty region of that size. */
  zeroBlobId(length: number): Buffer {
    let id = this.zeroIds.get(length);
    if (!id) this.zeroIds.set(length, (id = this.blobId(Buffer.alloc(length))));
    return id;
  }

  // --- whole objects (snapshots, index, locks) ---

  async saveObject(type: ObjectType, kind: ObjectKind, payload: Buffer | readonly Buffer[]): Promise<string> {
    const bytes = encodeObject(this.keys.metadataKey, kind, payload);
    const name = sha256(bytes).toString('hex');
    await this.backend.save(type, name, bytes, { sha256: name });
    return name;
  }

  /** Loads, verifies and decrypts an object named by its hash. */
  async loadObject(type: ObjectType, kind: ObjectKind, name: string): Promise<Buffer> {
    const what = `${type}/${name.slice(0, 12)}`;
    return this.loadVerified(async () => {
      const bytes = await this.backend.load(type, name);
      if (sha256(bytes).toString('hex') !== name) throw new IntegrityError(what, 'content does not match its name');
      return decodeObject(this.keys.metadataKey, kind, bytes, what);
    });
  }

  /**
   * Runs a load-and-verify step again when verification fails: a truncated or garbled transfer
   * is not damage in the repository. Only a failure that repeats is reported.
   */
  private async loadVerified<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof IntegrityError) || n >= VERIFY_ATTEMPTS) throw err;
      }
    }
  }

  async listNames(type: ObjectType): Promise<string[]> {
    const names: string[] = [];
    for await (const { name } of this.backend.list(type)) names.push(name);
    return names;
  }

  // --- index ---

  async loadIndex(): Promise<void> {
    for (const name of await this.listNames('index')) {
      const file = decodeIndexFile(await this.loadObject('index', ObjectKind.index, name));
      for (const { pack, entries } of file.packs) this.index.addPack(pack, entries);
    }
  }

  /** Saves an index object of these packs' records (see encodePackRecord). */
  async saveIndexFile(records: readonly Buffer[]): Promise<string> {
    return this.saveObject('index', ObjectKind.index, encodeIndexFile(records));
  }

  // --- blobs ---

  /** The key of a pack, from its envelope. Data packs need the data private key. */
  packKey(packId: string, envelope: Buffer): Buffer {
    let key = this.packKeys.get(packId);
    if (key) return key;
    if (envelope[0] === KeyKind.derived) {
      key = deriveKey(this.keys.metadataKey, envelope.subarray(1), TREE_KEY_INFO);
    } else if (envelope[0] === KeyKind.sealed) {
      if (!this.keys.dataPrivateKey) throw new ScrateError('this key is write-only: it cannot read file contents');
      const opened = openSealedKey(envelope.subarray(1), { publicKey: this.keys.dataPublicKey, privateKey: this.keys.dataPrivateKey });
      if (!opened) throw new IntegrityError(`pack ${packId.slice(0, 12)}`, 'pack key failed authentication');
      key = opened;
    } else {
      throw new IntegrityError(`pack ${packId.slice(0, 12)}`, `unknown key kind ${envelope[0]}`);
    }
    if (this.packKeys.size > 4096) this.packKeys.clear();
    this.packKeys.set(packId, key);
    return key;
  }

  newTreePackKey(): { key: Buffer; envelope: Buffer } {
    const salt = randomBytes(32);
    return { key: deriveKey(this.keys.metadataKey, salt, TREE_KEY_INFO), envelope: Buffer.concat([Buffer.from([KeyKind.derived]), salt]) };
  }

  /** A whole pack, verified against its name, with the key envelope and its own header's entries. */
  async loadPack(packId: string): Promise<{ bytes: Buffer; envelope: Buffer; entries: PackEntry[] }> {
    const what = `pack ${packId.slice(0, 12)}`;
    return this.loadVerified(async () => {
      const bytes = await this.backend.load('data', packId);
      if (sha256(bytes).toString('hex') !== packId) throw new IntegrityError(what, 'content does not match its name');
      const envelope = readEnvelope(bytes, what);
      return { bytes, envelope, entries: readPackHeader(bytes, this.packKey(packId, envelope), what) };
    });
  }

  /** Decrypts, decompresses and verifies one blob already read from its pack. */
  decodeBlob(id: Buffer, loc: BlobLocation, sealed: Buffer): Buffer {
    const packId = loc.pack.id.toString('hex');
    return decodeSealedBlob(this.packKey(packId, loc.pack.envelope), this.keys.chunkIdKey, id, loc, sealed, packId);
  }

  async loadBlob(id: Buffer): Promise<Buffer> {
    const what = `blob ${id.toString('hex').slice(0, 12)}`;
    const loc = this.index.find(id);
    if (!loc) throw new IntegrityError(what, 'not in the index (missing pack or index)');
    const packId = loc.pack.id.toString('hex');
    try {
      return await this.loadVerified(async () => {
        const sealed = await this.readSealed(packId, loc);
        try {
          return this.decodeBlob(id, loc, sealed);
        } catch (err) {
          // The next attempt reads the pack again rather than the same bytes from memory.
          if (loc.pack.type === BlobType.tree) this.treePacks.drop(packId);
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof NotFoundError) throw new IntegrityError(what, `its pack ${packId.slice(0, 12)} is missing`);
      throw err;
    }
  }

  /** A blob's sealed bytes: a ranged read, or for trees a slice of their whole pack, read once. */
  private async readSealed(packId: string, loc: BlobLocation): Promise<Buffer> {
    const range = { offset: loc.offset, length: loc.length };
    if (loc.pack.type !== BlobType.tree) return this.backend.load('data', packId, { range });
    const pack = await this.treePacks.get(packId, () => this.backend.load('data', packId, { metadata: true }));
    return pack.subarray(range.offset, range.offset + range.length);
  }

  /** The packer that batches new blobs into packs; created on first write. */
  get writer(): Packer {
    this.packer ??= new Packer(this);
    return this.packer;
  }

  /**
   * Stores a blob unless the repository already has it; returns its ID and whether it was new.
   * Hashes and compresses on this thread: for trees and other small blobs (the archiver
   * packs file data on worker threads).
   */
  async saveBlob(type: BlobType, data: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const blob = this.prepare(type, data);
    return { id: blob.id, added: await this.writer.add(type, blob) };
  }

  /** Hashes and compresses a blob on this thread, trees at their own level. */
  prepare(type: BlobType, data: Buffer): PreparedBlob {
    return prepareBlob(this.keys.chunkIdKey, data, type === BlobType.tree ? TREE_COMPRESSION : this.config.compression);
  }

  /** Writes every pending pack and the index entries for them. Must precede saving a snapshot. */
  async flush(): Promise<void> {
    await this.packer?.flush();
  }
}
