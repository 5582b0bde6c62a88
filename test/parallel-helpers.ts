/**
 * Shared by the parallel-* tests: seeded random policies, the tiny-CNN experiment they score, and a real Redis
 * (Debian's redis-server) on a free local port in a temporary folder, stopped by the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import type { ExperimentArgs } from '../src/cli/experiment.ts';
import type { LayerPolicy, Precision } from '../src/policy.ts';
import { tinyCnnFixture } from './fixtures/models.ts';

/** Seeded random policies over the layers, calibration choices included (they read the shipped statistics). */
export function randomPolicies(names: string[], n: number, seed: string): LayerPolicy[] {
  const rng = seedrandom(seed);
  const precisions: Precision[] = ['int8', 'mixed', 'fp16'];
  const methods = ['max', 'entropy', 'mse', 'percentile'] as const;
  return Array.from({ length: n }, () => Object.fromEntries(names.map((name) => {
    const precision = precisions[Math.floor(rng() * 3)];
    return [name, precision === 'fp16' ? { precision } : { precision, calibration: { method: methods[Math.floor(rng() * 4)] } }];
  })));
}

/** The tiny CNN on 48 seeded samples, as a search of it would pass to prepareExperiment. */
export function tinyExperimentArgs(prefix: string): ExperimentArgs & { dir: string } {
  const fx = tinyCnnFixture(prefix, 'parallel-data');
  return { dir: fx.dir, model: fx.model, data: fx.data, 'calib-samples': 16, 'eval-samples': 24, metric: 'cosine', seed: 2 };
}

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

/** `skip` for node:test: the reason the queue tests cannot run here, or false. */
export const redisSkip: string | false = REDIS && spawnSync(REDIS, ['--version']).status === 0
  ? false
  : 'redis-server is not installed (apt-get install -y redis-server; .ci/run does it)';

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** redis-server on a free port, no persistence, in its own temporary folder; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-redis-'));
  const child: ChildProcess = spawn(REDIS!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      output += b.toString();
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

export const BIN = join(import.meta.dirname, '..', 'bin', 'trtmix.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** Resolves with the first stderr line matching. */
  line(pattern: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/trtmix.js worker --queue URL ...`, as a user starts it on another machine. */
export function startWorker(url: string, ...extra: string[]): WorkerProcess {
  const child = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--threads', '1', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const waiting: Array<{ pattern: RegExp; resolve(l: string): void }> = [];
  child.stderr!.on('data', (b: Buffer) => {
    text += b.toString();
    for (const w of [...waiting]) {
      const hit = text.split('\n').find((l) => w.pattern.test(l));
      if (hit !== undefined) { waiting.splice(waiting.indexOf(w), 1); w.resolve(hit); }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    stderr: () => text,
    exited,
    line: (pattern) => {
      const hit = text.split('\n').find((l) => pattern.test(l));
      return hit !== undefined ? Promise.resolve(hit) : new Promise((resolve) => waiting.push({ pattern, resolve }));
    },
  };
}

/** Waits for the condition, polling. */
export async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000, everyMs = 20): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
