/** The kinds of object a repository stores; each lives in its own namespace. */
export type ObjectType = 'config' | 'keys' | 'writers' | 'snapshots' | 'index' | 'data' | 'locks' | 'marks' | 'volumes';

export const OBJECT_TYPES: readonly ObjectType[] = ['config', 'keys', 'writers', 'snapshots', 'index', 'data', 'locks', 'marks', 'volumes'];

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ObjectOptions {
  /** Read only these bytes. */
  range?: ByteRange;
  /**
   * A data object holding metadata (a tree pack): small and read by every incremental backup,
   * `ls` and restore, so worth keeping in a local cache. Snapshots, index and keys always are.
   */
  metadata?: boolean;
  /**
   * For `save`: the hex SHA-256 of the bytes when the caller knows it (objects named by their
   * hash). A backend that must hash what it sends (S3's SigV4 payload hash) uses it instead.
   */
  sha256?: string;
  /**
   * For a whole `load`: the most bytes the object may have. A larger one (planted, say) fails
   * with ObjectTooLargeError before its bytes are read into memory.
   */
  limit?: number;
  /**
   * For `save`: only if no object of that name exists (the config, which nothing may replace);
   * fails with AlreadyExistsError otherwise.
   */
  create?: boolean;
}

/**
 * How a backend on the local filesystem takes objects written as files beside it: packs are
 * then streamed to disk as they are built instead of being held whole in memory.
 */
export interface Staging {
  /** Where to create the files, on the repository's filesystem. */
  readonly dir: string;
  /** Files in `dir` whose names start with this are never taken for objects (the rest of a name is the writer's to choose). */
  readonly prefix: string;
  /** Makes a complete file written in `dir` the object, atomically as `save` does; the file is gone afterwards, also when this fails. */
  adopt(type: ObjectType, name: string, file: string): Promise<void>;
  /**
   * Removes the temporary files of writers that died (a staged pack, an object half saved) not
   * modified for `olderThanMs`; never an object. Returns how many it removed.
   */
  sweep(olderThanMs: number): Promise<number>;
}

/**
 * Where repository objects live. Objects are written once and never modified; `save`
 * must be atomic (an object is either absent or complete). Everything above this
 * interface is the same for every store.
 */
export interface Backend {
  /** A human-readable location, for messages. */
  readonly location: string;
  /** How many requests are worth running at once. */
  readonly connections: number;
  /** Whether the repository's config object exists. */
  exists(): Promise<boolean>;
  /** Prepares an empty store (directories, bucket). */
  create(): Promise<void>;
  save(type: ObjectType, name: string, data: Uint8Array, opts?: ObjectOptions): Promise<void>;
  /** The whole object, or `opts.range` of it. Throws NotFoundError when absent. */
  load(type: ObjectType, name: string, opts?: ObjectOptions): Promise<Buffer>;
  /** Size in bytes, or null when absent. */
  stat(type: ObjectType, name: string): Promise<number | null>;
  list(type: ObjectType): AsyncIterable<{ name: string; size: number }>;
  remove(type: ObjectType, name: string): Promise<void>;
  /** Present when objects can be written as files and adopted (see Staging). */
  readonly staging?: Staging;
}

export class ObjectTooLargeError extends Error {
  constructor(readonly type: ObjectType, readonly name: string, readonly size: number) {
    super(`${type}/${name} is ${size} bytes, more than such an object can be`);
    this.name = 'ObjectTooLargeError';
  }
}

export class AlreadyExistsError extends Error {
  constructor(readonly type: ObjectType, readonly name: string) {
    super(`${type}/${name} already exists`);
    this.name = 'AlreadyExistsError';
  }
}

export class NotFoundError extends Error {
  constructor(readonly type: ObjectType, readonly name: string) {
    super(`${type}/${name} does not exist`);
    this.name = 'NotFoundError';
  }
}
