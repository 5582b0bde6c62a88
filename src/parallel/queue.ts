/**
 * Evaluations on many machines: a BullMQ queue on Redis. The search is the producer (QueueBackend), every
 * `trtmix worker --queue redis://HOST:PORT` a consumer (runQueueWorker).
 *
 * What travels through Redis, and what does not:
 * - The setup (a WorkerSetup: options with absolute paths, file hashes, the producer's calibration statistics, FP32
 *   score) is stored once, as JSON, under `trtmix:setup:<sha256 of that JSON>`. Jobs carry only that setup id, the
 *   policy and subset/full: a job is a few hundred bytes.
 * - The model and data are never copied through Redis: models are tens to hundreds of MB (more with external data),
 *   data sets as large, and Redis keeps everything in memory. Workers read them at the paths the setup names (a shared
 *   folder mounted at the same path on every machine, or identical copies) and check their sha256 before scoring; a
 *   worker with other files, or another trtmix version, refuses the setup (exit 2, one line) and puts the job back.
 * - Job ids are deterministic: setup id + subset/full + a hash of the policy. A job added twice is one job (BullMQ keeps
 *   the first), a retried one keeps its id, and the producer waits on one promise per id, so a result resolves once.
 * - A worker killed mid-job stops renewing its lock; after lockDuration another worker's stalled check puts the job
 *   back in the queue and it is scored again (jobs are pure: same setup, same policy, same score). The producer just
 *   waits; it never times a job out.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, QueueEvents, Worker, WaitingError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { UserError, isUserError } from '../errors.ts';
import type { ExperimentUi } from '../cli/experiment.ts';
import type { LayerPolicy } from '../policy.ts';
import { decodeSetup, encodeSetup, openSetup, setupId, type OpenedSetup } from './setup.ts';
import type { EvaluationBackend, ScoreJob, ScoreOutcome, WorkerSetup } from './types.ts';

/** The queue's name and the prefix of every key trtmix writes (BullMQ's too). */
export const QUEUE_NAME = 'evaluations';
const PREFIX = 'trtmix';
const setupKey = (id: string) => `${PREFIX}:setup:${id}`;
const refusalsKey = (id: string) => `${PREFIX}:refused:${id}`;
/** A live worker's heartbeat key (expires when the worker stops renewing it). */
const heartbeatKey = (name: string) => `${PREFIX}:worker:${name}`;
const HEARTBEAT_MS = 2_000;
/** Lock of an active job; a worker that stops renewing it (killed) loses the job to the stalled check after this. */
export const DEFAULT_LOCK_MS = 30_000;
/** How often the producer refreshes its count of live workers and looks for refusals. */
const POLL_MS = 2_000;
/** How long an unreachable Redis is tried at start before the one-line error. */
const CONNECT_TIMEOUT_MS = 3_000;
/** A job that failed (a bug in a worker, not a refusal) is tried this often before the search sees the error. */
const ATTEMPTS = 3;
/** Stalls (killed workers) a job survives before BullMQ fails it. */
const MAX_STALLED = 5;

interface JobData {
  setup: string;
  policy: LayerPolicy;
  subset: boolean;
}

/** `redis://HOST:PORT`, checked: anything else is the user's to fix. */
export function parseQueueUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--queue ${url} is not a URL; give the Redis server as redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UserError(`--queue ${url} is not a Redis URL; give it as redis://HOST:PORT`);
  if (!u.hostname) throw new UserError(`--queue ${url} names no host; give it as redis://HOST:PORT`);
  return u;
}

/**
 * Connects once with no retries and a short timeout: ioredis would retry forever, and a search or worker pointed at
 * the wrong address should say so at once.
 */
export async function probe(url: string): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // connect() rejects with "Connection is closed"; the socket's own error (ECONNREFUSED, ENOTFOUND) says why.
  let cause: Error | undefined;
  r.on('error', (e) => { cause ??= e; });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const err = (cause ?? e) as NodeJS.ErrnoException;
    const why = err.code ?? (/timeout/i.test(err.message) ? 'ETIMEDOUT' : err.message);
    throw new UserError(`cannot reach Redis at ${url} (${why}); start redis-server or fix --queue`);
  } finally {
    r.disconnect();
  }
}

/** The connection BullMQ uses after the probe: it may retry (a Redis restart mid-search is waited out). */
async function connect(url: string): Promise<Redis> {
  parseQueueUrl(url);
  await probe(url);
  const r = new Redis(url, { maxRetriesPerRequest: null });
  r.on('error', () => {}); // reconnects; BullMQ reports what matters
  return r;
}

/** A policy as canonical text (layers sorted, defaults left out), so that equal policies get one job id. */
function canonicalPolicy(policy: LayerPolicy): string {
  return JSON.stringify(Object.keys(policy).sort().map((name) => {
    const d = policy[name];
    const c = d.precision === 'int8' || d.precision === 'mixed' ? d.calibration : undefined;
    return [name, d.precision, c?.method ?? null, c?.percentile ?? null];
  }));
}

/** setup id + subset/full + policy hash; BullMQ ids may not hold ':'. */
export function queueJobId(setup: string, job: ScoreJob): string {
  const policy = createHash('sha256').update(canonicalPolicy(job.policy)).digest('hex').slice(0, 32);
  return `${setup.slice(0, 16)}-${job.subset ? 'subset' : 'full'}-${policy}`;
}

/** Workers whose heartbeat has not expired. */
export async function liveWorkers(connection: Redis): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await connection.scan(cursor, 'MATCH', heartbeatKey('*'), 'COUNT', 1000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

export interface QueueBackendOptions {
  url: string;
  setup: WorkerSetup;
  log?(message: string): void;
  /** How often the worker count and refusals are polled (ms). */
  pollMs?: number;
}

/** The producer: adds jobs and waits for their results; the workers are `trtmix worker` processes anywhere. */
export class QueueBackend implements EvaluationBackend {
  readonly description: string;
  readonly setupId: string;
  private readonly inflight = new Map<string, Promise<ScoreOutcome>>();
  private readonly refusalsSeen = new Set<string>();
  private liveWorkers = 1;
  private timer?: NodeJS.Timeout;

  private constructor(
    private readonly connection: Redis,
    readonly queue: Queue,
    private readonly events: QueueEvents,
    setup: string,
    private readonly o: QueueBackendOptions,
  ) {
    this.setupId = setup;
    this.description = `queue ${o.url}`;
  }

  /** Workers seen on the queue (at least 1, so that a search started before its workers still proposes). */
  get workers(): number {
    return this.liveWorkers;
  }

  static async open(o: QueueBackendOptions): Promise<QueueBackend> {
    const connection = await connect(o.url);
    const text = encodeSetup(o.setup);
    const id = setupId(o.setup);
    await connection.set(setupKey(id), text);
    const queue = new Queue(QUEUE_NAME, { connection, prefix: PREFIX });
    const eventsConnection = connection.duplicate();
    eventsConnection.on('error', () => {});
    const events = new QueueEvents(QUEUE_NAME, { connection: eventsConnection, prefix: PREFIX });
    queue.on('error', () => {});
    events.on('error', () => {});
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const b = new QueueBackend(connection, queue, events, id, o);
    await b.poll();
    b.timer = setInterval(() => void b.poll().catch(() => {}), o.pollMs ?? POLL_MS);
    b.timer.unref();
    return b;
  }

  score(job: ScoreJob): Promise<ScoreOutcome> {
    const jobId = queueJobId(this.setupId, job);
    let p = this.inflight.get(jobId);
    if (!p) {
      p = this.run(jobId, job);
      this.inflight.set(jobId, p);
      // A failed job may be asked for again (and then added again); a finished one is answered from the map.
      p.catch(() => this.inflight.delete(jobId));
    }
    return p;
  }

  private async run(jobId: string, job: ScoreJob): Promise<ScoreOutcome> {
    const data: JobData = { setup: this.setupId, policy: job.policy, subset: job.subset };
    const added = await this.queue.add('score', data, {
      jobId,
      attempts: ATTEMPTS,
      // Kept a while, so that a producer that asks again (a resumed or repeated search) gets the stored result.
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 3600 },
    });
    try {
      return (await added.waitUntilFinished(this.events)) as ScoreOutcome;
    } catch (e) {
      throw new Error(`evaluation job ${jobId} failed on the workers: ${(e as Error).message}`);
    }
  }

  /** Live workers (BullMQ's client list) and refusals of this setup, each logged once. */
  private async poll(): Promise<void> {
    this.liveWorkers = Math.max(1, await liveWorkers(this.connection));
    const refusals = await this.connection.hgetall(refusalsKey(this.setupId));
    for (const [worker, message] of Object.entries(refusals)) {
      if (this.refusalsSeen.has(worker)) continue;
      this.refusalsSeen.add(worker);
      this.o.log?.(`worker ${worker} refused this search: ${message}`);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.events.close();
    await this.queue.close();
    this.connection.disconnect();
  }
}

export interface QueueWorkerOptions {
  url: string;
  concurrency?: number;
  /** ms; a killed worker's job is back in the queue after about this (and the stalled interval, the same). */
  lockMs?: number;
  /** One line per job (unless quiet). */
  log(message: string): void;
  ui?: ExperimentUi;
  /** Aborted: stop taking jobs, finish the active ones, resolve. */
  signal?: AbortSignal;
  /** Aborted: stop at once, abandoning the active jobs (the stalled check gives them to another worker). */
  abandon?: AbortSignal;
}

/**
 * A consumer: takes jobs, opens each job's setup once (checking version and file hashes), scores. Resolves when
 * stopped through `signal`; rejects with a UserError when Redis cannot be reached or a setup is refused (after
 * putting the refused job back for another worker).
 */
export async function runQueueWorker(o: QueueWorkerOptions): Promise<void> {
  const connection = await connect(o.url);
  const name = `${hostname()}:${process.pid}`;
  o.log(`serving ${o.url} as ${name}`);
  const lockMs = o.lockMs ?? DEFAULT_LOCK_MS;
  // The last two setups opened (a worker may serve two searches that alternate); each is an experiment in memory.
  const opened = new Map<string, Promise<OpenedSetup>>();
  let refused: UserError | undefined;

  const open = (id: string): Promise<OpenedSetup> => {
    let p = opened.get(id);
    if (!p) {
      p = (async () => {
        const text = await connection.get(setupKey(id));
        if (text === null) throw new Error(`the setup ${id.slice(0, 12)} of this job is not in Redis (flushed?)`);
        return openSetup(decodeSetup(text), { worker: name, ui: o.ui });
      })();
      opened.set(id, p);
      p.catch(() => opened.delete(id));
      if (opened.size > 2) opened.delete(opened.keys().next().value!);
    }
    return p;
  };

  let worker: Worker<JobData, ScoreOutcome>;
  const processor = async (job: Job<JobData, ScoreOutcome>, token?: string): Promise<ScoreOutcome> => {
    let setup: OpenedSetup;
    try {
      if (refused) throw refused;
      setup = await open(job.data.setup);
    } catch (e) {
      if (!isUserError(e)) throw e;
      // Not this worker's job to score: back to the queue for a worker that can, and this one stops.
      if (!refused) {
        refused = e;
        await connection.hset(refusalsKey(job.data.setup), name, e.message);
        setImmediate(() => void worker.close());
      }
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const outcome = await setup.score({ policy: job.data.policy, subset: job.data.subset });
    o.log(`${job.id}: ${job.data.subset ? 'subset' : 'full'} score ${outcome.score}${outcome.dropBound !== undefined ? ` (drop bound ${outcome.dropBound})` : ''} in ${outcome.seconds.toFixed(2)} s`);
    return outcome;
  };

  worker = new Worker<JobData, ScoreOutcome>(QUEUE_NAME, processor, {
    connection,
    prefix: PREFIX,
    concurrency: o.concurrency ?? 1,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: MAX_STALLED,
    name,
    autorun: false,
  });
  let lastError = '';
  worker.on('error', (e) => {
    if (e.message !== lastError) o.log(`queue error: ${e.message}`);
    lastError = e.message;
  });
  const beat = () => void connection.set(heartbeatKey(name), String(Date.now()), 'PX', 3 * HEARTBEAT_MS).catch(() => {});
  beat();
  const heartbeat = setInterval(beat, HEARTBEAT_MS);
  const stop = () => void worker.close();
  const kill = () => void worker.close(true);
  o.signal?.addEventListener('abort', stop);
  o.abandon?.addEventListener('abort', kill);
  try {
    await worker.run();
  } finally {
    o.signal?.removeEventListener('abort', stop);
    o.abandon?.removeEventListener('abort', kill);
    clearInterval(heartbeat);
    await worker.close();
    await connection.del(heartbeatKey(name)).catch(() => {});
    connection.disconnect();
  }
  if (refused) throw refused;
}
