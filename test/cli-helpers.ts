/**
 * Running trtmix as a user does, in a child process (`node bin/trtmix.js ...`), so exit codes, stdout and stderr
 * are the real ones, and small models and data for it written to a temporary folder.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { writeNpy } from '../src/data/npy.ts';
import { makeModel, randomInput, tinyAttention, tinyCnn, valueInfo } from './fixtures/models.ts';

export const ROOT = join(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'trtmix.js');

/** `node bin/trtmix.js ...args`, waited for: status, stdout, stderr. */
export function trtmixSync(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Run through `sh -c` with this prefix before `exec node ...` (e.g. a ulimit). */
  shellPrefix?: string;
}

/** Runs trtmix to the end. */
export function trtmix(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return collect(start(args, opts));
}

/** Starts trtmix without waiting (for signals); `collect` waits for it. */
export function start(args: string[], opts: CliOptions = {}) {
  const spawnOpts: SpawnOptions = {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  };
  if (opts.shellPrefix) {
    const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return spawn('sh', ['-c', `${opts.shellPrefix}; exec ${quoted}`], spawnOpts);
  }
  return spawn(process.execPath, [BIN, ...args], spawnOpts);
}

export function collect(child: ReturnType<typeof spawn>): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const STACK_LINE = /^\s+at /m;

/**
 * The error contract for bad input: exit code 2, exactly one `trtmix: ...` line (the last one on stderr; progress
 * lines of finished phases may come before it), no stack trace.
 */
export function assertUserError(r: CliResult, message: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('trtmix:'));
  assert.equal(errors.length, 1, `one error line expected:\n${r.stderr}`);
  assert.equal(lines.at(-1), errors[0], `the error is the last line:\n${r.stderr}`);
  assert.match(errors[0], message);
  assert.doesNotMatch(r.stderr, STACK_LINE, 'no stack trace without --verbose');
  assert.doesNotMatch(r.stderr, /internal error/);
}

export function hasStack(stderr: string): boolean {
  return STACK_LINE.test(stderr);
}

/** The smallest options that still run calibration, evaluation and a search end to end. */
export const FAST = ['--calib-samples', '16', '--eval-samples', '16', '--screen-samples', '0'];

export interface Workspace {
  dir: string;
  /** tinyCnn: x [N,3,8,8] -> logits [N,4], five quantizable layers. */
  model: string;
  /** 48 samples for `model`. */
  data: string;
  /** tinyAttention: x [N,6,8]; another model with other layer names. */
  otherModel: string;
  otherData: string;
  /** Relu only: nothing to quantize. */
  noLayers: string;
  /** One label (0..3) per sample of `data`. */
  labels: string;
}

/** A world-readable temporary folder with the small models and data most CLI tests need. */
export function workspace(prefix: string): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `trtmix-${prefix}-`));
  // mkdtemp makes it 0700; tests that run trtmix as another user (unwritable folders under root) must enter it.
  chmodSync(dir, 0o755);
  const ws: Workspace = {
    dir,
    model: join(dir, 'tiny.onnx'),
    data: join(dir, 'x.npy'),
    otherModel: join(dir, 'attention.onnx'),
    otherData: join(dir, 'attention.npy'),
    noLayers: join(dir, 'relu.onnx'),
    labels: join(dir, 'labels.txt'),
  };
  saveModel(tinyCnn(), ws.model);
  writeNpy(ws.data, { dtype: 'float32', shape: [48, 3, 8, 8], data: randomInput([48, 3, 8, 8], 'cli-x') });
  saveModel(tinyAttention(), ws.otherModel);
  // 48 samples, as for `model`: FAST's 16 calibration + 16 search samples fit without sharing any.
  writeNpy(ws.otherData, { dtype: 'float32', shape: [48, 6, 8], data: randomInput([48, 6, 8], 'cli-a') });
  saveModel(makeModel([{ name: 'relu', opType: 'Relu', input: ['x'], output: ['y'] }], [valueInfo('x', ['N', 4])], [valueInfo('y', ['N', 4])], []), ws.noLayers);
  writeFileSync(ws.labels, `${Array.from({ length: 48 }, (_, i) => String(i % 4)).join('\n')}\n`);
  return ws;
}

/** history.jsonl of a run folder, timing fields (`seconds`, `wallSeconds`) left out. */
export function historyWithoutTiming(dir: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { seconds: _s, wallSeconds: _w, ...rest } = JSON.parse(l);
    return rest;
  });
}

/** A policy.json without its timing field (`search.seconds`). */
export function policyWithoutTiming(policy: { search: Record<string, unknown> }) {
  const { seconds: _seconds, ...search } = policy.search;
  return { ...policy, search };
}
