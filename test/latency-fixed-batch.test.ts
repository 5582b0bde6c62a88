import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../src/onnx/model.ts';
import { tinyCnn } from './fixtures/models.ts';
import { trtmixSync as trtmix } from './cli-helpers.ts';

// A model exported with a fixed batch N is probed at N; its tensors must still be priced per sample, times N once.
test('a fixed-batch model is priced like the same model with a dynamic batch at --batch N', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-fixed-batch-'));
  const fixed = join(dir, 'fixed8.onnx');
  const dynamic = join(dir, 'dynamic.onnx');
  writeFileSync(fixed, encodeModel(tinyCnn({ batch: 8 })));
  writeFileSync(dynamic, encodeModel(tinyCnn()));
  const priced = (...args: string[]) => {
    const r = trtmix('latency', '--target', 't4', '--json', ...args);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { batch: number; totals: Record<string, number>; layers: Array<Record<string, number | string>> };
  };
  const a = priced('--model', fixed);
  const b = priced('--model', dynamic, '--batch', '8');
  assert.equal(a.batch, 8, 'the fixed batch is the latency batch');
  for (const p of ['fp32', 'fp16', 'int8']) assert.ok(Math.abs(a.totals[p] - b.totals[p]) < 1e-9 * b.totals[p], `${p}: ${a.totals[p]} vs ${b.totals[p]}`);
  assert.deepEqual(a.layers, b.layers);
});
