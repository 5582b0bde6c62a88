// `trtmix profile` end to end against a STAND-IN for trtexec (test/fixtures/trtexec-standin.mjs): no TensorRT here.
// The stand-in writes trtexec's documented files (profile, layer info with both generations' key sets, the
// performance summary) with made-up times; what is tested is the commands trtmix runs, the folder it writes, and
// that this folder drives `--target profile:DIR`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { FAST, assertUserError, trtmix, workspace, type Workspace } from './cli-helpers.ts';
import { readProfileDir } from '../src/latency/profile-model.ts';
import { parseLayerInfo } from '../src/latency/trt-profile.ts';
import { trtVersionFromBanner, planProfileBuilds } from '../src/latency/trtexec-profile.ts';

const STANDIN = join(import.meta.dirname, 'fixtures', 'trtexec-standin.mjs');
let ws: Workspace;
let policy: string;

before(async () => {
  ws = workspace('profile');
  const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'int8', '--out', join(ws.dir, 'run'), '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  policy = join(ws.dir, 'run', 'policy.json');
});

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'trtmix-profile.json'), 'utf8'));
const commandOf = (dir: string, build: string) => readFileSync(join(dir, `${build}.log`), 'utf8').split('\n')[0];

test('the TensorRT release comes from the trtexec banner; 8.x codes have three digits after the major', () => {
  assert.deepEqual(trtVersionFromBanner('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec'), { code: 100300, major: 10, version: '10.3.0' });
  assert.deepEqual(trtVersionFromBanner('[TensorRT v8601]'), { code: 8601, major: 8, version: '8.6.1' });
  assert.equal(trtVersionFromBanner('no banner'), undefined);
  const plan = planProfileBuilds({ generation: 10, dir: '/d', model: 'm.onnx', policy: true, policyArgs: ['--onnx=m.onnx', '--fp16', '--int8', '--layerPrecisions=a:int8', '--saveEngine=x'] });
  assert.deepEqual(plan.map((b) => b.name), ['fp16', 'int8', 'policy']);
  assert.ok(plan[2].args.includes('--layerPrecisions=a:int8') && !plan[2].args.includes('--saveEngine=x'));
  assert.equal(plan[2].args.filter((a) => a.startsWith('--onnx=')).length, 1);
});

test('TensorRT 10 (stand-in): --fp16, --fp16 --int8 and the policy\'s own flags, each with the profiling flags; every engine layer maps back', async () => {
  const dir = join(ws.dir, 'prof10');
  const r = await trtmix(['profile', '--model', ws.model, '--policy', policy, '--trtexec', STANDIN, '--out', dir]);
  assert.equal(r.code, 0, r.stderr);
  for (const b of ['fp16', 'int8', 'policy']) {
    for (const f of [`${b}.profile.json`, `${b}.layers.json`, `${b}.log`]) assert.ok(existsSync(join(dir, f)), f);
    const cmd = commandOf(dir, b);
    for (const flag of ['--exportProfile=', '--exportLayerInfo=', '--profilingVerbosity=detailed', '--separateProfileRun', `--onnx=${ws.model}`]) assert.ok(cmd.includes(flag), `${b}: ${cmd}`);
  }
  assert.match(commandOf(dir, 'fp16'), / --fp16 /);
  assert.doesNotMatch(commandOf(dir, 'fp16'), /--int8/);
  assert.match(commandOf(dir, 'int8'), / --fp16 --int8 /);
  assert.match(commandOf(dir, 'policy'), /--precisionConstraints=obey --layerPrecisions=conv1:int8,.* --calib=.*calibration\.cache/);
  assert.ok(existsSync(join(dir, 'calibration.cache')));
  const m = manifestOf(dir);
  assert.deepEqual(m.tensorrt, { generation: 10, version: '10.3.0' });
  assert.deepEqual(m.unmappedEngineLayers, { fp16: 0, int8: 0 });
  assert.equal(m.policy.unmapped, 0);
  // The stand-in's int8 engine is the faster one. The policy is INT8 where INT8 suits (the fixture's narrow Gemm and
  // MatMul stay FP16): predicted from the int8 profile for its INT8 layers and the fp16 one for the others.
  assert.ok(m.builds[1].layersMs < m.builds[0].layersMs);
  assert.ok(m.policy.predictedMs > m.builds[1].layersMs && m.policy.predictedMs < m.builds[0].layersMs, JSON.stringify(m.policy));
  assert.match(r.stdout, /TensorRT 10\.3\.0 engines profiled/);
  const files = readProfileDir(dir);
  assert.deepEqual(Object.keys(files).sort(), ['fp16', 'int8']);
  assert.ok(JSON.parse(readFileSync(join(dir, 'int8.layers.json'), 'utf8')).Bindings);
});

test('TensorRT 11 (stand-in): strongly typed builds from the FP16-cast and Q/DQ models trtmix writes, no precision flags', async () => {
  const dir = join(ws.dir, 'prof11');
  const r = await trtmix(['profile', '--model', ws.model, '--policy', policy, '--trtexec', STANDIN, '--out', dir, '--json'], { env: { TRTEXEC_STANDIN_VERSION: '11.0.0' } });
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.deepEqual(m.tensorrt, { generation: 11, version: '11.0.0' });
  for (const [b, model] of [['fp16', 'fp16.onnx'], ['int8', 'int8.qdq.onnx'], ['policy', 'policy.qdq.onnx']]) {
    assert.ok(existsSync(join(dir, model)), model);
    const cmd = commandOf(dir, b);
    assert.ok(cmd.includes(`--onnx=${join(dir, model)}`), cmd);
    assert.doesNotMatch(cmd, /--fp16|--int8|--calib|--layerPrecisions|--precisionConstraints/);
  }
  assert.deepEqual(m.unmappedEngineLayers, { fp16: 0, int8: 0 });
  const info = JSON.parse(readFileSync(join(dir, 'int8.layers.json'), 'utf8'));
  assert.ok(info['I/O Tensors'] && !info.Bindings, 'TensorRT 11 key set');
  assert.ok(parseLayerInfo(info).some((l) => l.onnxNodes.includes('conv1')));
  // --trt-version overrides the banner: a TensorRT 11 trtexec given 10's recipe refuses --fp16, and trtmix says so
  assertUserError(await trtmix(['profile', '--model', ws.model, '--trtexec', STANDIN, '--trt-version', '10', '--out', join(ws.dir, 'wrong')], { env: { TRTEXEC_STANDIN_VERSION: '11.0.0' } }),
    /trtexec could not build the fp16 engine \(exit 1\): \[E\] Unknown option: --fp16; the full log is .*fp16\.log/);
});

test('the folder trtmix profile writes drives a search (--target profile:DIR)', async () => {
  const dir = join(ws.dir, 'prof10');
  if (!existsSync(join(dir, 'fp16.profile.json'))) {
    const p = await trtmix(['profile', '--model', ws.model, '--trtexec', STANDIN, '--out', dir, '--quiet']);
    assert.equal(p.code, 0, p.stderr);
  }
  const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'greedy', '--max-evaluations', '4', '--target', `profile:${dir}`, '--out', join(ws.dir, 'run-profile'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  const fp16 = JSON.parse(readFileSync(join(dir, 'fp16.profile.json'), 'utf8')).slice(1).reduce((s: number, l: { averageMs: number }) => s + l.averageMs, 0);
  assert.ok(Math.abs(doc.fp16LatencyMs - fp16) < 1e-9, `${doc.fp16LatencyMs} vs ${fp16}`);
  const written = JSON.parse(readFileSync(join(ws.dir, 'run-profile', 'policy.json'), 'utf8'));
  assert.equal(written.metrics.target, `profile:${dir}`);
  // and latency --validate ranks a roofline against it
  const v = await trtmix(['latency', '--model', ws.model, '--target', 'h100', '--validate', `profile:${dir}`, '--json']);
  assert.equal(v.code, 0, v.stderr);
  const report = JSON.parse(v.stdout);
  assert.equal(report.correlation.pooled.layers, 10);
  assert.deepEqual(report.unmapped, []);
});

test('no trtexec on PATH, a --trtexec that does not exist, a build that fails: one line each, exit 2', async () => {
  assertUserError(await trtmix(['profile', '--model', ws.model, '--out', join(ws.dir, 'p1')], { env: { PATH: ws.dir } }), /trtexec was not found on PATH; install TensorRT .* or pass --trtexec PATH/);
  assertUserError(await trtmix(['profile', '--model', ws.model, '--trtexec', join(ws.dir, 'nope'), '--out', join(ws.dir, 'p2')]), /--trtexec .*nope does not exist/);
  const notExec = join(ws.dir, 'trtexec-text');
  writeFileSync(notExec, 'not a program');
  chmodSync(notExec, 0o644);
  assertUserError(await trtmix(['profile', '--model', ws.model, '--trtexec', notExec, '--out', join(ws.dir, 'p3')]), /is not an executable file/);
  assertUserError(await trtmix(['profile', '--model', ws.model, '--trtexec', STANDIN, '--out', join(ws.dir, 'p4')], { env: { TRTEXEC_STANDIN_FAIL: '1' } }),
    /trtexec could not build the fp16 engine \(exit 1\): \[E\] Error Code 4: Internal Error \(stand-in told to fail\); the full log is .*p4\/fp16\.log/);
});
