/**
 * Where a search's evaluations run: worker threads of this process (--jobs N) or `trtmix worker` processes reached
 * through a BullMQ queue (--queue redis://HOST:PORT). Without either the search scores in process, one job at a time.
 */
import { availableParallelism, freemem } from 'node:os';
import type { EvaluationBackend, WorkerSetup } from './types.ts';
import { LocalBackend } from './local.ts';
import { QueueBackend } from './queue.ts';

export type { EvaluationBackend, ScoreJob, ScoreOutcome, WorkerSetup } from './types.ts';

export interface OpenBackendOptions {
  jobs: number;
  queue?: string;
  setup: WorkerSetup;
  log(message: string): void;
}

/** The backend of --jobs / --queue; undefined when the search scores in process (one job, no queue). */
export async function openBackend(o: OpenBackendOptions): Promise<EvaluationBackend | undefined> {
  if (o.queue !== undefined) return QueueBackend.open({ url: o.queue, setup: o.setup, log: o.log });
  if (o.jobs <= 1) return undefined;
  // Each thread gets its share of the cores for onnxruntime's intra-op pool (scores do not depend on it:
  // bench/parallel-threads.ts checks they are bit-identical at 1, 2 and 4 threads).
  const threads = Math.max(1, Math.floor(availableParallelism() / o.jobs));
  return LocalBackend.open(o.setup, { jobs: o.jobs, threads, log: o.log });
}

/**
 * A rough upper bound of one worker's memory: the model's weights a few times over (the base model, the rewritten
 * graph's encoding, onnxruntime's copy and its arena) plus a fixed share for Node, the data and the FP32 reference.
 */
export function workerBytes(modelBytes: number): number {
  return 4 * modelBytes + 300 * 2 ** 20;
}

/**
 * The default of --jobs: one worker per core, at most one per proposal of a round (more could never be busy), and no
 * more than half the free memory holds; with the reason the search prints.
 */
export function autoJobs(o: { proposals: number; modelBytes: number; cores?: number; freeMemBytes?: number }): { jobs: number; why: string } {
  const cores = o.cores ?? availableParallelism();
  const free = o.freeMemBytes ?? freemem();
  const byMemory = Math.max(1, Math.floor(free / 2 / workerBytes(o.modelBytes)));
  const jobs = Math.max(1, Math.min(o.proposals, cores, byMemory));
  const limit = jobs === o.proposals ? `--proposals ${o.proposals}` : jobs === cores ? `${cores} cores` : `half the free memory (${(free / 2 ** 30).toFixed(1)} GiB) at ~${(workerBytes(o.modelBytes) / 2 ** 20).toFixed(0)} MiB a worker`;
  return { jobs, why: `${jobs} worker thread${jobs === 1 ? '' : 's'}: limited by ${limit}` };
}
