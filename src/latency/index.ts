/**
 * Latency models by target name: a GPU profile id (roofline), `ort-cpu` (measured onnxruntime time of the
 * simulated model), or `profile:DIR` (imported trtexec profiles).
 */
import seedrandom from 'seedrandom';
import { UserError } from '../errors.ts';
import type { ModelProto } from '../onnx/model.ts';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { calibrationTensors, collectStatistics, CalibrationTable, DEFAULT_CALIBRATION } from '../quant/calibrate.ts';
import { placementOf, type SimulationBase } from '../quant/simulate.ts';
import { placedPrecisions } from '../quant/placement.ts';
import type { LatencyModel } from './types.ts';
import { deviceIds, loadDeviceProfile } from './device-profile.ts';
import { planKernels, type KernelPlan, type LatencyGraph } from './graph.ts';
import { buildLatencyGraph } from './onnx-graph.ts';
import { RooflineLatencyModel } from './roofline.ts';
import { ProfileLatencyModel, readProfileDir } from './profile-model.ts';
import { OrtCpuLatencyModel, simulatedModelBuilder, type ModelBuilder } from './ort-cpu.ts';
import { inputDtypes } from '../onnx/layers.ts';
import { typedArray } from '../data/dtype.ts';

export type { LatencyModel, LatencyEstimate, LayerLatency } from './types.ts';

export type ParsedTarget = { kind: 'roofline'; device: string } | { kind: 'ort-cpu' } | { kind: 'profile'; dir: string };

export function knownTargets(): string[] {
  return [...deviceIds(), 'ort-cpu', 'profile:DIR'];
}

/** Parses a --target value; UserError listing the known targets for anything else. */
export function parseTarget(target: string): ParsedTarget {
  const t = target.trim();
  if (t.startsWith('profile:')) {
    const dir = t.slice('profile:'.length);
    if (!dir) throw new UserError('--target profile:DIR needs a folder, e.g. --target profile:./trt-profiles');
    return { kind: 'profile', dir };
  }
  if (t === 'ort-cpu') return { kind: 'ort-cpu' };
  const id = t.toLowerCase();
  if (deviceIds().includes(id)) return { kind: 'roofline', device: id };
  throw new UserError(`unknown latency target "${target}"; known targets: ${knownTargets().join(', ')}`);
}

export interface LatencyOptions {
  /** The model as loaded for layer discovery (opset >= 13), its graph view, and the input shapes layers were probed at. */
  model: ModelProto;
  graph: Graph;
  inputShapes: Record<string, number[]>;
  /** Samples per inference (default: the batch of inputShapes, else 1). */
  batch?: number;
  /** A latency graph already built for this model (saves one onnxruntime probe). */
  latencyGraph?: LatencyGraph;
  /** profile:DIR: the GPU profile that prices reformats between mixed-precision layers (default t4). */
  device?: string;
  /** ort-cpu: bytes of the model to time per policy (default: the simulated model of `simulation`). */
  buildModel?: ModelBuilder;
  /** ort-cpu: the simulator's inputs; when neither this nor buildModel is given, calibration runs on seeded random inputs (timing does not depend on amax values). */
  simulation?: SimulationBase;
  threads?: number;
  timedRuns?: number;
  warmupRuns?: number;
}

const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

function batchOf(opts: LatencyOptions): number {
  if (opts.batch !== undefined) {
    if (!Number.isInteger(opts.batch) || opts.batch < 1) throw new UserError(`--batch ${opts.batch} must be a positive integer`);
    return opts.batch;
  }
  return Object.values(opts.inputShapes)[0]?.[0] ?? 1;
}

/** Input shapes with the batch dimension set, checked against fixed batch dims of the model. */
export function shapesWithBatch(graph: Graph, inputShapes: Record<string, number[]>, batch: number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, dims] of Object.entries(inputShapes)) {
    const declared = graph.declaredShape(name)?.[0];
    if (typeof declared === 'number' && declared > 0 && declared !== batch) {
      throw new UserError(`model input ${name} has a fixed batch of ${declared}; --batch ${batch} needs a model exported with a dynamic batch dimension`);
    }
    out[name] = [batch, ...dims.slice(1)];
  }
  return out;
}

/** A SimulationBase for timing only: amax from two seeded random inputs. */
export async function timingSimulation(model: ModelProto, graph: Graph, layers: Layer[], inputShapes: Record<string, number[]>): Promise<SimulationBase> {
  const rng = seedrandom('trtmix-timing-calibration');
  const samples = 2;
  const dtypes = inputDtypes(graph);
  const batchSource = (start: number, end: number) => Object.fromEntries(Object.entries(inputShapes).map(([name, dims]) => {
    const one = [1, ...dims.slice(1)];
    const dtype = dtypes[name] ?? 'float32';
    const data = typedArray(dtype, prod(one) * (end - start));
    if (dtype === 'float32') for (let i = 0; i < data.length; i++) data[i] = rng() * 2 - 1;
    return [name, { data, dims: [end - start, ...dims.slice(1)], dtype }];
  }));
  const stats = await collectStatistics(model, calibrationTensors(layers), samples, batchSource, { batchSize: 1 });
  return { model, graph, layers, calibration: new CalibrationTable(stats, samples), defaultCalibration: DEFAULT_CALIBRATION };
}

/** The latency model for a target; the kernel plan is built once and shared by every estimate. */
export async function createLatencyModel(target: string, layers: Layer[], opts: LatencyOptions): Promise<LatencyModel> {
  const parsed = parseTarget(target);
  const batch = batchOf(opts);
  const plan = async (): Promise<{ graph: LatencyGraph; plan: KernelPlan }> => {
    const g = opts.latencyGraph ?? (await buildLatencyGraph(opts.model, opts.graph, layers, opts.inputShapes));
    return { graph: g, plan: planKernels(g) };
  };
  switch (parsed.kind) {
    case 'roofline': {
      const p = await plan();
      // With a simulation that knows its other-ops precision, price the placed graph model.qdq.onnx describes.
      const sim = opts.simulation?.otherOps ? opts.simulation : undefined;
      return new RooflineLatencyModel(p.plan, loadDeviceProfile(parsed.device), batch, sim ? { placement: (policy) => placedPrecisions(placementOf(sim, policy), sim.graph) } : {});
    }
    case 'profile': {
      const files = readProfileDir(parsed.dir);
      const p = await plan();
      return new ProfileLatencyModel(`profile:${parsed.dir}`, p.graph, p.plan, files, loadDeviceProfile(parseDevice(opts.device ?? 't4')));
    }
    case 'ort-cpu': {
      const p = await plan();
      const inputShapes = shapesWithBatch(opts.graph, opts.inputShapes, batch);
      const buildModel = opts.buildModel
        ?? simulatedModelBuilder(opts.simulation ?? (await timingSimulation(opts.model, opts.graph, layers, opts.inputShapes)));
      return new OrtCpuLatencyModel({
        buildModel, layers, inputShapes, inputTypes: inputDtypes(opts.graph), graph: p.graph, plan: p.plan,
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        ...(opts.timedRuns !== undefined ? { timedRuns: opts.timedRuns } : {}),
        ...(opts.warmupRuns !== undefined ? { warmupRuns: opts.warmupRuns } : {}),
      });
    }
  }
}

function parseDevice(id: string): string {
  const parsed = parseTarget(id);
  if (parsed.kind !== 'roofline') throw new UserError(`--device ${id} must be a GPU profile: ${deviceIds().join(', ')}`);
  return parsed.device;
}
