/**
 * Data as users bring it: token ids and masks in int64, image sizes and sequence lengths the model leaves
 * dynamic (taken from the data), variable-length data in shape buckets, and models with a fixed batch dimension.
 * Every search here runs to the end and exports; every refusal is one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { writeNpy, type NpyArray } from '../src/data/npy.ts';
import { writeNpz } from '../src/data/npz.ts';
import { loadDataset } from '../src/data/dataset.ts';
import { batchRanges, batchInputs, dropPadding } from '../src/data/batches.ts';
import { modelInputs } from '../src/onnx/layers.ts';
import { Graph } from '../src/onnx/graph.ts';
import { runSearch } from '../src/search/run.ts';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { runModel } from '../src/quant/evaluator.ts';
import { calibrationTensors } from '../src/quant/calibrate.ts';
import { UserError } from '../src/errors.ts';
import { loadClsExample } from '../experiments/ppocr/dataset.ts';
import { randomInput } from './fixtures/models.ts';
import { dynamicConv, tinyBert, tinyMlp, tokenBatch } from './fixtures/user-models.ts';
import { assertUserError, trtmix } from './cli-helpers.ts';

const quiet = { quiet: true, log: () => {} };
const small = { 'calib-samples': 8, 'eval-samples': 16, 'screen-samples': 0, 'analysis-samples': 8, agent: 'greedy', 'max-evaluations': 3, 'time-limit': '5m' };
const int64 = (shape: number[], data: BigInt64Array): NpyArray => ({ dtype: 'int64', shape, data });

function folder(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `trtmix-${prefix}-`));
}

/** A BERT export and its tokenized data: `lengths` real tokens per line, padded to `seq`. */
function bertFixture(dir: string, lines = 24, seq = 12) {
  const model = join(dir, 'bert.onnx');
  saveModel(tinyBert(), model);
  const lengths = Array.from({ length: lines }, (_, i) => 3 + (i % (seq - 3)));
  const { ids, mask } = tokenBatch(lengths, seq, 50);
  return { model, lengths, ids, mask, seq };
}

test('a BERT with int64 input_ids + attention_mask from an .npz: fed as int64, calibrated on float tensors only, searched and exported', async () => {
  const dir = folder('bert');
  const { model, ids, mask, seq } = bertFixture(dir);
  const data = join(dir, 'tokens.npz');
  writeNpz(data, { input_ids: int64([24, seq], ids), attention_mask: int64([24, seq], mask) });
  const exp = await prepareExperiment({ model, data, 'calib-samples': 8, 'eval-samples': 16 });
  assert.equal(exp.data.inputs.input_ids.dtype, 'int64');
  assert.deepEqual(exp.loaded.inputShapes, { input_ids: [1, seq], attention_mask: [1, seq] }, 'the sequence length comes from the data');
  assert.deepEqual(exp.loaded.layers.map((l) => l.name), [...['attn/q', 'attn/k', 'attn/v', 'attn/scores', 'attn/context', 'attn/out', 'ffn/up', 'ffn/down'].map((l) => `/layer.0/${l}`), '/classifier']);
  assert.ok(exp.loaded.layers.find((l) => l.name === '/layer.0/attn/scores')!.weightIsConstant === false, 'attention scores: a MatMul between two activations');
  for (const t of calibrationTensors(exp.loaded.layers)) assert.ok(Number.isFinite(exp.calibration.stats[t].absMax), `${t} calibrated`);
  assert.ok(!('input_ids' in exp.calibration.stats) && !('attention_mask' in exp.calibration.stats), 'no statistics for token ids or masks');
  // The mask matters: the same ids with every position unmasked give other logits.
  const unmasked = { ...exp.split.eval, inputs: { ...exp.split.eval.inputs, attention_mask: { ...exp.split.eval.inputs.attention_mask, data: new BigInt64Array(exp.split.eval.inputs.attention_mask.data.length).fill(1n) } } };
  const [a, b] = [await runModel(exp.loaded.model, exp.split.eval, 8), await runModel(exp.loaded.model, unmasked, 8)];
  assert.notDeepEqual(a[0].logits.data, b[0].logits.data);

  const out = join(dir, 'run');
  const r = await runSearch({ model, data, out, ...small }, quiet);
  assert.equal(r.status, 'done');
  for (const f of ['policy.json', 'trtexec.txt', 'model.qdq.onnx', 'calibration.cache']) assert.ok(existsSync(join(out, f)), f);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')).search.inputShapes, { input_ids: [1, seq], attention_mask: [1, seq] });
  assert.match(readFileSync(join(out, 'trtexec.txt'), 'utf8'), new RegExp(`--shapes=input_ids:1x${seq},attention_mask:1x${seq}`));
});

test('variable-length data as shape buckets (input@bucket): each bucket is batched alone and the labels follow the archive order', async () => {
  const dir = folder('buckets');
  const { model } = bertFixture(dir);
  const parts = { 8: [4, 8, 6, 5, 7, 3, 8, 2, 6, 4], 16: [12, 16, 9, 14, 11, 16, 10, 13] } as const;
  const arrays: Record<string, NpyArray> = {};
  for (const [seq, lengths] of Object.entries(parts)) {
    const { ids, mask } = tokenBatch([...lengths], Number(seq), 50, Number(seq));
    arrays[`input_ids@${seq}`] = int64([lengths.length, Number(seq)], ids);
    arrays[`attention_mask@${seq}`] = int64([lengths.length, Number(seq)], mask);
  }
  const data = join(dir, 'buckets.npz');
  writeNpz(data, arrays);
  const labels = join(dir, 'labels.txt');
  writeFileSync(labels, `${Array.from({ length: 18 }, (_, i) => (i < 10 ? `short${i}` : `long${i - 10}`)).join('\n')}\n`);
  const ds = loadDataset({ dataPath: data, labelsPath: labels, inputs: modelInputs(new Graph(tinyBert())) });
  assert.equal(ds.count, 18);
  assert.deepEqual([ds.labels![9], ds.labels![10]], ['short9', 'long0'], 'samples are numbered bucket after bucket, in the order of the archive');
  assert.deepEqual(ds.groups!.map((g) => [g.bucket, g.start, g.count, g.inputs.input_ids.dims]), [['8', 0, 10, [10, 8]], ['16', 10, 8, [8, 16]]]);
  assert.deepEqual(batchRanges(ds, 4), [[0, 4], [4, 8], [8, 10], [10, 14], [14, 18]], 'no batch crosses from one bucket to the other');
  const r = await runSearch({ model, data, out: join(dir, 'run'), ...small, 'eval-samples': 18, 'calib-samples': 18 }, quiet);
  assert.equal(r.status, 'done');
  assert.ok(r.policy);
  // A bucket without its mask is one line.
  writeNpz(join(dir, 'broken.npz'), { 'input_ids@8': arrays['input_ids@8'], 'attention_mask@8': arrays['attention_mask@8'], 'input_ids@16': arrays['input_ids@16'] });
  assert.throws(() => loadDataset({ dataPath: join(dir, 'broken.npz'), inputs: modelInputs(new Graph(tinyBert())) }),
    (e: Error) => e instanceof UserError && /broken\.npz has arrays of bucket 16 but none for model input 'attention_mask'.*'attention_mask@16'/.test(e.message));
});

test('dynamic H and W come from the data: the PP-OCR direction classifier (cls.npy) is searched and exported without --input-shape', async () => {
  const dir = folder('cls');
  const cls = loadClsExample({ limit: 16 });
  const data = join(dir, 'cls.npy');
  writeNpy(data, { dtype: 'float32', shape: cls.inputs.x.dims, data: cls.inputs.x.data });
  const out = join(dir, 'run');
  // The uniform int8 agent needs no sensitivity analysis: calibration, evaluation and every export, quickly.
  const r = await trtmix(['search', '--model', cls.modelPath, '--data', data, '--calib-samples', '8', '--eval-samples', '8', '--screen-samples', '0', '--agent', 'int8', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).status, 'done');
  assert.ok(existsSync(join(out, 'model.qdq.onnx')));
  assert.match(readFileSync(join(out, 'trtexec.txt'), 'utf8'), /--shapes=x:1x3x48x192/);
  // Without data, info still needs the shape, and says where it can come from.
  assertUserError(await trtmix(['info', '--model', cls.modelPath]), /model input x has dynamic dims \[.*\]; pass --data \(its arrays give them\), or concrete ones with --input-shape x:1x3x/);
});

test('a data array whose fixed dims contradict the model, or whose dims disagree where the model names them alike, is one line', async () => {
  const dir = folder('dims');
  const model = join(dir, 'conv.onnx');
  saveModel(dynamicConv(), model);
  writeNpy(join(dir, 'rgba.npy'), { dtype: 'float32', shape: [4, 4, 16, 16], data: randomInput([4, 4, 16, 16], 'rgba') });
  assertUserError(await trtmix(['analyze', '--model', model, '--data', join(dir, 'rgba.npy')]), /rgba\.npy has shape \[4,4,16,16\] but model input 'x' expects \[N,3,\?,\?\]/);
  const { model: bert, ids, mask } = bertFixture(dir, 8, 12);
  writeNpz(join(dir, 'ragged.npz'), { input_ids: int64([8, 12], ids), attention_mask: int64([8, 6], mask.subarray(0, 48)) });
  assertUserError(await trtmix(['analyze', '--model', bert, '--data', join(dir, 'ragged.npz')]), /'attention_mask' has sequence = 6 but 'input_ids' has sequence = 12; the model gives both the same dimension 'sequence'/);
  writeNpz(join(dir, 'int32.npz'), { input_ids: { dtype: 'int32', shape: [8, 12], data: Int32Array.from(ids, Number) }, attention_mask: int64([8, 12], mask) });
  assertUserError(await trtmix(['analyze', '--model', bert, '--data', join(dir, 'int32.npz')]), /int32\.npz\['input_ids'\] is int32, but model input 'input_ids' takes int64; convert with x\.astype\(np\.int64\) before saving/);
});

for (const batch of [2, 8, 32]) {
  test(`a model with a fixed batch of ${batch}: samples go in groups of ${batch}, the last padded, the padding never counted`, async () => {
    const dir = folder(`batch${batch}`);
    const model = join(dir, `mlp-b${batch}.onnx`);
    saveModel(tinyMlp({ batch }), model);
    const n = 37;
    const data = join(dir, 'x.npy');
    writeNpy(data, { dtype: 'float32', shape: [n, 64], data: randomInput([n, 64], `fixed-${batch}`) });
    const fixed = await prepareExperiment({ model, data, 'calib-samples': 13, 'eval-samples': 21 });
    assert.equal(fixed.data.fixedBatch, batch);
    assert.deepEqual(fixed.loaded.inputShapes, { x: [batch, 64] });
    const feeds = batchInputs(fixed.split.eval, 16, 21);
    assert.deepEqual(feeds.x.dims, [Math.max(batch, 5), 64], 'a short group is padded to the fixed batch');
    // The same samples through the dynamic-batch export: identical outputs and calibration statistics.
    const dynamicPath = join(dir, 'mlp-dynamic.onnx');
    saveModel(tinyMlp(), dynamicPath);
    const dynamic = await prepareExperiment({ model: dynamicPath, data, 'calib-samples': 13, 'eval-samples': 21 });
    assert.deepEqual(fixed.split.evalIndices, dynamic.split.evalIndices);
    assert.equal(fixed.evaluator.referenceOutputs.length, 21);
    fixed.evaluator.referenceOutputs.forEach((o, i) => {
      const d = dynamic.evaluator.referenceOutputs[i].logits.data;
      o.logits.data.forEach((v, k) => assert.ok(Math.abs(v - d[k]) < 1e-5, `sample ${i} output ${k}: ${v} vs ${d[k]}`));
    });
    for (const [t, s] of Object.entries(fixed.calibration.stats)) {
      assert.equal(s.count, dynamic.calibration.stats[t].count, `${t}: statistics over the 13 real samples only`);
      assert.ok(Math.abs(s.absMax - dynamic.calibration.stats[t].absMax) < 1e-5 * Math.max(1, s.absMax), t);
    }
    const out = join(dir, 'run');
    const r = await runSearch({ model, data, out, ...small, 'calib-samples': 13, 'eval-samples': 21, target: 'ort-cpu', 'analysis-samples': 11 }, quiet);
    assert.equal(r.status, 'done');
    assert.ok(existsSync(join(out, 'model.qdq.onnx')));
    assert.equal(JSON.parse(readFileSync(join(out, 'analysis.json'), 'utf8')).samples, 11);
  });
}

test('dropPadding keeps the real samples of batch-major tensors ([N, ...], [N * heads, ...]) and leaves other layouts whole', () => {
  const rows = 4;
  const real = 3;
  const perRow = Float32Array.from({ length: 4 * 6 }, (_, i) => i);
  assert.deepEqual(Array.from(dropPadding(perRow, [4, 6], rows, real)), Array.from(perRow.subarray(0, 18)));
  const heads = Float32Array.from({ length: 4 * 2 * 5 }, (_, i) => i);
  assert.equal(dropPadding(heads, [8, 5], rows, real).length, 30, '[N * heads, d]: the first 3 samples\' heads');
  const transposed = new Float32Array(6 * 4);
  assert.equal(dropPadding(transposed, [6, 4], rows, real).length, 24, '[tokens, N]: no batch axis in front, kept whole');
  assert.equal(dropPadding(perRow, [4, 6], rows, rows), perRow, 'nothing padded, nothing dropped');
});
