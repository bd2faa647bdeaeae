import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import http from 'node:http';
import https from 'node:https';
import { errnoWords, ExitCode, ScrateError } from '../errors.js';
import { AlreadyExistsError, NotFoundError, ObjectTooLargeError, type Backend, type ObjectOptions, type ObjectType } from './backend.js';
import { Budget } from '../util/budget.js';
import { TransientError, UnreachableError } from './retry.js';
import type { S3Settings } from './s3-location.js';

/** Errors a later attempt may not see: server trouble, throttling, broken connections. */
function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  const e = err as { $metadata?: { httpStatusCode?: number }; name?: string; code?: string; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  if (status === 501) return false; // Not Implemented: asking again will not help
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
  if (e.$retryable) return true;
  const name = e.name ?? '';
  // The 400s among these are transfers garbled or cut short on the way: a new attempt is sound.
  const retried = ['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'TimeoutError', 'AbortError', 'IncompleteBody', 'BadDigest', 'XAmzContentSHA256Mismatch'];
  if (retried.includes(name)) return true;
  const code = e.code ?? '';
  if (['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code)) return true;
  // Parsing a body the server cut short surfaces as a deserialization error without a status.
  return status === undefined && /socket hang up|aborted|premature|ECONNRESET|unexpected end|Deserialization error|char '<'/i.test(String((err as Error)?.message));
}

/** The server was not reached at all (see UnreachableError). */
function isUnreachable(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string };
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(e.code ?? '')) return true;
  // node-http-handler's connectionTimeout.
  return e.name === 'TimeoutError' && /without establishing a connection/.test(e.message ?? '');
}

/**
 * SigV4 signs the SHA-256 of the body, which the signer computes itself unless the request
 * already carries it in x-amz-content-sha256: on a 16 MiB pack whose name is that hash, hashing
 * it again costs as much CPU as the rest of the request. The server checks the header against
 * the bytes it receives, so a wrong hash fails the upload instead of storing anything.
 */
export function presetPayloadHash(command: PutObjectCommand, sha256: string): void {
  command.middlewareStack.add(
    (next) => (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
      return next(args);
    },
    // Signing happens in the finalizeRequest step, after build.
    { step: 'build', name: 'presetPayloadHash' },
  );
}

function isNotFound(err: unknown): boolean {
  const e = err as { $metadata?: { httpStatusCode?: number }; name?: string };
  return e.$metadata?.httpStatusCode === 404 || e.name === 'NotFound' || e.name === 'NoSuchKey';
}

/**
 * A repository in an S3 bucket. Object keys mirror the local layout under the prefix
 * (`data/ab/abcd…`). Requests are single attempts: RetryBackend around it retries whole
 * operations, including reading a response body, which the SDK's own retries do not cover.
 */
export class S3Backend implements Backend {
  readonly location: string;
  readonly connections: number;
  private readonly client: S3Client;
  private readonly slots: Budget;
  /** Whether the server honours If-None-Match on PUT; learnt from its first refusal. */
  private conditionalPuts = true;

  constructor(private readonly s: S3Settings) {
    this.location = `s3:${s.endpoint ? s.endpoint + '/' : ''}${s.bucket}${s.prefix ? '/' + s.prefix.slice(0, -1) : ''}`;
    this.connections = s.connections;
    this.slots = new Budget(s.connections);
    const agentOptions = { keepAlive: true, maxSockets: s.connections, ...(s.caBundle ? { ca: s.caBundle } : {}) };
    this.client = new S3Client({
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      // Custom endpoints rarely care about the region, but SigV4 needs one.
      region: s.region ?? (s.endpoint ? 'us-east-1' : undefined),
      forcePathStyle: s.pathStyle,
      // Some S3-compatible servers store aws-chunked framing as data: checksum only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        // A server that answers at all accepts a connection within this (see UnreachableError).
        connectionTimeout: 3_000,
        // An idle socket for this long is a dead connection (a NAT forgot it, a server hung):
        // it fails as a timeout and the request is retried. requestTimeout would only warn.
        socketTimeout: 120_000,
      }),
    });
  }

  private key(type: ObjectType, name: string): string {
    if (type === 'config') return `${this.s.prefix}config`;
    if (type === 'data') return `${this.s.prefix}data/${name.slice(0, 2)}/${name}`;
    return `${this.s.prefix}${type}/${name}`;
  }

  /**
   * Runs one request within the connection limit, so that requests queue here rather than in
   * the socket pool, where the wait would count against the connection timeout. Errors name the
   * object; transient ones stay retryable.
   */
  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    await this.slots.admit(1);
    try {
      return await run();
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ObjectTooLargeError) throw err;
      if (isUnreachable(err)) throw new UnreachableError(`${describe(err)} (${what})`);
      if (isTransient(err)) throw new TransientError(`${what}: ${describe(err)}`);
      throw s3Error(what, err, this.location);
    } finally {
      this.slots.release(1);
    }
  }

  async exists(): Promise<boolean> {
    return (await this.stat('config', 'config')) !== null;
  }

  async create(): Promise<void> {
    const bucket = this.s.bucket;
    const found = await this.call(`HEAD bucket ${bucket}`, async () => {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
        return true;
      } catch (err) {
        if (isNotFound(err) || (err as { name?: string }).name === 'NoSuchBucket') return false;
        throw err;
      }
    });
    if (found) return;
    const region = await this.client.config.region();
    await this.call(`create bucket ${bucket}`, () =>
      this.client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // AWS wants the region spelled out everywhere but in us-east-1.
          ...(!this.s.endpoint && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}),
        }),
      ),
    );
  }

  async save(type: ObjectType, name: string, data: Uint8Array, opts: ObjectOptions = {}): Promise<void> {
    const key = this.key(type, name);
    const command = new PutObjectCommand({
      Bucket: this.s.bucket,
      Key: key,
      Body: data,
      ContentLength: data.length,
      ...(this.s.storageClass && type === 'data' ? { StorageClass: this.s.storageClass as StorageClass } : {}),
      // Conditional write: the server refuses (412) when the object exists.
      ...(opts.create ? { IfNoneMatch: '*' } : {}),
    });
    if (opts.sha256) presetPayloadHash(command, opts.sha256);
    if (opts.create && !this.conditionalPuts) return this.createAfterCheck(type, name, data);
    const status = await this.call(`PUT ${key}`, async () => {
      try {
        await this.client.send(command);
        return 200;
      } catch (err) {
        const code = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (opts.create && (code === 412 || code === 501)) return code;
        throw err;
      }
    });
    if (status === 412) throw new AlreadyExistsError(type, name);
    if (status === 501) {
      this.conditionalPuts = false;
      await this.createAfterCheck(type, name, data);
    }
  }

  /**
   * Servers without conditional writes (OpenStack Swift's s3api answers 501): a look first,
   * then a plain PUT. Two inits racing on one prefix could then both write; nothing else
   * creates objects this way.
   */
  private async createAfterCheck(type: ObjectType, name: string, data: Uint8Array): Promise<void> {
    if ((await this.stat(type, name)) !== null) throw new AlreadyExistsError(type, name);
    await this.save(type, name, data);
  }

  async load(type: ObjectType, name: string, opts: ObjectOptions = {}): Promise<Buffer> {
    const key = this.key(type, name);
    const { range } = opts;
    return this.call(`GET ${key}`, async () => {
      let res;
      try {
        res = await this.client.send(
          new GetObjectCommand({ Bucket: this.s.bucket, Key: key, ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}) }),
        );
      } catch (err) {
        if (isNotFound(err)) throw new NotFoundError(type, name);
        throw err;
      }
      if (!range && opts.limit !== undefined && (res.ContentLength ?? 0) > opts.limit) {
        // Not read: the connection goes rather than streaming the body to nowhere.
        (res.Body as { destroy?: () => void }).destroy?.();
        throw new ObjectTooLargeError(type, name, res.ContentLength!);
      }
      const body = Buffer.from(await res.Body!.transformToByteArray());
      // A connection cut mid-body can look like a short success: the length tells.
      if (res.ContentLength !== undefined && body.length !== res.ContentLength) throw new TransientError(`short read: ${body.length} of ${res.ContentLength} bytes`);
      if (range && body.length !== range.length) throw new TransientError(`short ranged read: ${body.length} of ${range.length} bytes`);
      return body;
    });
  }

  async stat(type: ObjectType, name: string): Promise<number | null> {
    const key = this.key(type, name);
    return this.call(`HEAD ${key}`, async () => {
      try {
        return (await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key: key }))).ContentLength ?? 0;
      } catch (err) {
        if (isNotFound(err) || (err as { name?: string }).name === 'NoSuchBucket') return null;
        throw err;
      }
    });
  }

  async *list(type: ObjectType): AsyncIterable<{ name: string; size: number }> {
    const prefix = type === 'config' ? `${this.s.prefix}config` : `${this.s.prefix}${type}/`;
    const pages = paginateListObjectsV2({ client: this.client, pageSize: 1000 }, { Bucket: this.s.bucket, Prefix: prefix });
    const iterator = pages[Symbol.asyncIterator]();
    for (;;) {
      const page = await this.call(`LIST ${prefix}`, () => iterator.next());
      if (page.done) return;
      for (const o of page.value.Contents ?? []) {
        const name = o.Key!.slice(o.Key!.lastIndexOf('/') + 1);
        if (type === 'config' && o.Key !== prefix) continue;
        yield { name, size: o.Size ?? 0 };
      }
    }
  }

  async remove(type: ObjectType, name: string): Promise<void> {
    const key = this.key(type, name);
    await this.call(`DELETE ${key}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.s.bucket, Key: key })));
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // An errno code says the rest of a Node error's message (`connect ECONNREFUSED 127.0.0.1:9`) in words.
  if (e.code && status === undefined && errnoWords(e.code) !== e.code) return errnoWords(e.code);
  return [status, e.name !== 'Error' ? e.name : undefined, e.code, e.message].filter((x) => x !== undefined && x !== '').join(' ');
}

/** A permanent S3 failure, said plainly, with a hint for the usual causes. */
function s3Error(what: string, err: unknown, location: string): ScrateError {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'SignatureDoesNotMatch' || e.name === 'InvalidAccessKeyId' || status === 403) {
    return new ScrateError(`${location}: access denied (${e.name ?? status}) on ${what}`, ExitCode.fatal, 'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile in use');
  }
  if (e.name === 'NoSuchBucket') return new ScrateError(`${location}: the bucket does not exist`, ExitCode.noRepository, 'create the repository with `scrate init`');
  if (e.name === 'CredentialsProviderError') return new ScrateError(`${location}: no S3 credentials found`, ExitCode.fatal, 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE');
  const code = (err as { code?: string }).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return new ScrateError(`${location}: the server's TLS certificate is not trusted (${code})`, ExitCode.fatal, 'give its CA with -o s3.ca-bundle=FILE');
  return new ScrateError(`${location}: ${what} failed: ${describe(err)}`);
}
