import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { writeNpy } from '../src/data/npy.ts';
import { loadAnalysis } from '../src/analysis/files.ts';
import { tinyCnn, randomInput } from './fixtures/models.ts';
import { trtmixSync as trtmix } from './cli-helpers.ts';

const LAYERS = ['conv1', 'dw2', 'pw3', 'fc', 'node_of_logits'];
let dir: string;
let modelPath: string;
let dataPath: string;


before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trtmix-analyze-cli-'));
  modelPath = join(dir, 'tiny.onnx');
  saveModel(tinyCnn(), modelPath);
  dataPath = join(dir, 'x.npy');
  writeNpy(dataPath, { dtype: 'float32', shape: [40, 3, 8, 8], data: randomInput([40, 3, 8, 8], 'cli-data') });
});

const common = () => ['--model', modelPath, '--data', dataPath, '--calib-samples', '16', '--eval-samples', '24', '--analysis-samples', '20', '--stats-samples', '8', '--no-png'];

test('trtmix analyze --json prints analysis.json ({ layers: [{ name, ... }] }) and writes every output file', () => {
  const out = join(dir, 'run-json');
  const r = trtmix('analyze', ...common(), '--metric', 'cosine', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(doc.layers.map((l: { name: string }) => l.name), LAYERS);
  for (const l of doc.layers) {
    for (const k of ['int8Drop', 'leaveOneOutDrop', 'mse', 'kl', 'histogramOverlap', 'outlierFraction', 'rangeWaste']) assert.equal(typeof l[k], 'number', `${l.name}.${k}`);
  }
  assert.equal(doc.samples, 20);
  assert.equal(doc.metric.name, 'cosine');
  assert.match(doc.model.sha256, /^[0-9a-f]{64}$/);
  for (const f of ['analysis.json', 'analysis.md', 'metrics.prom', 'report.html', 'plots/sensitivity.svg']) assert.ok(existsSync(join(out, f)), f);
  assert.deepEqual(loadAnalysis(join(out, 'analysis.json')), doc, 'stdout and analysis.json are the same document');
  const md = readFileSync(join(out, 'analysis.md'), 'utf8');
  const ranked = md.split('\n').filter((l) => /^\| \d+ \|/.test(l)).map((l) => l.split(' | ')[2]);
  const byRank = [...doc.layers].sort((a: { rank: number }, b: { rank: number }) => a.rank - b.rank).map((l: { name: string }) => l.name);
  assert.deepEqual(ranked, byRank, 'analysis.md lists the layers in rank order');
  assert.match(readFileSync(join(out, 'metrics.prom'), 'utf8'), /^trtmix_histogram_overlap\{layer="dw2",op="Conv",index="1"\} [0-9.e-]+$/m);
});

test('without --json the ranking is printed as a table and the files are named', () => {
  const out = join(dir, 'run-text');
  const r = trtmix('analyze', ...common(), '--out', out, '--top', '3', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', '--quiet leaves stderr empty');
  assert.match(r.stdout, /^agreement: FP32 1\.0000/);
  assert.match(r.stdout, /rank\s+layer\s+op\s+int8 drop/);
  assert.match(r.stdout, /\.\.\. 2 more in analysis\.md/);
  assert.match(r.stdout, /analysis\.json.*analysis\.md.*metrics\.prom.*report\.html/);
});

test('bad options exit 2 with one line', () => {
  const r = trtmix('analyze', '--model', modelPath, '--data', dataPath, '--analysis-samples', '0', '--out', join(dir, 'bad'));
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--analysis-samples must be a whole number >= 1/);
  const noData = trtmix('analyze', '--model', modelPath);
  assert.equal(noData.status, 2);
  assert.match(noData.stderr, /--data is required/);
});
