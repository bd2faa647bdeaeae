import { randomBytes } from 'node:crypto';
import { NotFoundError, ObjectTooLargeError, type Backend, type ObjectType } from '../backend/backend.js';
import { CachedBackend } from '../backend/cache.js';
import { FastCDC } from '../chunker/fastcdc.js';
import { fullKeys, newMasterSecret, type AccessKeys, type KeyRoots } from '../crypto/access.js';
import { blobId, openInto, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { ExitCode, IntegrityError, RefusedError, ScrateError } from '../errors.js';
import { BlobIndex, type BlobLocation, type PackInfo } from './blob-index.js';
import { decodeIndexFile, encodeIndexFile, type IndexedPack } from './index-file.js';
import { prepareBlob, type PreparedBlob } from './blob-prepare.js';
import { decompressInto } from './compression.js';
import { checkChunkerParams, checkCompressionLevel, checkPackSize, decodeConfig, DEFAULT_CHUNKER, DEFAULT_COMPRESSION, DEFAULT_PACK_SIZE, encodeConfig, FORMAT_VERSION, isJsonConfig, readConfigAdmin, type RepoConfig } from './config.js';
import { addKey, DEFAULT_KDF_MS, unlockKeys } from './keys.js';
import { MAX_BLOB_BYTES, MAX_OBJECT_BYTES, MAX_TREE_BYTES, maxPackBytes } from './limits.js';
import { blobNonce, BlobType, packKeyOf, packSize, readEnvelope, readPackHeader, type PackEntry, type PackHeader } from './pack.js';
import { Packer } from './packer.js';
import { decodeObject, encodeObject, ObjectKind, type OpenedObject } from './sealed-object.js';
import { TreePackCache } from './tree-pack-cache.js';
import { loadMarks } from './marks.js';
import { pinPath, readPin, writePin } from './pins.js';
import { openV2 } from './v2.js';
import { WriterRecords } from './writer-records.js';
import { Writers, type Writer, type WriterRecord } from './writers.js';
import { inOrder } from '../util/in-order.js';

export interface InitOptions {
  chunker?: { min: number; avg: number; max: number };
  compression?: number;
  packSize?: number;
  kdfMs?: number;
  /** Blob-ID and chunker roots of another repository (see Repository.chunking), instead of its own. */
  roots?: KeyRoots;
  /** See OpenOptions: the new repository is remembered there. */
  stateRoot?: string;
}

export interface OpenOptions {
  /** Keep metadata of this repository in a local cache below this directory (remote repositories). */
  cacheRoot?: string;
  /**
   * Where this machine keeps what it knows of repositories (see pins.ts and WriterRecords): what
   * a repository's ID and admin key are, which key opened it last, and a write-only key's record
   * of what it stored. None: nothing is remembered.
   */
  stateRoot?: string;
  /** Something skipped on the way (a malformed key file, a forged object): said, not fatal. */
  onWarning?: (message: string) => void;
}

/** Reads of one object before a verification failure counts as damage. */
const VERIFY_ATTEMPTS = 3;

/** Index files read ahead while the index loads: each may hold 100,000 blobs decoded, so only a few. */
const INDEX_FILES_AHEAD = 4;

/**
 * Trees are small and compress well; their level is not the user's data level. They are
 * compressed on the main thread, which a backup of many small files keeps busy: level 1 took
 * ~0.36 s of it for the kernel tree where level 3 took ~0.6 s, for 0.2% more repository bytes.
 */
const TREE_COMPRESSION = 1;
/** Two full tree packs: walks read trees in about the order they were packed. */
const TREE_PACK_CACHE_BYTES = 2 * (DEFAULT_PACK_SIZE + 1024 * 1024);

/**
 * How the repository's format opens objects and packs: version 3 here, version 2 (read-only)
 * in v2.ts. Everything else is the same for both.
 */
export interface Codec {
  readonly version: 2 | 3;
  /** Decrypts an object; the caller checks its writer's signature. */
  openObject(kind: ObjectKind, stored: Buffer, what: string): OpenedObject;
  /** A pack's key from its envelope, or IntegrityError. */
  packKey(envelope: Buffer, what: string): Buffer;
  readPackHeader(pack: Buffer, key: Buffer, what: string): PackHeader;
  readEnvelope(pack: Buffer, what: string): Buffer;
  /** The size of a pack whose blobs end at `blobsEnd` and whose header lists `count` of them. */
  packSize(blobsEnd: number, count: number): number;
  decodeIndex(body: Buffer, what: string): IndexedPack[];
}

function v3Codec(keys: AccessKeys): Codec {
  const seal = keys.read?.seal;
  const readable = () => {
    if (!seal) throw new ScrateError(WRITE_ONLY);
    return seal;
  };
  return {
    version: 3,
    openObject: (kind, stored, what) => decodeObject(kind, stored, readable(), what),
    packKey: (envelope, what) => {
      const key = packKeyOf(envelope, readable());
      if (!key) throw new IntegrityError(what, 'bad key envelope');
      return key;
    },
    readPackHeader,
    readEnvelope,
    packSize,
    decodeIndex: decodeIndexFile,
  };
}

/**
 * A full key names blobs with the roots the config says the repository uses: imported ones
 * exactly when the signed config says so. Otherwise it would write blobs under IDs no other key
 * of the repository computes (or, a key without the roots, read everything as damaged).
 */
function checkRoots(config: RepoConfig, keys: AccessKeys, keyId: string): void {
  if (!keys.read || keys.read.rootsImported === (config.roots === 'imported')) return;
  const detail = keys.read.rootsImported
    ? 'carries imported blob-ID and chunker roots, but the config says this repository has its own'
    : 'lacks the blob-ID and chunker roots this repository took from another (init --from-repo)';
  throw new IntegrityError(`key ${keyId.slice(0, 8)}`, detail);
}

/** Said whenever a write-only key is asked to read. */
export const WRITE_ONLY = 'this key is write-only: it can add backups but not read any (use a full key)';

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
 * Decrypts, decompresses and verifies one blob of pack `packId` with that pack's key, against
 * the blob-ID key of the pack's writer: the part of reading a blob that needs no repository, so
 * worker threads can run it. With `scratch`, the result is a view into it, valid until its next use.
 */
export function decodeSealedBlob(packKey: Buffer, chunkIdKey: Buffer, id: Buffer, loc: Omit<BlobLocation, 'pack'>, sealed: Buffer, packId: string, scratch?: BlobScratch): Buffer {
  return unsealBlob(packKey, chunkIdKey, id, loc, sealed, packId, scratch).plain;
}

/** decodeSealedBlob, also giving the blob as stored (compressed or not): what a repack seals anew. */
export function unsealBlob(packKey: Buffer, chunkIdKey: Buffer, id: Buffer, loc: Omit<BlobLocation, 'pack'>, sealed: Buffer, packId: string, scratch?: BlobScratch): { stored: Buffer; plain: Buffer } {
  const what = () => `blob ${id.toString('hex').slice(0, 12)} in pack ${packId.slice(0, 12)}`;
  if (loc.rawLength > MAX_BLOB_BYTES) throw new IntegrityError(what(), 'larger than any blob can be');
  if (sealed.length !== loc.length || sealed.length < TAG_BYTES) throw new IntegrityError(what(), 'truncated');
  const stored = scratch?.forOpened(sealed.length - TAG_BYTES) ?? Buffer.allocUnsafe(sealed.length - TAG_BYTES);
  if (!openInto(packKey, blobNonce(loc.offset), sealed, stored)) throw new IntegrityError(what(), 'blob failed authentication');
  let plain = stored;
  if (loc.compressed) {
    plain = scratch?.forPlain(loc.rawLength) ?? Buffer.allocUnsafe(loc.rawLength);
    try {
      decompressInto(plain, stored);
    } catch {
      throw new IntegrityError(what(), 'does not decompress');
    }
  }
  if (plain.length !== loc.rawLength || !blobId(chunkIdKey, plain).equals(id)) throw new IntegrityError(what(), 'content does not match its ID');
  return { stored, plain };
}

/** An object as stored, named by its SHA-256. */
export interface SealedObject {
  name: string;
  bytes: Buffer;
}

/** A loaded object and the writer whose signature it carries. */
export interface LoadedObject {
  payload: Buffer;
  writer: Writer;
}

/**
 * An open repository: its keys, config, writers and index, and typed access to its objects.
 * Every object read is verified (name = SHA-256 of its bytes; objects: a registered writer's
 * signature; blobs: ID = the writer's keyed hash of the plaintext).
 */
export class Repository {
  readonly index = new BlobIndex();
  /** The index files loadIndex read (a full key's): exactly what a prune may replace. */
  private loadedIndexFiles: string[] | undefined;
  private readonly packKeys = new Map<string, Buffer>();
  private packerInstance: Packer | undefined;
  private chunkerInstance: FastCDC | undefined;
  private readonly treePacks = new TreePackCache(TREE_PACK_CACHE_BYTES);

  private constructor(
    readonly backend: Backend,
    /** The key that opened it; absent for a format version 2 repository (read-only). */
    private readonly accessKeys: AccessKeys | undefined,
    readonly keyId: string,
    readonly config: Omit<RepoConfig, 'version' | 'sealPublic' | 'adminPublic'> & { version: 2 | 3 },
    readonly writers: Writers,
    readonly codec: Codec,
    /** A write-only key's record of what it stored (none with --no-cache). */
    readonly record?: WriterRecords,
  ) {}

  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    if (await backend.exists()) throw new ScrateError(`repository ${backend.location} already exists`);
    const chunker = opts.chunker ?? DEFAULT_CHUNKER;
    checkChunkerParams(chunker);
    const compression = opts.compression ?? DEFAULT_COMPRESSION;
    checkCompressionLevel(compression);
    const packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
    checkPackSize(packSize);
    const id = randomBytes(32).toString('hex');
    const keys = fullKeys(newMasterSecret(), id, opts.roots);
    const config: RepoConfig = {
      version: FORMAT_VERSION,
      id,
      chunker,
      compression,
      packSize,
      sealPublic: keys.sealPublic.toString('base64'),
      adminPublic: keys.adminPublic.toString('base64'),
      ...(opts.roots && { roots: 'imported' as const }),
    };
    await backend.create();
    const keyId = await addKey(backend, keys, password, opts.kdfMs ?? DEFAULT_KDF_MS, keys.writer.signing);
    // The config is written last, and only if none exists: until it exists, the directory is
    // not a repository, and once it does, no init replaces it.
    await backend.save('config', 'config', encodeConfig(config, keys.writer.signing), { create: true });
    // A repository made again where another was: this machine knows it is new.
    if (opts.stateRoot) await writePin(opts.stateRoot, backend.location, { id, admin: config.adminPublic, key: keyId });
    return new Repository(backend, keys, keyId, config, Writers.of(keys), v3Codec(keys));
  }

  /**
   * Opens with the key file `password` opens. A full key then loads the writer registry; a
   * write-only key its record of what it stored (below `stateRoot`). A format version 2
   * repository opens read-only.
   */
  static async open(backend: Backend, password: string, opts: OpenOptions = {}): Promise<Repository> {
    if (!(await backend.exists())) throw new ScrateError(`repository ${backend.location} does not exist`, ExitCode.noRepository, 'create it with `scrate init`');
    const stored = await backend.load('config', 'config', { limit: MAX_OBJECT_BYTES.config }).catch(tooLarge('config'));
    const warn = (m: string) => opts.onWarning?.(m);
    const skipped = (id: string, why: string) => warn(`key ${id.slice(0, 8)} skipped: ${why}`);
    const { stateRoot } = opts;
    const pin = stateRoot ? await readPin(stateRoot, backend.location) : null;
    const replaced = (detail: string) =>
      new ScrateError(`config: ${detail} than when this machine last opened the repository: replaced?`, ExitCode.fatal, `if it was recreated on purpose, remove ${stateRoot && pinPath(stateRoot, backend.location)}`);
    if (!isJsonConfig(stored)) {
      if (pin) throw replaced('of another format version');
      const v2 = await openV2(backend, password, stored, skipped);
      const store = await cached(backend, opts, v2.config.id);
      return new Repository(store, undefined, v2.keyId, v2.config, v2.writers, v2.codec);
    }
    const admin = readConfigAdmin(stored);
    if (pin && pin.admin !== admin.toString('base64')) throw replaced('signed by another admin key');
    const { keyId, keys } = await unlockKeys(backend, password, admin, skipped, pin?.key);
    const config = decodeConfig(stored, keys.adminPublic);
    if (config.id !== keys.repository) throw new IntegrityError('config', `belongs to repository ${config.id.slice(0, 10)}, the key to ${keys.repository.slice(0, 10)}`);
    checkRoots(config, keys, keyId);
    if (stateRoot && (pin?.key !== keyId || pin.id !== config.id)) await writePin(stateRoot, backend.location, { id: config.id, admin: config.adminPublic, key: keyId });
    const store = await cached(backend, opts, config.id);
    const writers = Writers.of(keys);
    const record = keys.access === 'write-only' && stateRoot ? await WriterRecords.open(stateRoot, config.id, keys.writer) : undefined;
    const repo = new Repository(store, keys, keyId, config, writers, v3Codec(keys), record);
    if (keys.read) await repo.loadWriters(warn);
    return repo;
  }

  /** The key's secrets, for writing: a version 2 repository takes no writes. */
  get keys(): AccessKeys {
    if (!this.accessKeys) throw new ScrateError('this repository has format version 2, which scrate only reads', ExitCode.fatal, 'back up into a new repository (`scrate init`)');
    return this.accessKeys;
  }

  /**
   * What `init --from-repo --copy-chunker-params` takes from this repository: the chunk sizes
   * and both key roots, which only a full key holds.
   */
  get chunking(): { chunker: RepoConfig['chunker']; roots: KeyRoots } {
    const read = this.keys.read;
    if (!read) throw new ScrateError(`the key of ${this.backend.location} is write-only: copying its chunker parameters needs a full key`);
    return { chunker: { ...this.config.chunker }, roots: { idRoot: read.idRoot, chunkerRoot: read.chunkerRoot } };
  }

  /** Whether this key reads what the repository holds (a write-only key does not). */
  get canRead(): boolean {
    return this.accessKeys === undefined || this.accessKeys.read !== undefined;
  }

  /** Fails with a clear message unless this key reads the repository. */
  requireRead(): void {
    if (!this.canRead) throw new ScrateError(WRITE_ONLY);
  }

  /** The chunker of this key's writer: its cut points depend on the writer's own key. */
  get chunker(): FastCDC {
    this.chunkerInstance ??= new FastCDC({ ...this.config.chunker, key: this.keys.writer.chunkerKey });
    return this.chunkerInstance;
  }

  /** The writer this key writes as. */
  get self(): Writer {
    return this.writers.self;
  }

  private async loadWriters(warn: (m: string) => void): Promise<void> {
    const records: WriterRecord[] = [];
    for (const name of await this.listNames('writers')) {
      try {
        const { payload, writer } = await this.loadObject('writers', ObjectKind.writer, name);
        if (writer.access !== 'full') throw new IntegrityError(`writer record ${name.slice(0, 8)}`, 'not signed by the admin key');
        records.push(JSON.parse(payload.toString('utf8')) as WriterRecord);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        warn(`${err.message}; skipped`);
      }
    }
    this.writers.load(records, warn);
  }

  // --- whole objects (snapshots, index, writer records) ---

  async saveObject(type: ObjectType, kind: ObjectKind, payload: Buffer | readonly Buffer[]): Promise<string> {
    const sealed = this.sealObject(kind, payload);
    await this.storeObject(type, sealed);
    return sealed.name;
  }

  /** An object signed by this key's writer, and its name; `deterministic`: see encodeObject. */
  sealObject(kind: ObjectKind, payload: Buffer | readonly Buffer[], deterministic = false): SealedObject {
    const { sealPublic, writer } = this.keys;
    const bytes = encodeObject(kind, payload, sealPublic, { writer: writer.id, signing: writer.signing }, deterministic);
    return { name: sha256(bytes).toString('hex'), bytes };
  }

  async storeObject(type: ObjectType, sealed: SealedObject): Promise<void> {
    await this.backend.save(type, sealed.name, sealed.bytes, { sha256: sealed.name });
  }

  /**
   * Loads, verifies and decrypts an object named by its hash, and checks who signed it: a
   * registered writer (and, once revoked, only what it signed before). Anything else is an
   * IntegrityError, which listing callers report and skip.
   */
  async loadObject(type: ObjectType, kind: ObjectKind, name: string): Promise<LoadedObject> {
    const what = `${type}/${name.slice(0, 12)}`;
    return this.loadVerified(async () => {
      const bytes = await this.backend.load(type, name, { limit: MAX_OBJECT_BYTES[type as keyof typeof MAX_OBJECT_BYTES] }).catch(tooLarge(what));
      if (sha256(bytes).toString('hex') !== name) throw new IntegrityError(what, 'content does not match its name');
      const opened = this.codec.openObject(kind, bytes, what);
      const writer = this.writers.get(opened.writer);
      if (!writer) throw new RefusedError(what, `written by an unknown writer ${opened.writer.toString('hex').slice(0, 8)}`);
      if (writer.publicKey && !opened.signedBy(writer.publicKey)) throw new RefusedError(what, `signature of writer ${Writers.label(writer)} does not verify`);
      const accepted = type === 'snapshots' ? writer.revoked?.snapshots : type === 'index' ? writer.revoked?.index : undefined;
      if (writer.revoked && !accepted?.has(name)) throw new RefusedError(what, `written by writer ${Writers.label(writer)} after it was revoked`);
      return { payload: opened.payload, writer };
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

  /**
   * The index of everything this key may dedup against or read: for a full key every index
   * file a registered writer signed (a forged or revoked one is skipped with a warning), less
   * the packs the repository no longer has (a backup then stores their blobs again, a restore
   * finds a copy stored since); for a write-only key what its own record says it stored.
   * A warning about an index file it skipped names that file (`skipped`).
   */
  async loadIndex(onWarning?: (message: string, skipped?: string) => void): Promise<void> {
    const packs = this.listNames('data');
    packs.catch(() => undefined); // awaited below
    if (!this.canRead) {
      // Packs a prune marked for deletion may go before this backup's snapshot refers to them.
      await this.record?.loadInto(this.index, this.self.no, new Set(await packs), new Set((await loadMarks(this)).seen.keys()));
      return;
    }
    if (this.loadedIndexFiles) throw new Error('the index is loaded once');
    this.loadedIndexFiles = [];
    await this.addIndexFiles(await this.listNames('index'), packs, onWarning);
  }

  /**
   * Adds the index files written since the index was loaded (a full key's): a long-lived
   * reader (a mount) then finds the blobs of snapshots saved meanwhile. What was loaded stays;
   * a file already loaded is not read again. Gives how many files were new.
   */
  async loadNewIndexFiles(onWarning?: (message: string, skipped?: string) => void): Promise<number> {
    if (!this.loadedIndexFiles) throw new Error('the index is not loaded');
    const known = new Set(this.loadedIndexFiles);
    const fresh = (await this.listNames('index')).filter((name) => !known.has(name));
    if (fresh.length > 0) await this.addIndexFiles(fresh, this.listNames('data'), onWarning);
    return fresh.length;
  }

  private async addIndexFiles(names: string[], packs: Promise<string[]>, onWarning?: (message: string, skipped?: string) => void): Promise<void> {
    packs.catch(() => undefined); // awaited below
    // A few files read ahead (a round trip each on S3); each is added whole, in listing order.
    const load = (name: string) => this.loadIndexFile(name).then((packs) => ({ packs }), (err: unknown) => ({ err }));
    let n = 0;
    for await (const file of inOrder(names, Math.min(this.backend.connections, INDEX_FILES_AHEAD), load)) {
      const name = names[n++]!;
      if ('err' in file) {
        if (!(file.err instanceof IntegrityError)) throw file.err;
        onWarning?.(`${file.err.message}; skipped`, name);
      } else {
        for (const { pack, entries } of file.packs) this.index.addPack(pack, entries);
      }
      this.loadedIndexFiles!.push(name);
    }
    const missing = this.index.markMissing(new Set(await packs));
    if (missing > 0) onWarning?.(`${missing} pack(s) listed in the index are missing from the repository: their blobs are lost unless stored again`);
  }

  /** The index files the loaded index was read from. */
  get indexFiles(): readonly string[] {
    if (!this.loadedIndexFiles) throw new Error('the index is not loaded');
    return this.loadedIndexFiles;
  }

  /**
   * An index file's packs, each with the writer it belongs to. A write-only writer's index
   * files list its own packs only; a full key's (a prune's, a repair's) may list any registered
   * writer's, since it rewrites them all.
   */
  async loadIndexFile(name: string): Promise<{ pack: PackInfo; entries: PackEntry[] }[]> {
    const what = `index/${name.slice(0, 12)}`;
    const { payload, writer: signer } = await this.loadObject('index', ObjectKind.index, name);
    return this.codec.decodeIndex(payload, what).map(({ id, type, writer: owner, envelope, markedAt, entries }) => {
      const writer = this.writers.get(owner);
      if (!writer || (signer.access !== 'full' && writer !== signer)) throw new IntegrityError(what, `lists a pack of writer ${owner.toString('hex').slice(0, 8)}, which its signer may not`);
      return { pack: { id, type, writer: writer.no, envelope, ...(markedAt ? { markedAt } : {}) }, entries };
    });
  }

  /** Saves an index object of these packs' records (see encodePackRecord); a write-only key notes it in its record. */
  async saveIndexFile(records: readonly Buffer[]): Promise<string> {
    const payload = encodeIndexFile(records);
    const name = await this.saveObject('index', ObjectKind.index, payload);
    await this.record?.addIndex(name, payload);
    return name;
  }

  // --- blobs ---

  /** What reads the blobs of one writer's snapshots. */
  reader(writer: Writer): BlobReader {
    this.requireRead();
    return new BlobReader(this, writer);
  }

  /**
   * The key of a pack, from its envelope: full keys only. Cached by pack and envelope: an index
   * file may claim a pack with an envelope that is not its own.
   */
  packKey(packId: string, envelope: Buffer): Buffer {
    const cacheKey = packId + envelope.toString('hex');
    let key = this.packKeys.get(cacheKey);
    if (key) return key;
    key = this.codec.packKey(envelope, `pack ${packId.slice(0, 12)}`);
    if (this.packKeys.size > 4096) this.packKeys.clear();
    this.packKeys.set(cacheKey, key);
    return key;
  }

  /** A whole pack, verified against its name, with the key envelope and its own header. */
  async loadPack(packId: string): Promise<{ bytes: Buffer; envelope: Buffer; header: PackHeader }> {
    const what = `pack ${packId.slice(0, 12)}`;
    return this.loadVerified(async () => {
      const bytes = await this.backend.load('data', packId, { limit: maxPackBytes(this.config.packSize) }).catch(tooLarge(what));
      if (sha256(bytes).toString('hex') !== packId) throw new IntegrityError(what, 'content does not match its name');
      const envelope = this.codec.readEnvelope(bytes, what);
      return { bytes, envelope, header: this.codec.readPackHeader(bytes, this.packKey(packId, envelope), what) };
    });
  }

  async loadBlob(type: BlobType, id: Buffer, writer: Writer): Promise<Buffer> {
    const what = `blob ${id.toString('hex').slice(0, 12)}`;
    const loc = this.index.find(type, id, writer.no);
    if (!loc) throw new IntegrityError(what, 'not in the index (missing pack or index)');
    if (type === BlobType.tree && loc.rawLength > MAX_TREE_BYTES) throw new IntegrityError(what, `a tree of ${loc.rawLength} bytes is larger than any tree can be`);
    const packId = loc.pack.id.toString('hex');
    try {
      return await this.loadVerified(async () => {
        const sealed = await this.readSealed(packId, loc);
        try {
          return decodeSealedBlob(this.packKey(packId, loc.pack.envelope), writer.chunkIdKey, id, loc, sealed, packId);
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
    const pack = await this.treePacks.get(packId, () => this.backend.load('data', packId, { metadata: true, limit: maxPackBytes(this.config.packSize) }).catch(tooLarge(`pack ${packId.slice(0, 12)}`)));
    if (range.offset + range.length > pack.length) throw new IntegrityError(`pack ${packId.slice(0, 12)}`, 'shorter than the index says');
    return pack.subarray(range.offset, range.offset + range.length);
  }

  /** The packer that batches this key's new blobs into packs; created on first write. */
  get packer(): Packer {
    this.packerInstance ??= new Packer(this);
    return this.packerInstance;
  }

  /**
   * Stores a blob unless this writer already has it; returns its ID and whether it was new.
   * Hashes and compresses on this thread: for trees and other small blobs (the archiver
   * packs file data on the thread pool).
   */
  async saveBlob(type: BlobType, data: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const blob = this.prepare(type, data);
    return { id: blob.id, added: await this.packer.add(type, blob) };
  }

  /**
   * Hashes (with the key of `writer`: this key's own, or for a full key any writer's) and
   * compresses a blob on this thread, trees at their own level.
   */
  prepare(type: BlobType, data: Buffer, writer: Writer = this.self): PreparedBlob {
    return prepareBlob(writer.chunkIdKey, data, type === BlobType.tree ? TREE_COMPRESSION : this.config.compression);
  }

  /** Writes every pending pack and the index entries for them. Must precede saving a snapshot. */
  async flush(): Promise<void> {
    await this.packerInstance?.flush();
  }

  /** Writes a registration or revocation record of a writer, signed by this (full) key. */
  async saveWriterRecord(record: WriterRecord): Promise<string> {
    if (this.keys.access !== 'full') throw new ScrateError(WRITE_ONLY);
    return this.saveObject('writers', ObjectKind.writer, Buffer.from(JSON.stringify(record)));
  }
}

/** Turns an object refused for its size into damage (IntegrityError), which callers report and skip. */
function tooLarge(what: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof ObjectTooLargeError) throw new IntegrityError(what, `${err.size} bytes is more than such an object can be`);
    throw err;
  };
}

/** A repository's metadata kept in a local cache below `cacheRoot`; one that cannot be set up only costs downloads. */
async function cached(backend: Backend, opts: OpenOptions, id: string): Promise<Backend> {
  return opts.cacheRoot ? CachedBackend.open(backend, opts.cacheRoot, id).catch(() => backend) : backend;
}

/**
 * Reads the blobs of one writer: a snapshot's trees and file contents are that writer's, named
 * with its key and looked up among its packs only.
 */
export class BlobReader {
  private readonly zeroIds = new Map<number, Buffer>();

  constructor(
    readonly repo: Repository,
    readonly writer: Writer,
  ) {}

  get backend(): Backend {
    return this.repo.backend;
  }

  get chunkIdKey(): Buffer {
    return this.writer.chunkIdKey;
  }

  find(type: BlobType, id: Uint8Array): BlobLocation | undefined {
    return this.repo.index.find(type, id, this.writer.no);
  }

  loadBlob(type: BlobType, id: Buffer): Promise<Buffer> {
    return this.repo.loadBlob(type, id, this.writer);
  }

  packKey(packId: string, envelope: Buffer): Buffer {
    return this.repo.packKey(packId, envelope);
  }

  /** The keyed hash that names a blob of this writer. */
  blobId(data: Uint8Array): Buffer {
    return blobId(this.writer.chunkIdKey, data);
  }

  /** The ID of `length` zero bytes: the blob the archiver stores for every empty region of that size. */
  zeroBlobId(length: number): Buffer {
    let id = this.zeroIds.get(length);
    if (!id) this.zeroIds.set(length, (id = this.blobId(Buffer.alloc(length))));
    return id;
  }
}
