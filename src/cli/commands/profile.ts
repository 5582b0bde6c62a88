import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { withModelOptions, loadModelAndLayers, type LoadedModel, type ModelArgs } from '../model-options.ts';
import { formatTable } from '../table.ts';
import type { GlobalOptions } from '../main.ts';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../fs.ts';
import { encodeModel } from '../../onnx/model.ts';
import { trtLayerName } from '../../onnx/graph.ts';
import type { Layer } from '../../onnx/layer-types.ts';
import type { PolicyFile, Precision } from '../../policy.ts';
import { readPolicyFile, checkPolicyModel, sha256Hex } from '../../export/policy-file.ts';
import { planFor, renderExport, DEFAULT_TRT_VERSION, type ExportInputs } from '../../export/index.ts';
import { trtexecCommand } from '../../export/trtexec.ts';
import { buildQdqModel } from '../../export/qdq-onnx.ts';
import { policyPrecisions } from '../../export/plan.ts';
import { buildLatencyGraph } from '../../latency/onnx-graph.ts';
import { planKernels } from '../../latency/graph.ts';
import { ProfileLatencyModel, readProfileDir } from '../../latency/profile-model.ts';
import { loadDeviceProfile } from '../../latency/device-profile.ts';
import { parseLayerInfo, parseTrtProfile, importBuild } from '../../latency/trt-profile.ts';
import {
  detectTrtVersion, findTrtexec, generationOf, gpuComputeMedianMs, planProfileBuilds, type ProfileBuild, type TrtGeneration,
} from '../../latency/trtexec-profile.ts';

type Args = GlobalOptions & ModelArgs & {
  policy?: string;
  trtexec?: string;
  'trt-version'?: string;
  batch?: number;
  out: string;
};

/** The shapes of inputs with dynamic dims at the requested batch: trtexec would otherwise set every one to 1. */
function dynamicShapes(m: LoadedModel, batch: number | undefined): Record<string, number[]> | undefined {
  const out: Record<string, number[]> = {};
  for (const v of m.graph.inputs) {
    const name = v.name ?? '';
    const shape = m.inputShapes[name];
    const declared = m.graph.declaredShape(name);
    if (!shape || (declared && declared.every((d) => typeof d === 'number' && d > 0))) continue;
    out[name] = batch !== undefined ? [batch, ...shape.slice(1)] : shape;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A policy with one precision on every layer and placeholder scales: TensorRT's timing does not depend on them. */
function uniformPolicyFile(layers: readonly Layer[], precision: Precision): Pick<PolicyFile, 'layers' | 'calibration'> {
  const amax: Record<string, number> = {};
  if (precision === 'int8') {
    for (const l of layers) for (const t of [l.input, l.fusedOutput, ...(l.weightIsConstant ? [] : [l.weight])]) amax[t] = 1;
  }
  return {
    layers: layers.map((l) => ({ name: l.name, op: l.op, precision, macs: l.macs })),
    calibration: { method: 'placeholder scales (timing only)', amax },
  };
}

function parseGeneration(v: string): TrtGeneration {
  const major = Number.parseInt(v, 10);
  if (!Number.isFinite(major) || major < 8) throw new UserError(`--trt-version ${v} must be a TensorRT major version such as 10 or 11`);
  return generationOf(major);
}

interface BuildResult {
  name: ProfileBuild['name'];
  argv: string[];
  log: string;
  gpuComputeMedianMs?: number;
  layersMs: number;
  engineLayers: number;
}

function lastErrorLine(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  const reversed = [...lines].reverse();
  return reversed.find((l) => l.startsWith('[E]')) ?? reversed.find((l) => /error/i.test(l)) ?? reversed[0] ?? 'no output';
}

function runBuild(trtexec: string, b: ProfileBuild, dir: string, quiet: boolean): BuildResult {
  const log = join(dir, `${b.name}.log`);
  if (!quiet) process.stderr.write(`building and profiling the ${b.name} engine with trtexec (log: ${log})...\n`);
  const r = spawnSync(trtexec, b.args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  writeFileAtomic(log, `$ ${[trtexec, ...b.args].join(' ')}\n${text}`);
  if (r.error) throw new UserError(`could not run ${trtexec} (${r.error.message}); check --trtexec`);
  if (r.status !== 0) {
    throw new UserError(`trtexec could not build the ${b.name} engine (exit ${r.status ?? r.signal}): ${lastErrorLine(text)}; the full log is ${log}`);
  }
  const profilePath = join(dir, `${b.name}.profile.json`);
  let profile;
  try {
    profile = parseTrtProfile(JSON.parse(readFileSync(profilePath, 'utf8')));
  } catch (e) {
    throw new UserError(`trtexec finished the ${b.name} build but ${profilePath} is not a profile it exports (${(e as Error).message}); see ${log}`);
  }
  return {
    name: b.name, argv: [trtexec, ...b.args], log,
    ...(gpuComputeMedianMs(text) !== undefined ? { gpuComputeMedianMs: gpuComputeMedianMs(text) } : {}),
    layersMs: profile.layers.reduce((s, l) => s + l.ms, 0),
    engineLayers: profile.layers.length,
  };
}

export const profileCommand: CommandModule<GlobalOptions, Args> = {
  command: 'profile',
  describe: 'Measure per-layer TensorRT times with trtexec (writes profile:DIR)',
  builder: (y) =>
    withModelOptions(y)
      .option('policy', { type: 'string', describe: 'policy.json whose engine to build and profile as well' })
      .option('trtexec', { type: 'string', describe: 'trtexec executable (default: trtexec on PATH)' })
      .option('trt-version', { type: 'string', describe: 'TensorRT major version of that trtexec, 10 or 11 (default: read from its --help banner)' })
      .option('batch', { type: 'number', describe: 'Batch of the engines for models with a dynamic batch (default: that of --input-shape, else 1)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Folder to write the profiles, layer info and logs into (the DIR of --target profile:DIR)' })
      .epilogue('TensorRT <= 10 builds the model with --fp16 and --fp16 --int8 (and the policy\'s own flags); TensorRT 11 builds strongly typed from the models trtmix writes: fp16.onnx (every layer cast to float16), int8.qdq.onnx (Q/DQ on every layer) and the policy\'s model.qdq.onnx. Each build runs with --exportProfile --exportLayerInfo --profilingVerbosity=detailed --separateProfileRun.')
      .example([
        ['$0 profile --model m.onnx --input-shape x:1x3x224x224 --out profiles/', 'Profile your model on this machine\'s GPU'],
        ['$0 profile --model m.onnx --policy runs/x/policy.json --trtexec /usr/src/tensorrt/bin/trtexec --out profiles/', 'The policy\'s engine as well, with a trtexec that is not on PATH'],
        ['$0 search --model m.onnx --data d.npy --target profile:profiles/', 'Search with the measured per-layer times'],
        ['$0 latency --model m.onnx --target h100 --validate profile:profiles/', 'How well the H100 roofline ranks your layers'],
      ]) as any,
  handler: async (args) => {
    if (args.batch !== undefined && (!Number.isInteger(args.batch) || args.batch < 1)) throw new UserError(`--batch ${args.batch} must be a positive integer`);
    const dir = resolve(args.out);
    mkdirSync(dir, { recursive: true });
    const trtexec = findTrtexec(args.trtexec);
    const detected = args['trt-version'] === undefined ? detectTrtVersion(trtexec) : undefined;
    const generation = args['trt-version'] !== undefined ? parseGeneration(args['trt-version']) : generationOf(detected!.major);
    const m = await loadModelAndLayers(args);
    const sha256 = sha256Hex(readFileSync(m.path));
    const policy = args.policy ? readPolicyFile(args.policy) : undefined;
    if (policy) {
      const { matches } = checkPolicyModel(policy, m.path, true);
      if (!matches && !args.quiet) process.stderr.write(`trtmix: warning: ${args.policy} was searched on another model than ${m.path} (sha256 differs)\n`);
    }
    const shapes = dynamicShapes(m, args.batch);
    const inputs = (p: Pick<PolicyFile, 'layers' | 'calibration'>): ExportInputs => ({ policy: p, layers: m.layers, graph: m.graph, model: { path: m.path, sha256 }, inputShapes: m.inputShapes });

    let policyArgs: string[] | undefined;
    if (generation === 10 && policy) {
      const warnings: string[] = [];
      const precisions = policyPrecisions(policy, m.layers, warnings).precisions;
      const calibPath = join(dir, 'calibration.cache');
      if ([...precisions.values()].some((p) => p === 'int8' || p === 'mixed')) {
        writeFileAtomic(calibPath, renderExport('calib-cache', inputs(policy), { trtVersion: detected?.version ?? DEFAULT_TRT_VERSION }).content);
      }
      const implicit = trtexecCommand(planFor(inputs(policy)), { modelPath: m.path, calibPath, ...(shapes ? { shapes } : {}) }).implicit;
      if (!implicit) throw new UserError(`${args.policy} names a layer trtexec's --layerPrecisions cannot express (a ',' or quote in its name); profile it with --trt-version 11, which builds from model.qdq.onnx`);
      policyArgs = implicit.slice(1);
    }
    if (generation === 11) {
      // TensorRT 11 reads precisions from the model itself: write the three models the builds read. The Q/DQ rewrite
      // may rename an unnamed node's output, and with it the layer name TensorRT derives from it (node_of_<output>):
      // naming such nodes first keeps every engine layer mappable to the layers trtmix discovered.
      for (const node of m.graph.nodes) if (!node.name) node.name = trtLayerName(node);
      writeFileAtomic(join(dir, 'fp16.onnx'), encodeModel(buildQdqModel(m.graph.model, m.graph, m.layers, uniformPolicyFile(m.layers, 'fp16')).model));
      writeFileAtomic(join(dir, 'int8.qdq.onnx'), encodeModel(buildQdqModel(m.graph.model, m.graph, m.layers, uniformPolicyFile(m.layers, 'int8')).model));
      if (policy) writeFileAtomic(join(dir, 'policy.qdq.onnx'), renderExport('qdq-onnx', inputs(policy)).content);
    }
    const builds = planProfileBuilds({ generation, dir, model: m.path, shapes, policy: !!policy, ...(policyArgs ? { policyArgs } : {}) });
    const results = builds.map((b) => runBuild(trtexec, b, dir, !!args.quiet));

    // What the folder says, read back the way --target profile:DIR reads it.
    const latencyGraph = await buildLatencyGraph(m.model, m.graph, m.layers, m.inputShapes);
    const plan = planKernels(latencyGraph);
    const files = readProfileDir(dir);
    const model = new ProfileLatencyModel(`profile:${dir}`, latencyGraph, plan, files, loadDeviceProfile('t4'));
    const unmapped = Object.fromEntries(Object.entries(model.builds).map(([p, b]) => [p, b!.unmapped.length]));
    let policyCheck: { predictedMs: number; measuredMs: number; unmapped: number } | undefined;
    if (policy) {
      const { precisions } = policyPrecisions(policy, m.layers, []);
      const predicted = await model.estimate(Object.fromEntries([...precisions].map(([n, p]) => [n, { precision: p }])));
      const own = importBuild('int8', parseTrtProfile(JSON.parse(readFileSync(join(dir, 'policy.profile.json'), 'utf8'))), latencyGraph, plan,
        parseLayerInfo(JSON.parse(readFileSync(join(dir, 'policy.layers.json'), 'utf8'))));
      policyCheck = { predictedMs: predicted.totalMs, measuredMs: own.totalMs, unmapped: own.unmapped.length };
    }
    const manifest = {
      model: { path: m.path, sha256 },
      tensorrt: { generation, ...(detected ? { version: detected.version } : {}) },
      trtexec,
      inputShapes: shapes ?? m.inputShapes,
      builds: results.map((r) => ({ ...r, profile: join(dir, `${r.name}.profile.json`), layerInfo: join(dir, `${r.name}.layers.json`) })),
      unmappedEngineLayers: unmapped,
      ...(policyCheck ? { policy: { path: args.policy, ...policyCheck } } : {}),
      target: `profile:${dir}`,
    };
    writeFileAtomic(join(dir, 'trtmix-profile.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (args.json) {
      process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
      return;
    }
    const fmt = (x?: number) => (x === undefined ? '-' : x.toFixed(4));
    process.stdout.write(`${m.path}: TensorRT ${detected?.version ?? generation} engines profiled into ${dir}\n\n`);
    process.stdout.write(`${formatTable(['build', 'engine layers', 'sum of layers ms', 'GPU compute median ms', 'unmapped'], results.map((r) => [r.name, r.engineLayers, fmt(r.layersMs), fmt(r.gpuComputeMedianMs), r.name === 'policy' ? (policyCheck?.unmapped ?? 0) : (unmapped[r.name] ?? 0)]), ['l', 'r', 'r', 'r', 'r'])}\n`);
    if (policyCheck) process.stdout.write(`\npolicy: ${fmt(policyCheck.predictedMs)} ms predicted from the fp16 and int8 profiles, ${fmt(policyCheck.measuredMs)} ms in its own engine\n`);
    process.stdout.write(`\nuse it: trtmix search ... --target profile:${dir}   ·   trtmix latency ... --target h100 --validate profile:${dir}\n`);
  },
};
