/**
 * A real S3-compatible server for tests: OpenStack Swift (Debian's packages, installed by
 * .ci/install-swift) with its s3api middleware and tempauth, plus memcached, all on free loopback
 * ports, configured and stored in a temporary directory that stop() removes.
 *
 * Every server runs in the foreground (`workers = 0`) as its own process group, so stop() (or
 * the process's exit) can end it and anything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface S3Server {
  /** Path-style endpoint, e.g. http://127.0.0.1:40123 (use forcePathStyle: true). */
  endpoint: string;
  /** s3api's `location`: the region that SigV4 requests must be signed for. */
  region: string;
  /** tempauth's `user_test_tester = testing .admin`: access key "test:tester". */
  accessKeyId: string;
  secretAccessKey: string;
  /** The temporary directory holding configuration, rings, data and logs. */
  dir: string;
  /** Ports of the proxy (the endpoint), the three storage servers and memcached. */
  ports: { proxy: number; account: number; container: number; object: number; memcached: number };
  /** Process IDs of the running servers and memcached (for benchmarks: CPU time, pinning). */
  pids(): number[];
  /** The last lines of every server's log (stderr), for a failing test's message. */
  logTail(lines?: number): string;
  /** Ends every process (SIGTERM, then SIGKILL after 5 s) and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** How long to wait for every server to answer /healthcheck. Default 30 s. */
  timeoutMs?: number;
}

const SERVERS = ['proxy', 'account', 'container', 'object'] as const;
type Server = (typeof SERVERS)[number];

const ACCESS_KEY = 'test:tester';
const SECRET_KEY = 'testing';
const REGION = 'us-east-1';

function findOnPath(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

interface Tools {
  python: string;
  memcached: string;
}

function findTools(): Tools | string {
  const missing: string[] = [];
  for (const s of SERVERS) if (!findOnPath(`swift-${s}-server`)) missing.push(`swift-${s}-server`);
  const memcached = findOnPath('memcached');
  if (!memcached) missing.push('memcached');
  if (missing.length) return `OpenStack Swift is not installed (missing ${missing.join(', ')}; run .ci/install-swift)`;
  // Swift's scripts name the Python that has the swift package (a pyenv or venv python3 on PATH
  // may not): use theirs.
  const proxy = findOnPath('swift-proxy-server')!;
  const firstLine = fs.readFileSync(proxy, 'utf8').split('\n', 1)[0] ?? '';
  const python = /^#!\s*(\S+)/.exec(firstLine)?.[1] ?? '/usr/bin/python3';
  return { python, memcached: memcached! };
}

/** Why the S3 server can't be started here (for `{ skip: reason }`), or null when it can. */
export function s3ServerUnavailable(): string | null {
  const t = findTools();
  return typeof t === 'string' ? t : null;
}

/**
 * For a test file that needs the server: why it cannot run here (null when it can); under CI
 * a missing server is a failure, not a skip. The AWS SDK's Node-version notice, which the CLI
 * silences itself, is silenced for SDK clients the test loads too.
 */
export function s3ServerForTests(): string | null {
  const unavailable = s3ServerUnavailable();
  if (unavailable && process.env['CI']) throw new Error(`the S3 server is needed under CI: ${unavailable}`);
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  return unavailable;
}

/** Reserves `n` distinct free loopback ports (held open together, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/**
 * Runs a Swift WSGI server like /usr/bin/swift-*-server does, but reading swift.conf (hash
 * prefix/suffix, storage policies, constraints) from our directory instead of /etc/swift.
 * Usage: launch.py SWIFT_DIR APP_SECTION CONF_FILE
 */
const LAUNCHER = `import sys
from swift.common import utils
utils.set_swift_dir(sys.argv[1])
from swift.common import constraints, storage_policy
storage_policy.reload_storage_policies()
constraints.reload_constraints()
from swift.common.wsgi import run_wsgi
kwargs = {}
if sys.argv[2] == 'object-server':
    from swift.obj import server
    kwargs['global_conf_callback'] = server.global_conf_callback
sys.exit(run_wsgi(sys.argv[3], sys.argv[2], verbose=True, **kwargs))
`;

/**
 * Builds the three rings in one Python process with the library behind swift-ring-builder
 * (`create PART_POWER 1 1`, `add r1z1-127.0.0.1:PORT/d1 100`, `rebalance`): nine
 * swift-ring-builder runs would cost ~4 s of interpreter start-ups.
 * Usage: rings.py SWIFT_DIR account=PORT container=PORT object=PORT
 */
const RING_BUILDER = `import os, sys
from swift.common.ring import RingBuilder
swift_dir = sys.argv[1]
for arg in sys.argv[2:]:
    name, port = arg.split('=')
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
                     'replication_ip': '127.0.0.1', 'replication_port': int(port),
                     'device': 'd1', 'weight': 100, 'meta': ''})
    builder.rebalance()
    builder.get_ring().save(os.path.join(swift_dir, name + '.ring.gz'))
    builder.save(os.path.join(swift_dir, name + '.builder'))
`;

function storageConf(server: Exclude<Server, 'proxy'>, dir: string, port: number, user: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user}
swift_dir = ${dir}
devices = ${path.join(dir, 'srv')}
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_name = ${server}-server
log_level = INFO
# No /dev/log: keep Swift's syslog handler off the host's syslog (it falls back to UDP on
# localhost); what matters is on stderr, which goes to logs/${server}.log.
log_address = ${path.join(dir, 'no-syslog')}

[pipeline:main]
pipeline = healthcheck ${server}-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:${server}-server]
use = egg:swift#${server}
`;
}

/** Pipeline filters that need no settings: their sections are generated. */
const PLAIN_FILTERS = ['catch_errors', 'gatekeeper', 'healthcheck', 'proxy-logging', 'listing_formats', 'bulk', 'tempurl', 'ratelimit', 'copy', 'container-quotas', 'account-quotas', 'slo', 'dlo', 'versioned_writes', 'symlink'];

function proxyConf(dir: string, port: number, memcachedPort: number, user: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user}
swift_dir = ${dir}
log_name = proxy-server
log_level = INFO
log_address = ${path.join(dir, 'no-syslog')}

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# One replica on one device: don't let a hiccup error-limit the only node for a minute.
error_suppression_limit = 1000

[filter:s3api]
use = egg:swift#s3api
location = ${REGION}
# Path-style only (no storage_domain); SigV4 and SigV2 both accepted, as Swift does by default.
dns_compliant_bucket_names = true
max_bucket_listing = 1000
max_multi_delete_objects = 1000
allow_multipart_uploads = true
s3_acl = false

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET_KEY} .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachedPort}

${PLAIN_FILTERS.map((f) => `[filter:${f}]\nuse = egg:swift#${f.replace('-', '_')}\n`).join('\n')}`;
}

function tail(file: string, lines: number): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthcheck', timeout: 2000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts memcached and Swift's four servers; resolves once all of them answer. */
export async function startS3Server(opts: StartOptions = {}): Promise<S3Server> {
  const tools = findTools();
  if (typeof tools === 'string') throw new Error(tools);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const user = os.userInfo().username;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scrate-s3-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  fs.mkdirSync(path.join(dir, 'srv', 'd1'), { recursive: true });

  const children: { name: string; child: ChildProcess; exited: boolean; code: number | null; signal: string | null }[] = [];
  const logFiles: string[] = [];
  let stopped = false;

  const logTail = (lines = 30) =>
    logFiles
      .map((f) => `--- ${path.basename(f)} ---\n${tail(f, lines) || '(empty)'}`)
      .join('\n');

  const killAll = (signal: NodeJS.Signals) => {
    for (const c of children) {
      if (c.exited || c.child.pid === undefined) continue;
      try {
        process.kill(-c.child.pid, signal); // the whole process group
      } catch {
        // already gone
      }
    }
  };
  // Should the test process exit without stop() (a crash, an uncaught assertion), don't leave
  // daemons behind.
  const onExit = () => {
    killAll('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killAll('SIGTERM');
    const deadline = Date.now() + 5000;
    while (children.some((c) => !c.exited) && Date.now() < deadline) await sleep(50);
    if (children.some((c) => !c.exited)) {
      killAll('SIGKILL');
      const hard = Date.now() + 5000;
      while (children.some((c) => !c.exited) && Date.now() < hard) await sleep(50);
    }
    process.removeListener('exit', onExit);
    await fs.promises.rm(dir, { recursive: true, force: true });
  };

  const launch = (name: string, cmd: string, args: string[]) => {
    const logFile = path.join(logDir, `${name}.log`);
    logFiles.push(logFile);
    const fd = fs.openSync(logFile, 'a');
    try {
      const child = spawn(cmd, args, { cwd: dir, detached: true, stdio: ['ignore', fd, fd] });
      const entry = { name, child, exited: false, code: null as number | null, signal: null as string | null };
      child.on('exit', (code, signal) => {
        entry.exited = true;
        entry.code = code;
        entry.signal = signal;
      });
      child.on('error', (err) => {
        entry.exited = true;
        fs.appendFileSync(logFile, `spawn ${cmd} failed: ${err.message}\n`);
      });
      child.unref();
      children.push(entry);
    } finally {
      fs.closeSync(fd);
    }
  };

  const run = (name: string, cmd: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const logFile = path.join(logDir, `${name}.log`);
      logFiles.push(logFile);
      const fd = fs.openSync(logFile, 'a');
      const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', fd, fd] });
      fs.closeSync(fd);
      child.on('error', reject);
      child.on('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`${name} exited with ${code ?? signal}`)),
      );
    });

  try {
    const [proxy, account, container, object, memcached] = await freePorts(5);
    const ports = { proxy: proxy!, account: account!, container: container!, object: object!, memcached: memcached! };

    const hex = () => randomBytes(16).toString('hex');
    fs.writeFileSync(
      path.join(dir, 'swift.conf'),
      `[swift-hash]\nswift_hash_path_suffix = ${hex()}\nswift_hash_path_prefix = ${hex()}\n\n` +
        `[storage-policy:0]\nname = Policy-0\ndefault = yes\n\n[swift-constraints]\n`,
    );
    fs.writeFileSync(path.join(dir, 'proxy-server.conf'), proxyConf(dir, ports.proxy, ports.memcached, user));
    for (const s of ['account', 'container', 'object'] as const) {
      fs.writeFileSync(path.join(dir, `${s}-server.conf`), storageConf(s, dir, ports[s], user));
    }
    fs.writeFileSync(path.join(dir, 'launch.py'), LAUNCHER);
    fs.writeFileSync(path.join(dir, 'rings.py'), RING_BUILDER);

    // memcached starts while the rings are built.
    launch('memcached', tools.memcached, ['-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0', '-m', '16', '-t', '1', '-u', user]);
    await run('rings', tools.python, [
      path.join(dir, 'rings.py'),
      dir,
      `account=${ports.account}`,
      `container=${ports.container}`,
      `object=${ports.object}`,
    ]);
    for (const s of SERVERS) {
      launch(s, tools.python, [path.join(dir, 'launch.py'), dir, `${s}-server`, path.join(dir, `${s}-server.conf`)]);
    }

    const deadline = Date.now() + timeoutMs;
    const pending = new Set<string>(['memcached', ...SERVERS]);
    while (pending.size) {
      const dead = children.find((c) => c.exited);
      if (dead) throw new Error(`${dead.name} exited during startup (${dead.code ?? dead.signal})`);
      if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms: ${[...pending].join(', ')}`);
      await Promise.all(
        [...pending].map(async (name) => {
          const ok = name === 'memcached' ? await listening(ports.memcached) : await healthy(ports[name as Server]);
          if (ok) pending.delete(name);
        }),
      );
      if (pending.size) await sleep(100);
    }

    return {
      endpoint: `http://127.0.0.1:${ports.proxy}`,
      region: REGION,
      accessKeyId: ACCESS_KEY,
      secretAccessKey: SECRET_KEY,
      dir,
      ports,
      pids: () => children.filter((c) => !c.exited && c.child.pid !== undefined).map((c) => c.child.pid!),
      logTail,
      stop,
    };
  } catch (err) {
    const message = `Swift S3 server failed to start: ${(err as Error).message}\n${logTail()}`;
    await stop();
    throw new Error(message, { cause: err });
  }
}

/**
 * Starts the server and points the AWS SDK's default credential chain at it (as a user's
 * environment would), for suites that open S3 repositories in-process.
 */
export async function startS3ServerWithCredentials(): Promise<S3Server> {
  const server = await startS3Server();
  process.env['AWS_ACCESS_KEY_ID'] = server.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = server.secretAccessKey;
  return server;
}
