/**
 * The HTTP endpoint Prometheus scrapes while a command runs: GET /metrics on 127.0.0.1 only (a search's data and
 * layer names are nobody else's business; put a proxy in front to publish it).
 *
 * It runs in a worker thread, because the command's own thread is often busy for seconds at a time (encoding a large
 * model, a calibration histogram, a training step) and a scrape must not time out then. On each request the worker
 * asks the main thread for the current metrics and waits up to FRESH_WAIT_MS; if the main thread is busy it answers
 * with the last metrics it has, as of the last moment the main thread answered. The worker never keeps the process
 * alive (unref'd), and close() ends it, with the connections a scraper holds open.
 */
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';

export const METRICS_HOST = '127.0.0.1';
export const METRICS_PATH = '/metrics';
/** How long a scrape waits for the main thread before it gets the last metrics instead. */
export const FRESH_WAIT_MS = 1000;

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

// Plain JavaScript: the worker runs without the TypeScript loader the main thread has.
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const http = require('node:http');
let last = { body: '', contentType: w.contentType };
const waiting = new Map();
let next = 0;
parentPort.on('message', (m) => {
  if (m.type !== 'snapshot') return;
  last = m;
  const answer = waiting.get(m.id);
  if (answer) answer();
});
const text = (res, status, body, headers = {}) => res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(body);
const server = http.createServer((req, res) => {
  if ((req.url || '/').split('?')[0] !== w.path) return text(res, 404, 'not found; the metrics are at ' + w.path + '\\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'use GET\\n', { Allow: 'GET, HEAD' });
  const id = ++next;
  const answer = () => {
    clearTimeout(timer);
    waiting.delete(id);
    if (last.error !== undefined) return text(res, 500, last.error + '\\n');
    res.writeHead(200, { 'Content-Type': last.contentType }).end(req.method === 'HEAD' ? undefined : last.body);
  };
  const timer = setTimeout(answer, w.freshWaitMs);
  waiting.set(id, answer);
  parentPort.postMessage({ type: 'scrape', id });
});
server.on('error', (e) => parentPort.postMessage({ type: 'error', code: e.code, message: e.message }));
server.listen(w.port, w.host, () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
`;

type FromWorker = { type: 'scrape'; id: number } | { type: 'listening'; port: number } | { type: 'error'; code?: string; message: string };

export async function startMetricsServer(source: MetricsSource, port: number): Promise<MetricsServer> {
  checkMetricsPort(port);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { port, host: METRICS_HOST, path: METRICS_PATH, contentType: source.contentType, freshWaitMs: FRESH_WAIT_MS },
  });
  const snapshot = (id: number) => source.metrics().then(
    (body) => worker.postMessage({ type: 'snapshot', id, body, contentType: source.contentType }),
    (e: unknown) => worker.postMessage({ type: 'snapshot', id, error: (e as Error)?.message ?? String(e) }),
  );
  const actual = await new Promise<number>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'scrape') void snapshot(m.id);
      else if (m.type === 'listening') resolve(m.port);
      else reject(listenError(m, port));
    });
    worker.once('error', reject);
  }).catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  // A first snapshot, so that a scrape while the main thread is busy from the start still has the run's metrics.
  await snapshot(0);
  worker.unref();
  return {
    url: `http://${METRICS_HOST}:${actual}${METRICS_PATH}`,
    port: actual,
    close: async () => { await worker.terminate(); },
  };
}

function listenError(e: { code?: string; message: string }, port: number): Error {
  if (e.code === 'EADDRINUSE') return new UserError(`--metrics-port ${port}: the port is already in use on ${METRICS_HOST}; choose another port, or 0 for any free one`);
  if (e.code === 'EACCES') return new UserError(`--metrics-port ${port}: not allowed to listen on that port (ports below 1024 need privileges); choose one from 1024 to 65535`);
  return new Error(`the metrics server could not listen on ${METRICS_HOST}:${port}: ${e.message}`);
}
