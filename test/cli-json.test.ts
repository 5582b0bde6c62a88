/**
 * `--json`: stdout is exactly one JSON document in the shape DESIGN.md gives for each command; progress and logs stay
 * on stderr, so `trtmix ... --json | jq` always works.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FAST, trtmix, workspace, type CliResult, type Workspace } from './cli-helpers.ts';

let ws: Workspace;
let out: string;
let search: CliResult;

/** The whole of stdout parses as one JSON value (JSON.parse rejects anything after it). */
function document(r: CliResult): any {
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.trim().startsWith('{'), `stdout starts with the document:\n${r.stdout.slice(0, 200)}`);
  return JSON.parse(r.stdout);
}

const LAYERS = ['conv1', 'dw2', 'pw3', 'fc', 'node_of_logits'];

before(async () => {
  ws = workspace('cli-json');
  out = join(ws.dir, 'run');
  search = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'greedy', '--max-evaluations', '3', '--out', out, '--json']);
});

describe('--json', { concurrency: 2 }, () => {
  test('search: score, FP32 score, latencies and the output folder; progress on stderr', () => {
    const doc = document(search);
    assert.equal(doc.status, 'done');
    assert.equal(doc.out, out);
    for (const k of ['score', 'fp32Score', 'latencyMs', 'fp16LatencyMs']) assert.equal(typeof doc[k], 'number', k);
    // Search and held-out test figures side by side, with intervals.
    assert.ok(doc.searchCi95[0] <= doc.score && doc.score <= doc.searchCi95[1]);
    assert.equal(doc.test.samples, 16);
    assert.ok(doc.test.ci95[0] <= doc.test.score && doc.test.score <= doc.test.ci95[1]);
    assert.ok(doc.files.includes(join(out, 'policy.json')));
    assert.match(search.stderr, /^calibration: /m);
    assert.match(search.stderr, /^search \(greedy\): /m);
  });

  test('replay: the recorded score comes back on the search data', async () => {
    const doc = document(await trtmix(['replay', join(out, 'policy.json'), '--data', ws.data, '--json']));
    for (const k of ['score', 'fp32Score', 'latencyMs', 'fp16LatencyMs']) assert.equal(typeof doc[k], 'number', k);
    assert.equal(doc.searchData, true);
    assert.equal(doc.reproduced.score, true);
    assert.equal(doc.score, document(search).score);
    // policy.json names the default calibration "percentile-99.99"; the layer table must say so, not "max".
    const int8 = doc.layers.filter((l: { precision: string }) => l.precision === 'int8' || l.precision === 'mixed');
    assert.ok(int8.length > 0);
    for (const l of int8) assert.equal(l.calibration, 'percentile 99.99');
  });

  test('info: model and layers with name, op, macs', async () => {
    const doc = document(await trtmix(['info', '--model', ws.model, '--json']));
    assert.equal(doc.model, ws.model);
    assert.deepEqual(doc.layers.map((l: { name: string }) => l.name), LAYERS);
    for (const l of doc.layers) assert.ok(typeof l.op === 'string' && l.macs > 0);
  });

  test('latency: target, batch, totals and per-layer ms, with a policy column', async () => {
    const r = await trtmix(['latency', '--model', ws.model, '--target', 'orin-agx', '--policy', join(out, 'policy.json'), '--json']);
    const doc = document(r);
    assert.equal(doc.target, 'orin-agx');
    assert.equal(doc.batch, 1);
    for (const k of ['fp32', 'fp16', 'int8', 'policy']) assert.ok(doc.totals[k] > 0, k);
    assert.deepEqual(doc.layers.map((l: { name: string }) => l.name), LAYERS);
    for (const l of doc.layers) for (const k of ['fp32', 'fp16', 'int8', 'policy']) assert.equal(typeof l[k], 'number');
  });

  test('analyze: one entry per quantizable layer; files written; progress on stderr', async () => {
    const dir = join(ws.dir, 'analysis');
    const r = await trtmix(['analyze', '--model', ws.model, '--data', ws.data, ...FAST.slice(0, 4), '--analysis-samples', '16', '--no-png', '--out', dir, '--json']);
    const doc = document(r);
    assert.deepEqual(doc.layers.map((l: { name: string }) => l.name).sort(), [...LAYERS].sort());
    assert.match(r.stderr, /^analyze: /m);
    assert.ok(existsSync(join(dir, 'analysis.json')));
  });

  test('compare: one row per agent', async () => {
    const r = await trtmix(['compare', '--model', ws.model, '--data', ws.data, ...FAST, '--agents', 'int8', 'fp16', '--evaluations', '2', '--out', join(ws.dir, 'compare'), '--json']);
    const doc = document(r);
    assert.deepEqual(doc.rows.map((row: { agent: string }) => row.agent), ['int8', 'fp16']);
    assert.equal(doc.out, join(ws.dir, 'compare'));
    // Each agent's best policy also on the held-out test samples (48 - 16 - 16 of them), beside its search score.
    assert.equal(doc.testSamples, 16);
    for (const row of doc.rows) assert.ok(row.testCi95[0] <= row.testScore && row.testScore <= row.testCi95[1] && typeof row.testDrop === 'number', row.agent);
    assert.match(r.stderr, /^compare: int8: /m);
  });

  test('export: format, destination and the content when printed', async () => {
    const r = await trtmix(['export', join(out, 'policy.json'), '--format', 'trtexec', '--json']);
    const doc = document(r);
    assert.equal(doc.format, 'trtexec');
    assert.equal(doc.out, null);
    assert.match(doc.content, /^# TensorRT 11.*\ntrtexec --onnx=/);
    // The model's batch dim is symbolic: without a profile trtexec would pick 1 silently; say it.
    assert.match(doc.content.split('\n')[1], / --shapes=x:1x3x8x8( |$)/);
    assert.deepEqual(doc.warnings, []);
  });
});
