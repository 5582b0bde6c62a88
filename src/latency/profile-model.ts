/**
 * `profile:DIR` latency: per-layer kernel times measured by TensorRT (an all-FP16 and an all-INT8 build,
 * optionally all-FP32), recombined for any policy. A layer costs what it cost in the build of its precision
 * (mixed layers: the int8 build); the reformats a mixed policy adds between layers of different precisions
 * exist in neither uniform build, so they are priced with the roofline reformat formula on a device profile.
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import { UserError } from '../errors.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../policy.ts';
import type { LatencyEstimate, LatencyModel, LayerLatency } from './types.ts';
import type { LatencyGraph, KernelPlan } from './graph.ts';
import type { DeviceProfile } from './device-profile.ts';
import { priceKernels, summarize } from './roofline.ts';
import { importBuild, parseLayerInfo, parseTrtProfile, type BuildPrecision, type EngineLayerInfo, type ImportedBuild, type ParsedProfile } from './trt-profile.ts';

export interface ProfileFiles {
  profile: ParsedProfile;
  profilePath: string;
  info: EngineLayerInfo[];
  infoPath?: string;
}

const PRECISION_IN_NAME: Array<[BuildPrecision, RegExp]> = [
  ['int8', /int8/i],
  ['fp16', /fp16|half/i],
  ['fp32', /fp32|float32/i],
];

/**
 * Reads DIR: every *.json that is a trtexec profile (array starting with {"count"}) or layer info (object with
 * "Layers"), its build precision taken from the file name (fp16 / int8 / fp32). fp16 and int8 profiles are required.
 */
export function readProfileDir(dir: string): Partial<Record<BuildPrecision, ProfileFiles>> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`profile folder ${dir} does not exist; pass --target profile:DIR with the folder holding trtexec --exportProfile JSON files`);
  }
  const found: Partial<Record<BuildPrecision, { profile?: [string, ParsedProfile]; info?: [string, EngineLayerInfo[]] }>> = {};
  for (const file of readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.json')).sort()) {
    const precision = PRECISION_IN_NAME.find(([, re]) => re.test(file))?.[0];
    if (!precision) continue;
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new UserError(`${path} is not valid JSON (${(e as Error).message}); re-export it with trtexec`);
    }
    const slot = (found[precision] ??= {});
    try {
      if (Array.isArray(raw)) {
        if (slot.profile) throw new Error(`a second ${precision} profile besides ${basename(slot.profile[0])}; keep one per precision`);
        slot.profile = [path, parseTrtProfile(raw)];
      } else if (raw && typeof raw === 'object' && 'Layers' in raw) {
        if (slot.info) throw new Error(`a second ${precision} layer info besides ${basename(slot.info[0])}; keep one per precision`);
        slot.info = [path, parseLayerInfo(raw)];
      }
    } catch (e) {
      throw new UserError(`${path}: ${(e as Error).message}`);
    }
  }
  const out: Partial<Record<BuildPrecision, ProfileFiles>> = {};
  for (const [p, slot] of Object.entries(found) as Array<[BuildPrecision, (typeof found)[BuildPrecision]]>) {
    if (!slot?.profile) continue;
    out[p] = { profile: slot.profile[1], profilePath: slot.profile[0], info: slot.info?.[1] ?? [], ...(slot.info ? { infoPath: slot.info[0] } : {}) };
  }
  const missing = (['fp16', 'int8'] as const).filter((p) => !out[p]);
  if (missing.length > 0) {
    throw new UserError(
      `profile folder ${dir} lacks the ${missing.join(' and ')} profile; put trtexec --exportProfile JSON of an all-FP16 and an all-INT8 build there, with fp16 / int8 in the file names (e.g. fp16.profile.json, int8.profile.json; layer info as fp16.layers.json)`,
    );
  }
  return out;
}

function buildFor(p: Precision): BuildPrecision {
  return p === 'mixed' ? 'int8' : p;
}

export class ProfileLatencyModel implements LatencyModel {
  readonly target: string;
  readonly builds: Partial<Record<BuildPrecision, ImportedBuild>>;

  constructor(
    target: string,
    readonly graph: LatencyGraph,
    readonly plan: KernelPlan,
    files: Partial<Record<BuildPrecision, ProfileFiles>>,
    /** Prices the reformats between layers of different precisions, and fp32 layers when there is no fp32 build. */
    readonly device: DeviceProfile,
  ) {
    this.target = target;
    this.builds = {};
    for (const [p, f] of Object.entries(files) as Array<[BuildPrecision, ProfileFiles]>) {
      this.builds[p] = importBuild(p, f.profile, graph, plan, f.info);
    }
  }

  /** Measured kernel time of a layer at a precision; fp32 without an fp32 build scales the fp16 time by the roofline ratio. */
  private layerMs(name: string, p: Precision, rooflineFp32: Map<string, number>, rooflineFp16: Map<string, number>): number {
    const build = this.builds[buildFor(p)];
    if (build) return build.layers.get(name)?.ms ?? 0;
    const fp16 = this.builds.fp16!.layers.get(name)?.ms ?? 0;
    const ratio = (rooflineFp32.get(name) ?? 0) / Math.max(rooflineFp16.get(name) ?? 0, 1e-12);
    return fp16 * ratio;
  }

  async estimate(policy: LayerPolicy): Promise<LatencyEstimate> {
    const names = this.graph.layers.map((l) => l.name);
    const needsScaling = !this.builds.fp32 && names.some((n) => (policy[n]?.precision ?? 'fp32') === 'fp32');
    const perLayerMs = (p: Precision) => new Map(summarize(this.plan, uniformPolicy(names, p), priceKernels(this.plan, this.device, uniformPolicy(names, p))).perLayer.map((l) => [l.name, l.ms]));
    const rooflineFp32 = needsScaling ? perLayerMs('fp32') : new Map<string, number>();
    const rooflineFp16 = needsScaling ? perLayerMs('fp16') : new Map<string, number>();
    // Only reformats between layers are missing from the measured builds: those at the graph's inputs and outputs
    // are in every build already (TensorRT's input / output reformat layers).
    const outputs = new Set(this.plan.outputs);
    const reformats = priceKernels(this.plan, this.device, policy).reformats
      .filter((r) => this.plan.producer.has(r.tensor) && !(outputs.has(r.tensor) && r.to === 'fp32'));
    const reformatMs = new Map<string, number>();
    for (const r of reformats) reformatMs.set(r.owner, (reformatMs.get(r.owner) ?? 0) + r.seconds * 1e3);
    const perLayer: LayerLatency[] = names.map((name) => {
      const precision = policy[name]?.precision ?? 'fp32';
      // Reformats the build of the layer's precision measured in front of it (graph input, layout changes), plus
      // those between layers of different precisions, which no uniform build has.
      const measured = this.builds[buildFor(precision)]?.layers.get(name)?.reformatMs ?? 0;
      return { name, ms: this.layerMs(name, precision, rooflineFp32, rooflineFp16), precision, reformatMs: measured + (reformatMs.get(name) ?? 0) };
    });
    // Unmapped engine layers: weighted by how many layers run in each build's precision.
    let otherMs = 0;
    for (const [p, build] of Object.entries(this.builds) as Array<[BuildPrecision, ImportedBuild]>) {
      const share = perLayer.filter((l) => buildFor(l.precision) === p).length / Math.max(1, perLayer.length);
      otherMs += share * build.unmapped.reduce((s, u) => s + u.ms, 0);
    }
    const totalMs = perLayer.reduce((s, l) => s + l.ms + l.reformatMs, 0) + otherMs;
    return { totalMs, perLayer, otherMs };
  }
}
