/**
 * One local evaluation worker (a worker thread started by LocalBackend): opens the setup once, then scores the jobs
 * the backend posts, one at a time. Messages: in `{ id, job }`; out `{ type: 'ready' }`, `{ type: 'result', id,
 * outcome }`, or `{ type: 'error', id?, message, user }` (user: a UserError, the caller's to fix).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../errors.ts';
import { openSetup } from './setup.ts';
import type { ScoreJob, WorkerSetup } from './types.ts';

export interface ThreadWorkerData {
  setup: WorkerSetup;
  name: string;
}

export type ThreadMessage =
  | { type: 'ready' }
  | { type: 'result'; id: number; outcome: import('./types.ts').ScoreOutcome }
  | { type: 'error'; id?: number; message: string; user: boolean };

const port = parentPort!;
const { setup, name } = workerData as ThreadWorkerData;
const send = (m: ThreadMessage) => port.postMessage(m);
const failure = (e: unknown, id?: number): ThreadMessage => ({ type: 'error', ...(id !== undefined ? { id } : {}), message: (e as Error)?.message ?? String(e), user: isUserError(e) });

try {
  const opened = await openSetup(setup, { worker: name });
  port.on('message', async (m: { id: number; job: ScoreJob }) => {
    try {
      send({ type: 'result', id: m.id, outcome: await opened.score(m.job) });
    } catch (e) {
      send(failure(e, m.id));
    }
  });
  send({ type: 'ready' });
} catch (e) {
  send(failure(e));
}
