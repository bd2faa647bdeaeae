import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OBJECT_TYPES } from '../src/backend/backend.js';
import { openBackend } from '../src/backend/open.js';
import { cliEnv, jsonMessage, scrate } from './helpers/cli.js';
import { scratch } from './helpers/repo.js';
import { s3ServerForTests, startS3ServerWithCredentials, type S3Server } from './helpers/s3-server.js';
import { compareTrees, makeTree } from './helpers/tree.js';


/* copy --from-repo between two S3 buckets of one server (issue #24: "local ↔ S3 and S3 ↔ S3"). */

const SOURCE_PW = 'source password';
const TARGET_PW = 'target password';
const unavailable = s3ServerForTests();

let tmp: ReturnType<typeof scratch>;
let server: S3Server;
let data: string;
const dir = (name: string) => path.join(tmp.dir, name);
const source = () => `s3:${server.endpoint}/scrate-copy-from/repo`;
const target = () => `s3:${server.endpoint}/scrate-copy-to/repo`;
const env = (repo: string, password: string) =>
  cliEnv(repo, {
    SCRATE_PASSWORD: password,
    SCRATE_FROM_PASSWORD: SOURCE_PW,
    SCRATE_FROM_REPOSITORY: source(),
    XDG_CACHE_HOME: dir('cache'),
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
  });
const ok = (args: string[], e: NodeJS.ProcessEnv) => {
  const r = scrate(args, e);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r;
};
/** Requests the server logged since `from` lines: method and object path. */
const requests = (from = 0) =>
  fs
    .readFileSync(path.join(server.dir, 'logs', 'proxy.log'), 'utf8')
    .split('\n')
    .slice(from)
    .flatMap((l) => /proxy-server: \S+ \S+ \S+ (GET|PUT|HEAD|POST|DELETE) (\S+)/.exec(l)?.slice(1, 3).join(' ') ?? []);

/** A repository's objects but its locks, with their sizes. */
async function objects(location: string): Promise<string[]> {
  const backend = await openBackend(location);
  const out: string[] = [];
  for (const type of OBJECT_TYPES.filter((t) => t !== 'locks')) for await (const { name, size } of backend.list(type)) out.push(`${type}/${name} ${size}`);
  return out.sort();
}

before(async () => {
  if (unavailable) return;
  tmp = scratch('copy-s3');
  server = await startS3ServerWithCredentials();
  data = dir('data');
  fs.mkdirSync(data);
  await makeTree(data);
  ok(['init'], env(source(), SOURCE_PW));
  ok(['backup', data], env(source(), SOURCE_PW));
  ok(['backup', '--tag', 'again', data], env(source(), SOURCE_PW));
});
after(async () => {
  await server?.stop();
  tmp?.cleanup();
});

test('S3 → S3: restores bit-exact, a second copy moves nothing, both check clean and compare equal', { skip: unavailable ?? false }, async () => {
  const start = requests().length;
  const sourceObjects = await objects(source());
  ok(['init', '--from-repo', source(), '--copy-chunker-params'], env(target(), TARGET_PW));
  const first = jsonMessage<{ snapshots_copied: number; blobs_copied: number; bytes_stored: number }>(ok(['copy', '--json'], env(target(), TARGET_PW)).stdout, 'summary');
  assert.equal(first.snapshots_copied, 2);
  assert.ok(first.blobs_copied > 10 && first.bytes_stored > 0, JSON.stringify(first));
  const targetPuts = (from: number) => requests(from).filter((r) => r.startsWith('PUT /scrate-copy-to/repo/'));
  assert.ok(targetPuts(start).some((r) => r.includes('/repo/data/')), 'the first copy stored packs in the target bucket');
  assert.deepEqual(await objects(source()), sourceObjects, 'nothing but locks is written to the source');

  const restored = dir('restored');
  ok(['restore', 'latest', '--target', restored], env(target(), TARGET_PW));
  assert.deepEqual(compareTrees(data, path.join(restored, data)), []);

  // The restore since the first copy has let its requests reach the log.
  const from = requests().length;
  const targetObjects = await objects(target());
  const again = jsonMessage<{ snapshots_copied: number; snapshots_skipped: number; blobs_copied: number; bytes_read: number }>(ok(['copy', '--json'], env(target(), TARGET_PW)).stdout, 'summary');
  assert.deepEqual([again.snapshots_copied, again.snapshots_skipped, again.blobs_copied, again.bytes_read], [0, 2, 0, 0]);
  assert.deepEqual(
    targetPuts(from).filter((r) => !r.includes('/repo/locks/')),
    [],
    'a second copy writes nothing but its lock',
  );
  assert.deepEqual(await objects(target()), targetObjects);

  for (const [repo, pw] of [[source(), SOURCE_PW], [target(), TARGET_PW]] as const) {
    const r = ok(['check', '--read-data'], env(repo, pw));
    assert.match(r.stdout, /; 0 error\(s\)/);
  }
  const compared = ok(['check', '--compare', source()], env(target(), TARGET_PW));
  assert.match(compared.stdout, /compared 2 snapshot\(s\) with .*: 2 equal by their root tree; 0 difference\(s\)/);
});
