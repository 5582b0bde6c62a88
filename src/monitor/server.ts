/**
 * The HTTP endpoint Prometheus scrapes while a command runs: GET /metrics on 127.0.0.1 only (a search's data and
 * layer names are nobody else's business; put a proxy in front to publish it). The server never keeps the process
 * alive: it is unref'd, and close() also drops the keep-alive connections a scraper holds open.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../errors.ts';

export const METRICS_HOST = '127.0.0.1';
export const METRICS_PATH = '/metrics';

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  /** http://127.0.0.1:PORT/metrics */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `--metrics-port` as given: 0 lets the system choose a free port (the URL says which). */
export function checkMetricsPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--metrics-port must be a port number from 1 to 65535 (or 0 for any free port), got ${String(port)}`);
  }
  return port;
}

export async function startMetricsServer(source: MetricsSource, port: number): Promise<MetricsServer> {
  checkMetricsPort(port);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`not found; the metrics are at ${METRICS_PATH}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('use GET\n');
      return;
    }
    source.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': source.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${(e as Error)?.message ?? String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, port)));
    server.listen(port, METRICS_HOST, () => resolve());
  });
  server.unref();
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${METRICS_HOST}:${actual}${METRICS_PATH}`,
    port: actual,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function listenError(e: NodeJS.ErrnoException, port: number): Error {
  if (e.code === 'EADDRINUSE') return new UserError(`--metrics-port ${port}: the port is already in use on ${METRICS_HOST}; choose another port, or 0 for any free one`, { cause: e });
  if (e.code === 'EACCES') return new UserError(`--metrics-port ${port}: not allowed to listen on that port (ports below 1024 need privileges); choose one from 1024 to 65535`, { cause: e });
  return e;
}
