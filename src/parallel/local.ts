/**
 * Local evaluation workers: N worker threads of this process, each with its own experiment (rebuilt from the setup
 * with the producer's calibration) and so its own onnxruntime sessions; the graph rewrite, session build, inference
 * and metric of a job all run in the worker. Jobs wait in a FIFO and go to whichever worker is idle. A worker that
 * dies gives its job back to the front of the FIFO and is replaced; a job that took down MAX_ATTEMPTS workers fails.
 */
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import type { EvaluationBackend, ScoreJob, ScoreOutcome, WorkerSetup } from './types.ts';
import type { ThreadMessage, ThreadWorkerData } from './thread-worker.ts';

const ENTRY = new URL('./thread-entry.mjs', import.meta.url);
const MAX_ATTEMPTS = 3;

interface Pending {
  id: number;
  job: ScoreJob;
  attempts: number;
  resolve(o: ScoreOutcome): void;
  reject(e: Error): void;
}

interface Slot {
  name: string;
  worker: Worker;
  busy?: Pending;
}

export interface LocalBackendOptions {
  jobs: number;
  /** onnxruntime intra-op threads of each worker (TRTMIX_THREADS in the worker). */
  threads: number;
  log?(message: string): void;
}

export class LocalBackend implements EvaluationBackend {
  readonly description: string;
  private readonly idle: Slot[] = [];
  private readonly slots = new Set<Slot>();
  private readonly fifo: Pending[] = [];
  private nextId = 0;
  private nextName = 0;
  private closed = false;

  private constructor(private readonly setup: WorkerSetup, private readonly o: LocalBackendOptions) {
    this.description = `${o.jobs} worker thread${o.jobs === 1 ? '' : 's'} (${o.threads} onnxruntime thread${o.threads === 1 ? '' : 's'} each)`;
  }

  get workers(): number {
    return this.o.jobs;
  }

  /** Starts the workers and waits until every one has opened the setup; a setup a worker refuses is a UserError here. */
  static async open(setup: WorkerSetup, o: LocalBackendOptions): Promise<LocalBackend> {
    const b = new LocalBackend(setup, o);
    try {
      await Promise.all(Array.from({ length: o.jobs }, () => b.start()));
    } catch (e) {
      await b.close();
      throw e;
    }
    return b;
  }

  score(job: ScoreJob): Promise<ScoreOutcome> {
    if (this.closed) return Promise.reject(new Error('the local evaluation workers are closed'));
    return new Promise((resolve, reject) => {
      this.fifo.push({ id: this.nextId++, job, attempts: 0, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const abandoned = [...this.fifo.splice(0), ...[...this.slots].flatMap((s) => (s.busy ? [s.busy] : []))];
    for (const p of abandoned) p.reject(new Error('the local evaluation workers were closed'));
    const all = [...this.slots];
    this.slots.clear();
    this.idle.length = 0;
    await Promise.all(all.map((s) => s.worker.terminate()));
  }

  /** One worker, resolved once it has opened the setup. */
  private start(): Promise<void> {
    const name = `thread ${++this.nextName}`;
    const data: ThreadWorkerData = { setup: this.setup, name };
    const worker = new Worker(ENTRY, { workerData: data, env: { ...process.env, TRTMIX_THREADS: String(this.o.threads) } });
    const slot: Slot = { name, worker };
    this.slots.add(slot);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'ready') {
          ready = true;
          this.idle.push(slot);
          resolve();
          this.dispatch();
        } else if (m.type === 'result' || m.id !== undefined) {
          const p = slot.busy;
          slot.busy = undefined;
          if (p) {
            if (m.type === 'result') p.resolve(m.outcome);
            else p.reject(m.user ? new UserError(m.message) : new Error(`${name}: ${m.message}`));
          }
          this.idle.push(slot);
          this.dispatch();
        } else {
          // The setup failed: the same setup would fail in every worker, so it is the caller's error.
          reject(m.user ? new UserError(m.message) : new Error(`${name} could not open the setup: ${m.message}`));
        }
      });
      const lost = (why: string) => {
        if (!this.slots.delete(slot)) return;
        const i = this.idle.indexOf(slot);
        if (i >= 0) this.idle.splice(i, 1);
        if (this.closed) return;
        if (!ready) { reject(new Error(`${name} stopped before it was ready (${why})`)); return; }
        const p = slot.busy;
        if (p) {
          p.attempts++;
          if (p.attempts >= MAX_ATTEMPTS) p.reject(new Error(`a job took down ${p.attempts} evaluation workers (last: ${why})`));
          else this.fifo.unshift(p);
        }
        this.o.log?.(`${name} stopped (${why}); starting another`);
        this.start().catch((e) => this.failAll(e as Error));
      };
      worker.on('error', (e) => lost(e.message));
      worker.on('exit', (code) => lost(`exit code ${code}`));
    });
  }

  private failAll(e: Error): void {
    for (const p of this.fifo.splice(0)) p.reject(e);
  }

  private dispatch(): void {
    while (!this.closed && this.idle.length > 0 && this.fifo.length > 0) {
      const slot = this.idle.shift()!;
      const p = this.fifo.shift()!;
      slot.busy = p;
      slot.worker.postMessage({ id: p.id, job: p.job });
    }
  }
}
