import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, ScrateError } from '../errors.js';
import { AlreadyExistsError, type Backend, type ObjectOptions, type ObjectType } from './backend.js';

/** A failure that may pass: a 5xx, throttling, a timeout, a reset connection, a short body. */
export class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientError';
  }
}

/**
 * The server could not be reached at all: refused, unknown host, no route, no connection within
 * the connection timeout. Before any request has succeeded that is a wrong endpoint or a server
 * that is down, not a passing fault (see RetryBackend).
 */
export class UnreachableError extends TransientError {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/**
 * Attempts at reaching a server that never answered yet: a second one covers a server just
 * starting; the full policy would keep a user waiting ~20 s for a typo in the endpoint.
 */
const FIRST_CONTACT_ATTEMPTS = 2;

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first back-off; each later one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 250, maxDelayMs: 20_000 };

/**
 * Retries a backend's operations that fail with a TransientError, with exponential back-off
 * and full jitter (so many clients throttled together do not return together), a bounded
 * number of times; then fails with a message naming the object.
 */
export class RetryBackend implements Backend {
  constructor(
    private readonly inner: Backend,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly onRetry?: (what: string, attempt: number, err: Error) => void,
  ) {}

  /** Some request has succeeded: the server exists, and losing it is a fault worth waiting out. */
  private reached = false;

  get location(): string {
    return this.inner.location;
  }

  get connections(): number {
    return this.inner.connections;
  }

  private async retry<T>(what: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await op();
        this.reached = true;
        return result;
      } catch (err) {
        await this.backOff(what, attempt, err);
      }
    }
  }

  /** Rethrows what is not worth retrying or has been tried enough; otherwise waits. */
  private async backOff(what: string, attempt: number, err: unknown): Promise<void> {
    if (!(err instanceof TransientError)) throw err;
    if (err instanceof UnreachableError && !this.reached && attempt >= FIRST_CONTACT_ATTEMPTS) {
      throw new ScrateError(`cannot reach ${this.location}: ${err.message}`, ExitCode.fatal, 'check the repository location and that its server is up');
    }
    if (attempt >= this.policy.attempts) throw new ScrateError(`${what} still failing after ${attempt} attempts: ${err.message}`);
    this.onRetry?.(what, attempt, err);
    await sleep(Math.random() * Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (attempt - 1)));
  }

  exists(): Promise<boolean> {
    return this.retry(`checking ${this.location}`, () => this.inner.exists());
  }

  create(): Promise<void> {
    return this.retry(`creating ${this.location}`, () => this.inner.create());
  }

  save(type: ObjectType, name: string, data: Uint8Array, opts?: ObjectOptions): Promise<void> {
    if (!opts?.create) return this.retry(`saving ${type}/${name}`, () => this.inner.save(type, name, data, opts));
    return this.createOnce(type, name, data, opts);
  }

  /**
   * A create whose answer was lost may have landed: the next attempt then finds the object.
   * It counts as ours only when it holds our bytes exactly (a config carries a fresh random ID,
   * so another client's never does).
   */
  private async createOnce(type: ObjectType, name: string, data: Uint8Array, opts: ObjectOptions): Promise<void> {
    let mayHaveLanded = false;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.inner.save(type, name, data, opts);
        this.reached = true;
        return;
      } catch (err) {
        if (err instanceof AlreadyExistsError && mayHaveLanded) {
          const found = await this.load(type, name);
          if (found.equals(data)) return;
        }
        await this.backOff(`saving ${type}/${name}`, attempt, err);
        mayHaveLanded = true;
      }
    }
  }

  load(type: ObjectType, name: string, opts?: ObjectOptions): Promise<Buffer> {
    return this.retry(`loading ${type}/${name}`, () => this.inner.load(type, name, opts));
  }

  stat(type: ObjectType, name: string): Promise<number | null> {
    return this.retry(`checking ${type}/${name}`, () => this.inner.stat(type, name));
  }

  /** A listing that fails part-way starts over, skipping what was already yielded. */
  async *list(type: ObjectType): AsyncIterable<{ name: string; size: number }> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const entry of this.inner.list(type)) {
          if (seen.has(entry.name)) continue;
          seen.add(entry.name);
          this.reached = true;
          yield entry;
        }
        return;
      } catch (err) {
        await this.backOff(`listing ${type}`, attempt, err);
      }
    }
  }

  remove(type: ObjectType, name: string): Promise<void> {
    return this.retry(`removing ${type}/${name}`, () => this.inner.remove(type, name));
  }
}
