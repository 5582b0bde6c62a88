/**
 * `--metrics-port P` for search, analyze and compare: the live Prometheus endpoint for as long as the command's work
 * runs, stopped when it ends (also when it fails). prom-client and the server load only when the option is given.
 */
import type { Argv } from 'yargs';
import type { RunMetrics } from './metrics.ts';

export interface MetricsArgs {
  'metrics-port'?: number;
}

export function withMetricsPort<T>(y: Argv<T>): Argv<T & MetricsArgs> {
  return y.option('metrics-port', {
    type: 'number',
    describe: 'Serve live Prometheus metrics at http://127.0.0.1:P/metrics while running (0: any free port; the URL is printed)',
  }) as Argv<T & MetricsArgs>;
}

/**
 * Runs `work` with the metrics of this run, served at --metrics-port when it is given (else `work` gets undefined).
 * A busy port is refused before any work starts.
 */
export async function monitored<T>(command: string, args: MetricsArgs, log: (message: string) => void, work: (metrics: RunMetrics | undefined) => Promise<T>): Promise<T> {
  if (args['metrics-port'] === undefined) return work(undefined);
  const { checkMetricsPort, startMetricsServer } = await import('./server.ts');
  const port = checkMetricsPort(args['metrics-port']);
  const { RunMetrics } = await import('./metrics.ts');
  const { observeProgress } = await import('../cli/progress.ts');
  const metrics = new RunMetrics(command);
  const server = await startMetricsServer(metrics, port);
  const stopProgress = observeProgress((p) => metrics.progress(p));
  log(`metrics: ${server.url} (Prometheus text format, while trtmix ${command} runs)`);
  try {
    return await work(metrics);
  } finally {
    stopProgress();
    await server.close();
  }
}
