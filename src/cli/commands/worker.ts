import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { UserError } from '../../errors.ts';

interface Args extends GlobalOptions {
  queue: string;
  concurrency: number;
  threads?: number;
  'lock-ms': number;
}

export const workerCommand: CommandModule<GlobalOptions, Args> = {
  command: 'worker',
  describe: 'Evaluate policies for the searches that use a Redis queue (BullMQ)',
  builder: (y) =>
    y
      .option('queue', { type: 'string', demandOption: true, describe: 'The Redis server of the searches, redis://HOST:PORT' })
      .option('concurrency', { type: 'number', default: 1, describe: 'Jobs scored at once by this process' })
      .option('threads', { type: 'number', describe: 'onnxruntime threads per evaluation (default: TRTMIX_THREADS, else 2)' })
      .option('lock-ms', { type: 'number', default: 30_000, describe: 'Lock of an active job: if this worker is killed, its job is scored elsewhere after about twice this' })
      .epilogue('The worker reads the model and data at the paths the search gives (share that folder at the same path) and checks their sha256; a worker of another trtmix version, or with other files, refuses the search (exit 2) and leaves the job for another worker. Ctrl-C or SIGTERM: finish the current job, then exit 0 (twice: at once; the job goes back to the queue).')
      .example([
        ['$0 worker --queue redis://10.0.0.5:6379', 'Serve every search that uses this Redis'],
        ['$0 worker --queue redis://10.0.0.5:6379 --concurrency 2 --threads 8', 'Two jobs at once, 8 onnxruntime threads each (a 16-core machine)'],
      ]) as any,
  handler: async (args) => {
    for (const k of ['concurrency', 'threads', 'lock-ms'] as const) {
      const v = args[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new UserError(`--${k} must be a whole number >= 1, got ${v}`);
    }
    // Read by every onnxruntime session this process creates (src/onnx/runtime.ts).
    if (args.threads !== undefined) process.env.TRTMIX_THREADS = String(args.threads);
    const { runQueueWorker } = await import('../../parallel/queue.ts');
    const log = (m: string) => { if (!args.quiet) process.stderr.write(`trtmix worker: ${m}\n`); };
    const stop = new AbortController();
    const abandon = new AbortController();
    let signals = 0;
    const onSignal = () => {
      if (signals++ === 0) {
        log('stopping after the current job (again to stop now; the job goes back to the queue)');
        stop.abort();
      } else abandon.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await runQueueWorker({ url: args.queue, concurrency: args.concurrency, lockMs: args['lock-ms'], log, signal: stop.signal, abandon: abandon.signal, ui: { quiet: true, log } });
      log('stopped');
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
