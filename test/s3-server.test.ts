/**
 * The loopback S3 server the S3 backend's tests use (Swift + s3api, test/helpers/s3-server.ts),
 * exercised with the AWS SDK the way the backend will use it, including Swift's quirks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { s3ServerUnavailable, startS3Server, type S3Server } from './helpers/s3-server.js';

// Skipped only where Swift isn't installed; CI installs it (.ci/install-swift), so there a
// missing Swift fails the test instead.
const unavailable = s3ServerUnavailable();
const skip = unavailable !== null && !process.env['CI'] ? unavailable : false;

function client(s: S3Server, secretAccessKey = s.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

async function rejectsWith(p: Promise<unknown>, name: string, status: number): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof S3ServiceException, `expected an S3 error, got ${String(err)}`);
    assert.equal(err.name, name, err.message);
    assert.equal(err.$metadata.httpStatusCode, status);
    return err;
  }
  assert.fail(`expected ${name}, but the request succeeded`);
}

function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(true));
  });
}

test('Swift s3api on loopback serves the S3 calls the backend needs', { skip, timeout: 180_000 }, async (t) => {
  const started = Date.now();
  const server = await startS3Server();
  t.diagnostic(`Swift started in ${Date.now() - started} ms at ${server.endpoint}`);
  const s3 = client(server);
  const Bucket = 'scrate-test';
  // A failing step carries the servers' log tails in its message.
  const step = (name: string, fn: () => Promise<void>) =>
    t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error) err.message += `\n${server.logTail(15)}`;
        throw err;
      }
    });
  try {
    await step('CreateBucket', async () => {
      await s3.send(new CreateBucketCommand({ Bucket }));
      // Bucket names are checked as S3 does (dns_compliant_bucket_names).
      await rejectsWith(s3.send(new CreateBucketCommand({ Bucket: 'Not_Valid' })), 'InvalidBucketName', 400);
    });

    const body = 'hello, swift!';
    await step('PutObject, ranged GetObject, HeadObject', async () => {
      const put = await s3.send(new PutObjectCommand({ Bucket, Key: 'data/hello', Body: body }));
      // A plain object's ETag is the quoted hex MD5 of its content.
      assert.equal(put.ETag, '"1fba0f501e503e0ddd279b2076d7447f"');

      const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'data/hello', Range: 'bytes=2-5' }));
      assert.equal(got.$metadata.httpStatusCode, 206);
      assert.equal(got.ContentRange, `bytes 2-5/${body.length}`);
      assert.equal(got.ContentLength, 4);
      assert.equal(await got.Body!.transformToString(), 'llo,');

      const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'data/hello' }));
      assert.equal(head.ContentLength, body.length);
      assert.equal(head.ETag, put.ETag);

      await rejectsWith(s3.send(new GetObjectCommand({ Bucket, Key: 'data/missing' })), 'NoSuchKey', 404);
      await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key: 'data/missing' })), 'NotFound', 404);
      await rejectsWith(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'x' })), 'NoSuchBucket', 404);
      await rejectsWith(
        s3.send(new GetObjectCommand({ Bucket, Key: 'data/hello', Range: 'bytes=100-200' })),
        'InvalidRange',
        416,
      );
    });

    const keys = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    await step('ListObjectsV2 pages through 1100 objects', async () => {
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const Key = keys[next++]!;
          await s3.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));

      const listed: string[] = [];
      const pageSizes: number[] = [];
      let ContinuationToken: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'many/', ContinuationToken }));
        const contents = page.Contents ?? [];
        pageSizes.push(contents.length);
        assert.equal(page.KeyCount, contents.length);
        for (const o of contents) listed.push(o.Key!);
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
        if (page.IsTruncated) assert.ok(ContinuationToken, 'a truncated page has a continuation token');
      } while (ContinuationToken);
      assert.deepEqual(pageSizes, [1000, 100]);
      assert.deepEqual(listed, keys);

      // Swift caps a page at 1000 keys (max_bucket_listing) whatever MaxKeys asks for, though it
      // echoes the MaxKeys asked for.
      const big = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'many/', MaxKeys: 2000 }));
      assert.equal(big.Contents?.length, 1000);
      assert.equal(big.IsTruncated, true);
    });

    await step('DeleteObjects needs Content-MD5, which ChecksumAlgorithm MD5 makes the SDK send', async () => {
      const Objects = keys.slice(0, 3).map((Key) => ({ Key }));
      // With WHEN_REQUIRED the SDK still checksums DeleteObjects (the operation requires one),
      // but with CRC32 in x-amz-checksum-crc32; Swift 2.30 wants Content-MD5.
      const err = await rejectsWith(s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects } })), 'InvalidRequest', 400);
      assert.match(err.message, /Content-MD5/);

      const res = await s3.send(new DeleteObjectsCommand({ Bucket, ChecksumAlgorithm: 'MD5', Delete: { Objects } }));
      assert.deepEqual(res.Deleted?.map((d) => d.Key).sort(), Objects.map((o) => o.Key));
      assert.equal(res.Errors?.length ?? 0, 0);
      await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key: keys[0]! })), 'NotFound', 404);
      await s3.send(new HeadObjectCommand({ Bucket, Key: keys[3]! }));

      // Keys that don't exist count as deleted, as on AWS.
      const again = await s3.send(
        new DeleteObjectsCommand({ Bucket, ChecksumAlgorithm: 'MD5', Delete: { Objects: [...Objects, { Key: keys[3]! }] } }),
      );
      assert.equal(again.Deleted?.length, 4);
      const left = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'many/' }));
      assert.equal(left.Contents?.[0]?.Key, keys[4]);
    });

    await step('a wrong secret key is refused with 403', async () => {
      const bad = client(server, 'not the secret');
      await rejectsWith(bad.send(new ListObjectsV2Command({ Bucket })), 'SignatureDoesNotMatch', 403);
      await rejectsWith(bad.send(new GetObjectCommand({ Bucket, Key: 'data/hello' })), 'SignatureDoesNotMatch', 403);
      bad.destroy();
    });
  } finally {
    s3.destroy();
    await server.stop();
  }

  assert.equal(fs.existsSync(server.dir), false, 'stop() removes the temporary directory');
  for (const [name, port] of Object.entries(server.ports)) {
    assert.ok(await portClosed(port), `${name} still listens on ${port} after stop()`);
  }
});
