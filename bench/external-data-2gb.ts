/**
 * A model beyond protobuf's 2 GiB, end to end: built in code (a 2.2 GB token-embedding table in external data,
 * then MatMul 768x768 + Relu and a 768x16 head), searched with `trtmix search` (which analyzes, calibrates,
 * evaluates and exports), and its model.qdq.onnx + model.qdq.onnx.data loaded back in onnxruntime from the path,
 * as TensorRT's parser would read them. Reports exit codes, sizes and the search's peak RSS (/usr/bin/time -v).
 *
 *   node --import tsx bench/external-data-2gb.ts [--dir DIR] [--vocab 720000] [--keep]
 *
 * Needs about 7 GB of free disk in DIR (the model's data, the export's data); DIR is removed afterwards unless
 * --keep. Not a test: CI has neither the disk nor the time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { saveModel, type ModelProto } from '../src/onnx/model.ts';
import { writeNpz } from '../src/data/npz.ts';
import { ort } from '../src/onnx/runtime.ts';
import { makeModel, valueInfo } from '../test/fixtures/models.ts';
import { typedValueInfo } from '../test/fixtures/user-models.ts';
import { floatTensor, int64Tensor, makeAttr } from '../src/onnx/tensor.ts';

const ROOT = resolve(import.meta.dirname, '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const dir = resolve(arg('dir', join(ROOT, 'bench', 'out', 'external-data-2gb')));
const vocab = Number(arg('vocab', '720000'));
const hidden = 768;

/** Uniform noise in [-scale, scale] from a xorshift generator (seedrandom would take minutes for 550M values). */
function noise(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = ((x / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function model(): ModelProto {
  return makeModel([
    { name: '/embed/Gather', opType: 'Gather', input: ['embed.weight', 'input_ids'], output: ['e'] },
    { name: '/fc/MatMul', opType: 'MatMul', input: ['e', 'fc.weight'], output: ['h'] },
    { name: '/act/Relu', opType: 'Relu', input: ['h'], output: ['a'] },
    { name: '/head/MatMul', opType: 'MatMul', input: ['a', 'head.weight'], output: ['t'] },
    { name: '/pool/ReduceMean', opType: 'ReduceMean', input: ['t', 'axes'], output: ['logits'], attribute: [makeAttr.int('keepdims', 0)] },
  ], [typedValueInfo('input_ids', 7, ['batch', 'tokens'])], [valueInfo('logits', ['batch', 16])], [
    floatTensor('embed.weight', [vocab, hidden], noise(vocab * hidden, 1, 1)),
    floatTensor('fc.weight', [hidden, hidden], noise(hidden * hidden, 2, Math.sqrt(3 / hidden))),
    floatTensor('head.weight', [hidden, 16], noise(hidden * 16, 3, Math.sqrt(3 / hidden))),
    int64Tensor('axes', [1], [1]),
  ], 18);
}

mkdirSync(dir, { recursive: true });
const modelPath = join(dir, 'big.onnx');
const dataPath = join(dir, 'ids.npz');
process.stderr.write(`building ${((vocab * hidden * 4) / 2 ** 30).toFixed(2)} GiB of weights in ${dir} ...\n`);
saveModel(model(), modelPath, { externalData: true });
const samples = 16;
const tokens = 8;
const ids = BigInt64Array.from({ length: samples * tokens }, (_, i) => BigInt((i * 7919 + 13) % vocab));
writeNpz(dataPath, { input_ids: { dtype: 'int64', shape: [samples, tokens], data: ids } });

const out = join(dir, 'run');
rmSync(out, { recursive: true, force: true });
const t0 = performance.now();
const r = spawnSync('/usr/bin/time', ['-v', process.execPath, join(ROOT, 'bin', 'trtmix.js'), 'search', '--model', modelPath, '--data', dataPath,
  '--calib-samples', '8', '--eval-samples', '8', '--analysis-samples', '4', '--screen-samples', '0', '--agent', 'greedy', '--max-evaluations', '3', '--out', out, '--quiet'], { encoding: 'utf8' });
const seconds = (performance.now() - t0) / 1000;
const maxRssMiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
const qdq = join(out, 'model.qdq.onnx');
let qdqRuns = false;
if (existsSync(qdq)) {
  const s = await ort.InferenceSession.create(qdq);
  const y = await s.run({ input_ids: new ort.Tensor('int64', ids.subarray(0, tokens), [1, tokens]) });
  qdqRuns = (y.logits.data as Float32Array).every(Number.isFinite);
  await s.release();
}
const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
const result = {
  model: { onnxBytes: size(modelPath), dataBytes: size(`${modelPath}.data`) },
  search: { exitCode: r.status, seconds, maxRssMiB, errors: r.stderr.split('\n').filter((l) => l.startsWith('trtmix')) },
  export: { onnxBytes: size(qdq), dataBytes: size(`${qdq}.data`), loadsAndRunsInOnnxruntime: qdqRuns },
  loadAverage: loadavg(),
};
writeFileSync(join(ROOT, 'bench', 'out', 'external-data-2gb.json'), `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
if (r.status !== 0 || !qdqRuns) process.exitCode = 1;
