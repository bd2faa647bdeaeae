import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { readdirOrEmpty, readRangeSync } from '../util/fs.js';
import { AlreadyExistsError, NotFoundError, OBJECT_TYPES, ObjectTooLargeError, type Backend, type ObjectOptions, type ObjectType, type Staging } from './backend.js';

const TEMP_PREFIX = '.tmp-';
/** Ranges up to this size (tree blobs, a few small files' worth of a pack) are read without the thread pool. */
const SYNC_RANGE_MAX = 1024 * 1024;

/**
 * A repository in a local directory. Writes go to a temporary file that is fsynced and
 * renamed into place, then the directory is fsynced: after a crash an object is either
 * complete or absent, never partial.
 */
export class LocalBackend implements Backend {
  /** Staged files lie in data/ beside the pack directories, so adopting one is a rename. */
  readonly staging: Staging;

  constructor(readonly root: string) {
    this.staging = {
      dir: path.join(root, 'data'),
      prefix: TEMP_PREFIX,
      adopt: (type, name, file) => this.adopt(type, name, file),
      sweep: (olderThanMs) => this.sweep(olderThanMs),
    };
  }

  /** Disks gain little from more than a couple of writers at once. */
  readonly connections = 2;

  get location(): string {
    return this.root;
  }

  private dirOf(type: ObjectType, name: string): string {
    if (type === 'config') return this.root;
    if (type === 'data') return path.join(this.root, 'data', name.slice(0, 2));
    return path.join(this.root, type);
  }

  private pathOf(type: ObjectType, name: string): string {
    return type === 'config' ? path.join(this.root, 'config') : path.join(this.dirOf(type, name), name);
  }

  async exists(): Promise<boolean> {
    return (await this.stat('config', 'config')) !== null;
  }

  async create(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const type of OBJECT_TYPES) if (type !== 'config') await fs.mkdir(path.join(this.root, type), { recursive: true, mode: 0o700 });
    for (let i = 0; i < 256; i++) await fs.mkdir(path.join(this.root, 'data', i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
  }

  async save(type: ObjectType, name: string, data: Uint8Array, opts: ObjectOptions = {}): Promise<void> {
    const dir = this.dirOf(type, name);
    const temp = path.join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    const fh = await this.createFile(type, dir, temp);
    try {
      let written = 0;
      while (written < data.length) written += (await fh.write(data, written, data.length - written)).bytesWritten;
      await fh.sync();
    } catch (err) {
      await fh.close();
      await fs.rm(temp, { force: true });
      throw err;
    }
    await fh.close();
    if (opts.create) {
      // A link fails where a rename would replace: nothing can overwrite the object.
      try {
        await fs.link(temp, this.pathOf(type, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(type, name);
        throw err;
      } finally {
        await fs.rm(temp, { force: true });
      }
    } else {
      await fs.rename(temp, this.pathOf(type, name));
    }
    await syncDir(dir);
  }

  /**
   * A new file in `dir`. A repository made before a type existed (volumes/) has no directory for
   * it: that one is made on the first write (and listing it meanwhile finds nothing).
   */
  private async createFile(type: ObjectType, dir: string, file: string): Promise<fs.FileHandle> {
    const create = () => fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      return await create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || type === 'config' || type === 'data') throw err;
      await fs.mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await syncDir(this.root);
      return create();
    }
  }

  private async adopt(type: ObjectType, name: string, file: string): Promise<void> {
    try {
      // Its writer closed it without a sync: the data must be on disk before the name is.
      const fh = await fs.open(file, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(file, this.pathOf(type, name));
    } catch (err) {
      await fs.rm(file, { force: true });
      throw err;
    }
    await syncDir(this.dirOf(type, name));
  }

  /** The directories data/xx that hold packs (data/ itself holds staged files). */
  private async dataShards(): Promise<string[]> {
    const data = path.join(this.root, 'data');
    return (await readdirOrEmpty(data)).filter((d) => !d.startsWith(TEMP_PREFIX)).map((d) => path.join(data, d));
  }

  /** Temporary files lie beside the objects of every type, and staged packs in data/ itself. */
  private async sweep(olderThanMs: number): Promise<number> {
    const dirs = [...OBJECT_TYPES.filter((t) => t !== 'config').map((t) => path.join(this.root, t)), ...(await this.dataShards())];
    const before = Date.now() - olderThanMs;
    let removed = 0;
    for (const dir of dirs) {
      for (const name of await readdirOrEmpty(dir)) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const file = path.join(dir, name);
        const st = await fs.lstat(file).catch(() => null);
        if (!st?.isFile() || st.mtimeMs >= before) continue;
        await fs.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async load(type: ObjectType, name: string, opts: ObjectOptions = {}): Promise<Buffer> {
    const { range } = opts;
    const file = this.pathOf(type, name);
    if (range && range.length <= SYNC_RANGE_MAX) {
      try {
        return readRangeSync(file, range.offset, range.length);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(type, name);
        throw err;
      }
    }
    let fh;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(type, name);
      throw err;
    }
    try {
      if (!range) {
        const { size } = await fh.stat();
        if (opts.limit !== undefined && size > opts.limit) throw new ObjectTooLargeError(type, name, size);
        return await fh.readFile();
      }
      const buf = Buffer.allocUnsafe(range.length);
      let got = 0;
      while (got < range.length) {
        const { bytesRead } = await fh.read(buf, got, range.length - got, range.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === range.length ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  async stat(type: ObjectType, name: string): Promise<number | null> {
    try {
      return (await fs.stat(this.pathOf(type, name))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async *list(type: ObjectType): AsyncIterable<{ name: string; size: number }> {
    if (type === 'config') {
      const size = await this.stat('config', 'config');
      if (size !== null) yield { name: 'config', size };
      return;
    }
    const dirs = type === 'data' ? await this.dataShards() : [path.join(this.root, type)];
    for (const dir of dirs) {
      for (const name of await readdirOrEmpty(dir)) {
        if (name.startsWith(TEMP_PREFIX)) continue;
        const st = await fs.stat(path.join(dir, name)).catch(() => null);
        if (st?.isFile()) yield { name, size: st.size };
      }
    }
  }

  async remove(type: ObjectType, name: string): Promise<void> {
    await fs.rm(this.pathOf(type, name), { force: true });
    await syncDir(this.dirOf(type, name));
  }
}


async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
