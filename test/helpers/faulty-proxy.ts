import net from 'node:net';

export interface FaultRates {
  /** Answer 503 Slow Down instead of forwarding the request. */
  slowDown: number;
  /** Answer 500 Internal Error instead of forwarding the request. */
  serverError: number;
  /** Close the connection without an answer. */
  drop: number;
  /** Forward the request, then cut the answer off part-way. */
  truncate: number;
  /** Hold the request back for `delayMs` before forwarding it. */
  delay: number;
  delayMs: number;
  /** Faults the first requests get, one each in this order, before chance decides: so that every kind happens at least once however few requests a run makes. */
  first?: FaultKind[];
}

export type FaultKind = 'slowDown' | 'serverError' | 'drop' | 'truncate' | 'delay';
const KINDS: FaultKind[] = ['slowDown', 'serverError', 'drop', 'truncate', 'delay'];

/** A draw that lands in the middle of `kind`'s share of [0, 1), as the checks below consume it. */
function drawFor(rates: FaultRates, kind: FaultKind): number {
  let before = 0;
  for (const k of KINDS) {
    if (k === kind) return before + rates[k] / 2;
    before += rates[k];
  }
  return before;
}

export interface FaultStats {
  requests: number;
  slowDown: number;
  serverError: number;
  drop: number;
  truncate: number;
  delay: number;
}

const METHOD = /^(GET|PUT|HEAD|POST|DELETE) /;

function errorResponse(status: number, code: string): string {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;
  return `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * A TCP proxy on loopback between a client and an HTTP server that injects the faults real
 * networks and object stores produce. A new request is recognised by a client chunk that
 * starts with an HTTP method (request bodies here are encrypted, so they never do by chance).
 */
export async function startFaultyProxy(target: { host: string; port: number }, rates: FaultRates, random: () => number = Math.random) {
  const stats: FaultStats = { requests: 0, slowDown: 0, serverError: 0, drop: 0, truncate: 0, delay: 0 };
  const sockets = new Set<net.Socket>();
  let enabled = true;

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => sockets.delete(client) && upstream.destroy());
    upstream.on('close', () => sockets.delete(upstream) && client.destroy());
    client.on('error', close);
    upstream.on('error', close);

    /** Bytes of the answer still allowed through, when the current answer is to be cut off. */
    let answerBudget = Infinity;
    let queue: Promise<void> = Promise.resolve();

    client.on('data', (chunk: Buffer) => {
      queue = queue.then(async () => {
        if (client.destroyed) return;
        if (enabled && METHOD.test(chunk.subarray(0, 8).toString('latin1'))) {
          stats.requests++;
          const forced = rates.first?.[stats.requests - 1];
          let r = forced ? drawFor(rates, forced) : random();
          if ((r -= rates.slowDown) < 0) {
            stats.slowDown++;
            client.end(errorResponse(503, 'SlowDown'));
            upstream.destroy();
            return;
          }
          if ((r -= rates.serverError) < 0) {
            stats.serverError++;
            client.end(errorResponse(500, 'InternalError'));
            upstream.destroy();
            return;
          }
          if ((r -= rates.drop) < 0) {
            stats.drop++;
            close();
            return;
          }
          if ((r -= rates.truncate) < 0) {
            stats.truncate++;
            answerBudget = Math.floor(random() * 400);
          } else if ((r -= rates.delay) < 0) {
            stats.delay++;
            await new Promise((res) => setTimeout(res, rates.delayMs));
          }
        }
        upstream.write(chunk);
      });
    });

    upstream.on('data', (chunk: Buffer) => {
      if (answerBudget === Infinity) {
        client.write(chunk);
        return;
      }
      client.write(chunk.subarray(0, answerBudget), () => close());
      answerBudget = 0;
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    /** Stops injecting faults; the proxy keeps forwarding. */
    calm(): void {
      enabled = false;
    },
    async stop(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
