import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trtLayerName } from '../src/onnx/graph.ts';
import type { NodeProto } from '../src/onnx/model.ts';
import { UserError } from '../src/errors.ts';
import {
  buildPrecisionPlan, trtexecCommand, polygraphyCommand, calibrationCache, parseCalibrationCache, trtVersionCode,
  scaleHex, hexScale, renderExport, writeExports, EXPORT_FILE_NAMES, type ExportInputs, type PrecisionPlan,
} from '../src/export/index.ts';
import { REMOVED_IN_TRT11, TRT_GENERATION_LABELS } from '../src/export/trtexec.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { makeModel, randomTensor, valueInfo } from './fixtures/models.ts';
import { exportFixture, type ExportFixture } from './export-fixture.ts';

let fx: ExportFixture;
let inputs: ExportInputs;
let plan: PrecisionPlan;
let layerNames: Set<string>;

before(async () => {
  fx = await exportFixture();
  inputs = { policy: fx.policy, layers: fx.layers, graph: fx.graph, model: { path: 'models/export test.onnx', sha256: fx.sha256 }, inputShapes: { x: [1, 3, 8, 8] } };
  plan = buildPrecisionPlan(fx.policy, fx.layers, fx.graph);
  layerNames = new Set(fx.graph.nodes.filter((n) => n.opType !== 'Constant').map(trtLayerName));
});

/** The words the real shell hands the program: the line runs in sh with the program replaced by a printer. */
function shellWords(line: string): string[] {
  const script = `trtexec() { printf '%s\\0' "$@"; }\npolygraphy() { printf '%s\\0' "$@"; }\n${line}\n`;
  return execFileSync('sh', ['-c', script], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

const TRTEXEC_TYPES = new Set(['fp32', 'fp16', 'int8', 'bf16', 'fp8', 'int4', 'int64', 'bool', 'uint8', 'int32']);

/** Mirror of trtexec's getLayerPrecisions / getLayerOutputTypes: split on ',', then at the last ':', quotes removed. */
function parseTrtexecSpec(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of value.split(',')) {
    const at = item.lastIndexOf(':');
    assert.ok(at > 0, `item ${item} has no name:type`);
    const name = item.slice(0, at).replace(/'/g, '');
    const type = item.slice(at + 1);
    assert.ok(TRTEXEC_TYPES.has(type), `unknown type ${type} in ${item}`);
    out.set(name, type);
  }
  return out;
}

/** trtexec's flags as key -> value, asserting each flag appears once with an `=`-attached value (or none). */
function trtexecFlags(words: string[]): Map<string, string | undefined> {
  const flags = new Map<string, string | undefined>();
  for (const w of words) {
    assert.ok(w.startsWith('--'), `stray word ${w}`);
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    assert.ok(!flags.has(key), `${key} appears twice`);
    flags.set(key, eq < 0 ? undefined : w.slice(eq + 1));
  }
  return flags;
}

/** The command under the label of a TensorRT generation in trtexec.txt / polygraphy.txt. */
function commandFor(text: string, generation: keyof typeof TRT_GENERATION_LABELS): string {
  const lines = text.split('\n');
  const at = lines.indexOf(`# ${TRT_GENERATION_LABELS[generation]}`);
  assert.ok(at >= 0, `no ${generation} label in\n${text}`);
  return lines[at + 1];
}
const implicitLine = (text: string) => commandFor(text, 'implicit');

/** trtexec (TensorRT 10) matchStringWithOneWildcard. */
function matchesPattern(pattern: string, target: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === target;
  const [pre, post] = [pattern.slice(0, star), pattern.slice(star + 1)];
  return target.length >= pre.length + post.length && target.startsWith(pre) && target.endsWith(post);
}

test('trtexec.txt: one labelled command per TensorRT generation; the TensorRT 11 one names no removed flag', () => {
  const { text, explicit, stronglyTyped } = trtexecCommand(plan, { modelPath: 'm.onnx', qdqPath: 'out dir/model.qdq.onnx', enginePath: 'out dir/model.engine', shapes: { x: [1, 3, 8, 8] } });
  const trt11 = shellWords(commandFor(text, 'trt11'));
  assert.deepEqual(trt11, explicit.slice(1));
  assert.deepEqual(trt11, ['--onnx=out dir/model.qdq.onnx', '--shapes=x:1x3x8x8', '--saveEngine=out dir/model.engine']);
  for (const w of trt11) assert.ok(!REMOVED_IN_TRT11.includes(w.split('=')[0]), `${w}: removed in TensorRT 11`);
  assert.deepEqual(shellWords(commandFor(text, 'trt10')), stronglyTyped.slice(1));
  assert.ok(stronglyTyped.includes('--stronglyTyped') && stronglyTyped.includes('--onnx=out dir/model.qdq.onnx'));
  assert.equal(trtexecFlags(shellWords(implicitLine(text))).get('--onnx'), 'm.onnx', 'the implicit form builds the original model');
  const verify = text.split('\n').filter((l) => l.startsWith('# trtexec '));
  assert.equal(verify.length, 1);
  const verifyFlags = trtexecFlags(shellWords(verify[0].slice(2)));
  assert.equal(verifyFlags.get('--profilingVerbosity'), 'detailed');
  assert.ok(verifyFlags.get('--exportLayerInfo') && verifyFlags.get('--exportProfile'));
  assert.ok(text.endsWith('\n'));
});

test('the implicit trtexec line survives the shell, has one =-value per flag, and parses like trtexec; every name is a model layer', () => {
  const { text, implicit } = trtexecCommand(plan, { modelPath: inputs.model.path, calibPath: 'out dir/calibration.cache' });
  const line = implicitLine(text);
  const words = shellWords(line);
  assert.deepEqual(words, implicit!.slice(1), 'the shell must hand trtexec exactly the intended arguments');
  const flags = trtexecFlags(words);
  assert.equal(flags.get('--onnx'), 'models/export test.onnx');
  assert.ok(flags.has('--fp16') && flags.has('--int8'));
  assert.equal(flags.get('--precisionConstraints'), 'obey');
  assert.equal(flags.get('--calib'), 'out dir/calibration.cache');
  const precisions = parseTrtexecSpec(flags.get('--layerPrecisions')!);
  const outputTypes = parseTrtexecSpec(flags.get('--layerOutputTypes')!);
  for (const name of [...precisions.keys(), ...outputTypes.keys()]) assert.ok(layerNames.has(name), `${name} is not a layer of the model`);
  assert.match(line, /'block:conv':fp16/, "a name with ':' is written 'name':type");
  assert.doesNotMatch(line, /'conv1'/, 'names that need no quoting are not quoted');
});

test('trtexec follows the action table and the placement; fused nodes carry the type handed onward', () => {
  const flags = trtexecFlags(shellWords(implicitLine(trtexecCommand(plan, { modelPath: 'm.onnx' }).text)));
  const precisions = parseTrtexecSpec(flags.get('--layerPrecisions')!);
  const outputTypes = parseTrtexecSpec(flags.get('--layerOutputTypes')!);
  // int8: int8 in, and int8 out where its readers quantize it (conv1 -> conv10); mixed: int8 + fp16; fp16: fp16 + fp16.
  assert.deepEqual([precisions.get('conv1'), outputTypes.get('conv1')], ['int8', 'int8']);
  assert.deepEqual([precisions.get('conv10'), outputTypes.get('conv10')], ['int8', 'fp16']);
  assert.deepEqual([precisions.get('block:conv'), outputTypes.get('block:conv')], ['fp16', 'fp16']);
  // fc and gram write the model's outputs: no reader quantizes them, they leave the engine as float32.
  assert.deepEqual([precisions.get('fc'), outputTypes.get('fc')], ['int8', 'fp32']);
  assert.deepEqual([precisions.get('gram'), outputTypes.get('gram')], ['int8', 'fp32']);
  // The tensor the next layer reads is the fused group's output: its writer gets the type.
  assert.equal(outputTypes.get('relu1'), 'int8');
  assert.equal(outputTypes.get('node_of_hs10'), 'fp16');
  // Inside an int8 kernel's fused group nothing else is pinned (BN, the hardswish's inner nodes).
  for (const inner of ['bn10', 'node_of_a10', 'node_of_cl10', 'node_of_m10']) {
    assert.ok(!precisions.has(inner) && !outputTypes.has(inner), `${inner} should be left to the builder`);
  }
});

test('fp16 and fp32 layers pin every fused node, so an fp32-protected layer keeps its activation in fp32', async () => {
  const f = await exportFixture({ conv1: 'fp32', conv10: 'fp16', 'block:conv': 'int8', fc: 'mixed', gram: 'fp16' });
  const p = buildPrecisionPlan(f.policy, f.layers, f.graph);
  const flags = trtexecFlags(shellWords(implicitLine(trtexecCommand(p, { modelPath: 'm.onnx' }).text)));
  const precisions = parseTrtexecSpec(flags.get('--layerPrecisions')!);
  const outputTypes = parseTrtexecSpec(flags.get('--layerOutputTypes')!);
  assert.deepEqual([precisions.get('relu1'), outputTypes.get('relu1')], ['fp32', 'fp32']);
  for (const n of ['bn10', 'node_of_a10', 'node_of_cl10', 'node_of_m10', 'node_of_hs10']) {
    assert.deepEqual([precisions.get(n), outputTypes.get(n)], ['fp16', 'fp16'], n);
  }
  assert.deepEqual([precisions.get('fc'), outputTypes.get('fc')], ['int8', 'fp16']);
});

test('--wildcard writes patterns that cover a node and its parser-made _<N> layers, never another node', () => {
  const cmd = trtexecCommand(plan, { modelPath: 'm.onnx', wildcard: true });
  const flags = trtexecFlags(shellWords(implicitLine(cmd.text)));
  const precisions = parseTrtexecSpec(flags.get('--layerPrecisions')!);
  assert.equal(precisions.get('conv10*'), 'int8');
  assert.equal(precisions.get('fc*'), 'int8');
  // conv1* would also match conv10: written as the exact name plus conv1_*.
  assert.ok(!precisions.has('conv1*'));
  assert.equal(precisions.get('conv1'), 'int8');
  assert.equal(precisions.get('conv1_*'), 'int8');
  const owner = new Map(plan.entries.map((e) => [e.name, e.name]));
  // Extra layers the ONNX parser makes for a node: <name>_<N> with a parser-wide counter.
  const network = [...layerNames, ...plan.entries.map((e) => `${e.name}_17`)];
  for (const pattern of precisions.keys()) {
    const matched = network.filter((n) => matchesPattern(pattern, n));
    assert.ok(matched.length > 0, `${pattern} matches nothing`);
    const base = pattern.replace(/_?\*$/, '');
    for (const n of matched) assert.ok(n === base || n === `${base}_17`, `${pattern} also reaches ${n} (${owner.get(n) ?? 'not planned'})`);
  }
});

test('a name with , or \' cannot be written for trtexec: the implicit line is left out with a pointer to build_engine.py and polygraphy.txt', async () => {
  for (const bad of ['conv,1', "conv'1"]) {
    const model = makeModel([{ name: bad, opType: 'Conv', input: ['x', 'w'], output: ['y'] }], [valueInfo('x', [1, 16, 4, 4])], [valueInfo('y', [1, 16, 4, 4])], [randomTensor('w', [16, 16, 1, 1], 'bad-w')]);
    const { graph, layers } = await discoverLayers(model);
    const p = buildPrecisionPlan({ layers: [{ name: bad, op: 'Conv', precision: 'fp16', macs: 1 }], calibration: { method: 'max', amax: {} } }, layers, graph);
    const cmd = trtexecCommand(p, { modelPath: 'm.onnx' });
    assert.equal(cmd.implicit, undefined);
    assert.match(implicitLine(cmd.text), /^# not expressible: .*build_engine\.py.*polygraphy\.txt/);
    assert.ok(cmd.warnings.some((w) => /implicit/.test(w) && /build_engine\.py/.test(w)));
    assert.deepEqual(cmd.explicit, ['trtexec', '--onnx=model.qdq.onnx'], 'the explicit commands do not need layer names');
    // The other formats can express it.
    const poly = polygraphyCommand(p, { modelPath: 'm.onnx' });
    const words = shellWords(implicitLine(poly.text));
    assert.equal(words[words.indexOf('--layer-precisions') + 1], `${bad}:float16`);
  }
});

test('calibration.cache: TensorRT header, and every hex is the float32 bits of amax/127 of its tensor', () => {
  const text = renderExport('calib-cache', inputs).content;
  const cache = parseCalibrationCache(text);
  assert.equal(text.split('\n')[0], 'TRT-8601-EntropyCalibration2');
  assert.equal(cache.algorithm, 'EntropyCalibration2');
  const amax = fx.policy.calibration.amax;
  for (const line of text.trim().split('\n').slice(1)) {
    const m = /^(.+): ([0-9a-f]{8})$/.exec(line);
    assert.ok(m, `bad line ${line}`);
    const bits = Buffer.from(m[2], 'hex').readFloatBE(0);
    const tensor = m[1];
    const expected = tensor === 'c1' ? amax.r1 : amax[tensor];
    assert.ok(expected !== undefined, `${tensor} has no amax in the policy`);
    assert.equal(bits, Math.fround(expected / 127), tensor);
  }
  // Every tensor read or written as int8: inputs of int8/mixed layers, the activation operand of the MatMul, and
  // conv1's result (read by conv10 in int8) with its own output (ReLU: the post-activation amax is exact). The
  // model outputs fc and gram write are float.
  assert.deepEqual([...cache.scales.keys()].sort(), ['c1', 'f', 'r1', 't', 'tt', 'x'].sort());
  assert.equal(scaleHex(127), '3f800000');
  assert.equal(hexScale('3f800000'), 1);
  assert.equal(renderExport('calib-cache', inputs, { trtVersion: '10.3.0' }).content.split('\n')[0], 'TRT-100300-EntropyCalibration2');
});

test('TensorRT version codes: 8.6.1 -> 8601, 10.3.0 -> 100300; 11.x has no calibrators', () => {
  assert.equal(trtVersionCode('8.6.1'), 8601);
  assert.equal(trtVersionCode('8.5.10'), 8510);
  assert.equal(trtVersionCode('10.3.0'), 100300);
  assert.equal(trtVersionCode('10.3'), 100300);
  assert.equal(trtVersionCode('100300'), 100300);
  assert.equal(trtVersionCode('8601'), 8601);
  assert.throws(() => trtVersionCode('11.0'), /qdq-onnx/);
  assert.throws(() => trtVersionCode('eight'), UserError);
  assert.throws(() => calibrationCache(new Map([['t', 0]]), 8601), UserError);
});

test('build_engine.py is valid Python 3 and its plan names the trtexec line\'s layers and types', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-export-'));
  const script = join(dir, 'build_engine.py');
  writeFileSync(script, renderExport('trt-python', inputs).content);
  execFileSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', script]);
  const printed = JSON.parse(execFileSync('python3', [script, '--print-plan'], { encoding: 'utf8' }));
  const flags = trtexecFlags(shellWords(implicitLine(renderExport('trtexec', inputs).content)));
  assert.deepEqual(new Map(Object.entries(printed.layerPrecisions)), parseTrtexecSpec(flags.get('--layerPrecisions')!));
  assert.deepEqual(new Map(Object.entries(printed.layerOutputTypes)), parseTrtexecSpec(flags.get('--layerOutputTypes')!));
  assert.deepEqual(printed.amax, Object.fromEntries(plan.amax));
});

// tensorrt cannot be installed here (no GPU, NVIDIA wheels). This stand-in implements only the API surface
// build_engine.py touches and records what the script sets, so the script's own logic runs for real.
const FAKE_TENSORRT = `
import json, os
__version__ = os.environ.get("FAKE_TRT_VERSION", "8.6.1")
class _T:
    def __init__(self, n): self.n = n
    def __repr__(self): return self.n
float32, float16, int8, int32 = _T("fp32"), _T("fp16"), _T("int8"), _T("int32")
_DT = {"fp32": float32, "fp16": float16, "int8": int8, "int32": int32}
class LayerType:
    CONSTANT, SHAPE, OTHER = "CONSTANT", "SHAPE", "OTHER"
class Logger:
    WARNING = 2
    def __init__(self, level): pass
class NetworkDefinitionCreationFlag:
    EXPLICIT_BATCH, STRONGLY_TYPED = 0, 5
class BuilderFlag:
    FP16, INT8, OBEY_PRECISION_CONSTRAINTS = "FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"
class Tensor:
    def __init__(self, name, dtype, shape=()):
        self.name, self.dtype, self.shape, self.range = name, dtype, tuple(shape), None
    def set_dynamic_range(self, lo, hi):
        self.range = [lo, hi]
        return True
class Layer:
    def __init__(self, name, type, outputs):
        self.name, self.type, self._out, self._precision, self.output_types = name, type, outputs, None, {}
    @property
    def num_outputs(self): return len(self._out)
    def get_output(self, i): return self._out[i]
    @property
    def precision(self): return self._precision
    @precision.setter
    def precision(self, t): self._precision = t
    def set_output_type(self, i, t): self.output_types[i] = t
class Network:
    def __init__(self, flags): self.flags, self.layers, self.inputs = flags, [], []
    @property
    def num_layers(self): return len(self.layers)
    def get_layer(self, i): return self.layers[i]
    @property
    def num_inputs(self): return len(self.inputs)
    def get_input(self, i): return self.inputs[i]
class OnnxParser:
    num_errors = 0
    def __init__(self, network, logger): self.network = network
    def parse_from_file(self, path):
        self.network.parsed = os.path.basename(path)
        desc = json.load(open(path))
        self.network.inputs = [Tensor(i["name"], float32, i["shape"]) for i in desc["inputs"]]
        for l in desc["layers"]:
            outs = [Tensor(o["name"], _DT[o.get("dtype", "fp32")]) for o in l["outputs"]]
            self.network.layers.append(Layer(l["name"], getattr(LayerType, l.get("type", "OTHER")), outs))
        return True
class Profile:
    def __init__(self): self.shapes = {}
    def set_shape(self, name, mn, opt, mx): self.shapes[name] = [list(mn), list(opt), list(mx)]
class Config:
    def __init__(self): self.flags, self.profiles = [], []
    def set_flag(self, f): self.flags.append(f)
    def add_optimization_profile(self, p): self.profiles.append(p.shapes)
class Builder:
    def __init__(self, logger): pass
    def create_network(self, flags): return Network(flags)
    def create_builder_config(self): return Config()
    def create_optimization_profile(self): return Profile()
    def build_serialized_network(self, network, config):
        tensors = {}
        for l in network.layers:
            for t in l._out:
                if t.range is not None: tensors[t.name] = t.range
        for t in network.inputs:
            if t.range is not None: tensors[t.name] = t.range
        record = {
            "parsed": network.parsed, "networkFlags": network.flags, "flags": config.flags, "profiles": config.profiles, "ranges": tensors,
            "layers": dict((l.name, {"precision": repr(l.precision) if l.precision else None,
                                     "outputTypes": dict((str(k), repr(v)) for k, v in l.output_types.items())}) for l in network.layers),
        }
        json.dump(record, open(os.environ["FAKE_TRT_RECORD"], "w"))
        return b"engine"
`;

test('build_engine.py drives TensorRT\'s Python API: node and _<N> layers, output type on the tensor\'s writer, ranges, flags, missing layers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-export-'));
  mkdirSync(join(dir, 'fake', 'tensorrt'), { recursive: true });
  writeFileSync(join(dir, 'fake', 'tensorrt', '__init__.py'), FAKE_TENSORRT);
  const script = join(dir, 'build_engine.py');
  writeFileSync(script, renderExport('trt-python', inputs).content);
  // The network TensorRT's parser would make: a layer per node, named like the node, writing the node's tensors;
  // the Gemm as a matrix multiply plus a bias layer fc_3; weights as a Constant layer; gram fused away.
  const layers: Array<{ name: string; type?: string; outputs: Array<{ name: string; dtype?: string }> }> = [];
  for (const n of fx.graph.nodes) {
    const name = trtLayerName(n);
    if (n.opType === 'Constant' || name === 'gram') continue;
    if (name === 'fc') {
      layers.push({ name: 'wfc', type: 'CONSTANT', outputs: [{ name: 'wfc' }] });
      layers.push({ name: 'fc', outputs: [{ name: 'fc_matmul_out' }] });
      layers.push({ name: 'fc_3', outputs: [{ name: 'logits' }] });
      continue;
    }
    layers.push({ name, outputs: (n.output ?? []).map((o) => ({ name: o })) });
  }
  layers.push({ name: 'tokens_shape', type: 'SHAPE', outputs: [{ name: 'shape_out', dtype: 'int32' }] });
  const net = join(dir, 'network.json');
  writeFileSync(net, JSON.stringify({ inputs: [{ name: 'x', shape: [-1, 3, 8, 8] }], layers }));
  const record = join(dir, 'record.json');
  const run = spawnSync('python3', [script, '--onnx', net, '--engine', join(dir, 'out.engine')], {
    encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(dir, 'fake'), FAKE_TRT_RECORD: record },
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(readFileSync(join(dir, 'out.engine'), 'utf8'), 'engine');
  assert.match(run.stderr, /policy layers not found in the TensorRT network \(1\): gram/);
  const r = JSON.parse(readFileSync(record, 'utf8'));
  assert.equal(r.networkFlags, 1, 'TensorRT 8 needs the explicit-batch flag');
  assert.deepEqual(r.flags.sort(), ['FP16', 'INT8', 'OBEY_PRECISION_CONSTRAINTS']);
  assert.deepEqual(r.profiles, [{ x: [[1, 3, 8, 8], [1, 3, 8, 8], [1, 3, 8, 8]] }]);
  assert.deepEqual(r.layers.conv1, { precision: 'int8', outputTypes: { 0: 'int8' } });
  assert.deepEqual(r.layers.relu1, { precision: null, outputTypes: { 0: 'int8' } });
  assert.deepEqual(r.layers.conv10, { precision: 'int8', outputTypes: { 0: 'fp16' } });
  assert.deepEqual(r.layers['block:conv'], { precision: 'fp16', outputTypes: { 0: 'fp16' } });
  // Both layers of the Gemm compute in int8; the output type lands on the one writing the ONNX output.
  assert.deepEqual(r.layers.fc, { precision: 'int8', outputTypes: {} });
  assert.deepEqual(r.layers.fc_3, { precision: 'int8', outputTypes: { 0: 'fp32' } });
  assert.deepEqual(r.layers.wfc, { precision: null, outputTypes: {} }, 'constants keep their type');
  assert.deepEqual(r.layers.tokens_shape, { precision: null, outputTypes: {} });
  for (const [tensor, value] of plan.amax) {
    if (tensor === 'gram_out' || tensor === 'tt' || tensor === 't') continue;
    assert.deepEqual(r.ranges[tensor], [-value, value], tensor);
  }
});

test('build_engine.py per TensorRT generation: 11 builds model.qdq.onnx with no precision flags, 10.x --explicit strongly typed, --implicit refused on 11', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-export-'));
  mkdirSync(join(dir, 'fake', 'tensorrt'), { recursive: true });
  writeFileSync(join(dir, 'fake', 'tensorrt', '__init__.py'), FAKE_TENSORRT);
  const script = join(dir, 'build_engine.py');
  writeFileSync(script, renderExport('trt-python', inputs, { qdqPath: 'model.qdq.onnx' }).content);
  // The stand-in parser reads a network description; as model.qdq.onnx beside the script it stands for the QDQ model.
  writeFileSync(join(dir, 'model.qdq.onnx'), JSON.stringify({ inputs: [{ name: 'x', shape: [-1, 3, 8, 8] }], layers: [{ name: 'conv1', outputs: [{ name: 'c1' }] }] }));
  const record = join(dir, 'record.json');
  const build = (version: string, ...args: string[]) => spawnSync('python3', [script, '--engine', join(dir, 'out.engine'), ...args], {
    encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(dir, 'fake'), FAKE_TRT_RECORD: record, FAKE_TRT_VERSION: version },
  });
  for (const [version, args, flags] of [['11.0.0', [], 0], ['10.8.0', ['--explicit'], 1 << 5]] as const) {
    const run = build(version, ...args);
    assert.equal(run.status, 0, run.stderr);
    const r = JSON.parse(readFileSync(record, 'utf8'));
    assert.equal(r.parsed, 'model.qdq.onnx', `${version}: builds the QDQ model`);
    assert.equal(r.networkFlags, flags, `${version}: strongly typed (a flag before 11, the only mode in 11)`);
    assert.deepEqual(r.flags, [], `${version}: no precision builder flags`);
    assert.deepEqual(r.ranges, {}, `${version}: no dynamic ranges`);
    assert.deepEqual(r.layers.conv1, { precision: null, outputTypes: {} });
    assert.deepEqual(r.profiles, [{ x: [[1, 3, 8, 8], [1, 3, 8, 8], [1, 3, 8, 8]] }]);
  }
  const refused = build('11.0.0', '--implicit');
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /removed implicit quantization/);
});

test('polygraphy.txt: TensorRT 11 and 10.x build model.qdq.onnx without precision flags; the implicit line has one name:dtype per argument, as trtexec\'s', () => {
  const text = renderExport('polygraphy', inputs).content;
  const trt11 = shellWords(commandFor(text, 'trt11'));
  const shapes = ['--trt-min-shapes', 'x:[1,3,8,8]', '--trt-opt-shapes', 'x:[1,3,8,8]', '--trt-max-shapes', 'x:[1,3,8,8]'];
  assert.deepEqual(trt11, ['convert', 'model.qdq.onnx', ...shapes, '-o', 'model.engine']);
  assert.ok(!trt11.includes('--int8') && !trt11.includes('--fp16'));
  assert.deepEqual(shellWords(commandFor(text, 'trt10')), ['convert', 'model.qdq.onnx', '--strongly-typed', ...shapes, '-o', 'model.engine']);
  const words = shellWords(implicitLine(text));
  assert.deepEqual(words.slice(0, 2), ['convert', 'models/export test.onnx']);
  assert.ok(words.includes('--fp16') && words.includes('--int8'));
  assert.equal(words[words.indexOf('--precision-constraints') + 1], 'obey');
  assert.equal(words[words.indexOf('--calibration-cache') + 1], 'calibration.cache');
  const start = words.indexOf('--layer-precisions') + 1;
  const end = words.indexOf('-o');
  const dtype: Record<string, string> = { float32: 'fp32', float16: 'fp16', int8: 'int8' };
  const pairs = new Map(words.slice(start, end).map((w) => {
    const at = w.lastIndexOf(':');
    return [w.slice(0, at), dtype[w.slice(at + 1)]] as [string, string];
  }));
  const flags = trtexecFlags(shellWords(implicitLine(renderExport('trtexec', inputs).content)));
  assert.deepEqual(pairs, parseTrtexecSpec(flags.get('--layerPrecisions')!));
  const script = text.split('\n').find((l) => l.includes('trt-network-script'))!;
  const scriptWords = shellWords(script.replace(/^# /, ''));
  assert.equal(scriptWords[1], 'build_engine.py');
});

test('precision.json: layer -> precision and output type, amax per tensor, the model hash', () => {
  const doc = JSON.parse(renderExport('json', inputs).content);
  assert.equal(doc.model.sha256, fx.sha256);
  assert.deepEqual(doc.amax, Object.fromEntries(plan.amax));
  assert.deepEqual(doc.layers.conv10, { precision: 'int8', outputType: 'fp16', outputTensor: 'c10', op: 'Conv', role: 'layer', layer: 'conv10', policy: 'mixed' });
  assert.deepEqual(doc.layers.node_of_hs10, { outputType: 'fp16', outputTensor: 'hs10', op: 'Div', role: 'fused', layer: 'conv10', policy: 'mixed' });
  assert.deepEqual(doc.inputShapes, { x: [1, 3, 8, 8] });
});

test('writeExports fills a folder with every format, each written atomically (no temp files left)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-export-'));
  const { files } = writeExports(dir, inputs);
  assert.deepEqual(readdirSync(dir).sort(), Object.values(EXPORT_FILE_NAMES).sort());
  assert.equal(files.length, Object.keys(EXPORT_FILE_NAMES).length);
  const flags = trtexecFlags(shellWords(implicitLine(readFileSync(join(dir, 'trtexec.txt'), 'utf8'))));
  assert.equal(flags.get('--calib'), join(dir, 'calibration.cache'), 'the command points at the folder\'s own cache');
  assert.equal(flags.get('--saveEngine'), join(dir, 'model.engine'));
});

test('policy problems are user errors: a layer the model lacks, a missing or non-positive amax', () => {
  const unknown = { ...fx.policy, layers: [...fx.policy.layers, { name: 'ghost', op: 'Conv', precision: 'int8' as const, macs: 0 }] };
  assert.throws(() => buildPrecisionPlan(unknown, fx.layers, fx.graph), (e: unknown) => e instanceof UserError && /ghost/.test(e.message));
  const { x: _dropped, ...rest } = fx.policy.calibration.amax;
  const missing = { ...fx.policy, calibration: { method: 'max', amax: rest } };
  assert.throws(() => buildPrecisionPlan(missing, fx.layers, fx.graph), (e: unknown) => e instanceof UserError && /amax/.test(e.message) && /\bx\b/.test(e.message));
  const zero = { ...fx.policy, calibration: { method: 'max', amax: { ...fx.policy.calibration.amax, f: 0 } } };
  assert.throws(() => buildPrecisionPlan(zero, fx.layers, fx.graph), UserError);
  // A layer the policy leaves out is exported as fp32, with a warning.
  const partial = { ...fx.policy, layers: fx.policy.layers.filter((l) => l.name !== 'gram') };
  const p = buildPrecisionPlan(partial, fx.layers, fx.graph);
  assert.equal(p.entries.find((e) => e.name === 'gram')!.precision, 'fp32');
  assert.ok(p.warnings.some((w) => /gram/.test(w)));
});
