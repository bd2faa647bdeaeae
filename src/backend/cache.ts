import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readdirOrEmpty } from '../util/fs.js';
import { sha256 } from '../crypto/primitives.js';
import type { Backend, ObjectOptions, ObjectType, Staging } from './backend.js';

/** Repository caches nobody opened for this long are removed. */
const UNUSED_MS = 30 * 24 * 3600 * 1000;
const CACHEDIR_TAG = 'Signature: 8a477f597d28d172789f06886806bc55\n# This directory holds scrate\'s cache of repository metadata; it is safe to delete.\n';

/** `$XDG_CACHE_HOME/scrate`, or `~/.cache/scrate`. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'scrate');
}

/**
 * Keeps copies of snapshots, index files, writer records and tree packs in a local directory, so listing
 * snapshots, `ls` and the parent lookup of an incremental backup do not download them again.
 * Objects are named by their SHA-256, so a cached copy is verified against its name before it is
 * first used in a process; a bad copy is dropped and fetched again. Deleting the directory is
 * always safe.
 */
export class CachedBackend implements Backend {
  private readonly verified = new Set<string>();

  private constructor(
    private readonly inner: Backend,
    readonly dir: string,
  ) {}

  /** The cache of one repository (by its config ID) under `root`; old caches beside it are removed. */
  static async open(inner: Backend, root: string, repoId: string): Promise<CachedBackend> {
    const dir = path.join(root, repoId);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(root, 'CACHEDIR.TAG'), CACHEDIR_TAG);
    const now = new Date();
    await fs.utimes(dir, now, now);
    for (const entry of await fs.readdir(root, { withFileTypes: true })) {
      // Only other repositories' caches (named by their IDs): pins/ and the like stay.
      if (!entry.isDirectory() || entry.name === repoId || !/^[0-9a-f]{64}$/.test(entry.name)) continue;
      const st = await fs.stat(path.join(root, entry.name)).catch(() => null);
      if (st && now.getTime() - st.mtimeMs > UNUSED_MS) await fs.rm(path.join(root, entry.name), { recursive: true, force: true });
    }
    return new CachedBackend(inner, dir);
  }

  get location(): string {
    return this.inner.location;
  }

  get connections(): number {
    return this.inner.connections;
  }

  /** Adopted objects bypass the cache: only data packs are staged, and those it does not keep. */
  get staging(): Staging | undefined {
    return this.inner.staging;
  }

  exists(): Promise<boolean> {
    return this.inner.exists();
  }

  create(): Promise<void> {
    return this.inner.create();
  }

  stat(type: ObjectType, name: string): Promise<number | null> {
    return this.inner.stat(type, name);
  }

  private cacheable(type: ObjectType, opts?: ObjectOptions): boolean {
    return type === 'snapshots' || type === 'index' || type === 'writers' || (type === 'data' && !!opts?.metadata);
  }

  private file(type: ObjectType, name: string): string {
    return path.join(this.dir, type, type === 'data' ? name.slice(0, 2) : '', name);
  }

  async save(type: ObjectType, name: string, data: Uint8Array, opts?: ObjectOptions): Promise<void> {
    await this.inner.save(type, name, data, opts);
    if (this.cacheable(type, opts)) await this.keep(type, name, data);
  }

  async load(type: ObjectType, name: string, opts: ObjectOptions = {}): Promise<Buffer> {
    if (!this.cacheable(type, opts)) return this.inner.load(type, name, opts);
    // Cached objects are small or read whole (tree packs: see TreePackCache): a range is a view.
    let whole = await this.readCached(type, name);
    if (!whole) {
      whole = await this.inner.load(type, name, { limit: opts.limit });
      if (sha256(whole).toString('hex') === name) await this.keep(type, name, whole);
    }
    const { range } = opts;
    return range ? whole.subarray(range.offset, range.offset + range.length) : whole;
  }

  /** The cached bytes, or null when there is no good copy. */
  private async readCached(type: ObjectType, name: string): Promise<Buffer | null> {
    const file = this.file(type, name);
    try {
      const whole = await fs.readFile(file);
      if (this.verified.has(file)) return whole;
      if (sha256(whole).toString('hex') !== name) {
        await fs.rm(file, { force: true });
        return null;
      }
      this.verified.add(file);
      return whole;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Best effort: a full disk or a read-only cache only costs downloads. */
  private async keep(type: ObjectType, name: string, data: Uint8Array): Promise<void> {
    const file = this.file(type, name);
    const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await fs.writeFile(temp, data, { mode: 0o600 });
      await fs.rename(temp, file);
      this.verified.add(file);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined);
    }
  }

  /** Lists from the backend; cached copies of objects that are gone are dropped afterwards. */
  async *list(type: ObjectType): AsyncIterable<{ name: string; size: number }> {
    const names = new Set<string>();
    for await (const entry of this.inner.list(type)) {
      names.add(entry.name);
      yield entry;
    }
    if (type === 'snapshots' || type === 'index' || type === 'writers' || type === 'data') await this.dropStale(type, names);
  }

  private async dropStale(type: ObjectType, live: Set<string>): Promise<void> {
    const top = path.join(this.dir, type);
    const dirs = type === 'data' ? (await readdirOrEmpty(top)).map((d) => path.join(top, d)) : [top];
    for (const dir of dirs) {
      for (const name of await readdirOrEmpty(dir)) {
        if (!live.has(name)) await fs.rm(path.join(dir, name), { force: true });
      }
    }
  }

  async remove(type: ObjectType, name: string): Promise<void> {
    await this.inner.remove(type, name);
    await fs.rm(this.file(type, name), { force: true });
  }
}
