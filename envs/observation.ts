/**
 * The observation the agent sees before deciding layer t: what the layer is (type, dims, kernel, stride,
 * groups, log MACs/params), what it costs and saves (latency table), how sensitive it is (analyzer
 * features), and where the episode stands (progress, previous action, latency budget left, and the
 * actions taken so far). Every entry lies in [-1, 1] so one Box describes them all.
 */
import type { Layer, QuantizableOp } from '../src/onnx/layer-types.ts';
import { QUANTIZABLE_OPS } from '../src/onnx/layer-types.ts';
import type { LatencyTable } from './latency-table.ts';
import { sensitivityRecord, type LayerSensitivity } from './types.ts';

const clip = (x: number): number => (Number.isFinite(x) ? Math.max(-1, Math.min(1, x)) : 0);
const log2Scaled = (x: number, range: number): number => clip(Math.log2(Math.max(1, x)) / range);

export class ObservationEncoder {
  readonly size: number;
  readonly featureNames: string[];
  private readonly staticFeatures: Float32Array[];
  private readonly staticSize: number;

  constructor(
    private readonly layers: readonly Layer[],
    private readonly nActions: number,
    table: LatencyTable,
    sensitivity: readonly (LayerSensitivity | undefined)[],
    private readonly observePrefix: boolean,
  ) {
    const sens = layers.map((_, i) => sensitivityRecord(sensitivity[i]));
    const sensKeys = [...new Set(sens.flatMap((s) => Object.keys(s)))].sort();
    const sensScale = sensKeys.map((k) => Math.max(0, ...sens.map((s) => (Number.isFinite(s[k]) ? Math.abs(s[k]) : 0))));
    const logMacs = layers.map((l) => Math.log1p(l.macs));
    const logParams = layers.map((l) => Math.log1p(l.params));
    const norm = (v: number, all: number[]): number => {
      const lo = Math.min(...all);
      const hi = Math.max(...all);
      return hi > lo ? (v - lo) / (hi - lo) : 1;
    };
    const names: string[] = [
      ...QUANTIZABLE_OPS.map((op) => `op.${op}`),
      'depthwise', 'weightIsConstant', 'log2.inChannels', 'log2.outChannels', 'kernel.h', 'kernel.w', 'stride',
      'log2.groups', 'log2.spatial', 'logMacs', 'logParams', 'fp16MsShare', 'int8Saving',
      ...sensKeys.map((k) => `sensitivity.${k}`),
    ];
    this.staticFeatures = layers.map((l, i) => {
      const ms = table.layerMs[i];
      const fp16Ms = table.fp16LayerMs[i];
      const fastest = Math.min(...ms);
      const spatial = l.outChannels > 0 ? l.outputShape.slice(1).reduce((a, b) => a * b, 1) / l.outChannels : 1;
      const f = [
        ...QUANTIZABLE_OPS.map((op: QuantizableOp) => (l.op === op ? 1 : 0)),
        l.depthwise ? 1 : 0,
        l.weightIsConstant ? 1 : 0,
        log2Scaled(l.inChannels, 14),
        log2Scaled(l.outChannels, 14),
        clip((l.kernel[0] ?? 1) / 7),
        clip((l.kernel[1] ?? l.kernel[0] ?? 1) / 7),
        clip(Math.max(1, ...l.stride) / 4),
        log2Scaled(l.groups, 14),
        log2Scaled(spatial, 20),
        norm(logMacs[i], logMacs),
        norm(logParams[i], logParams),
        clip(fp16Ms / table.fp16TotalMs),
        fp16Ms > 0 ? clip((fp16Ms - fastest) / fp16Ms) : 0,
        ...sensKeys.map((k, j) => (sensScale[j] > 0 && Number.isFinite(sens[i][k]) ? clip(sens[i][k] / sensScale[j]) : 0)),
      ];
      return Float32Array.from(f);
    });
    this.staticSize = names.length;
    names.push('progress', ...Array.from({ length: nActions }, (_, a) => `prevAction.${a}`), 'budgetRemaining');
    names.push(...Array.from({ length: nActions }, (_, a) => `actionShare.${a}`));
    if (observePrefix) {
      for (let i = 0; i < layers.length; i++) for (let a = 0; a < nActions; a++) names.push(`prefix.${i}.${a}`);
    }
    this.featureNames = names;
    this.size = names.length;
  }

  /**
   * @param t the layer about to be decided (t = L for the terminal observation)
   * @param actions actions taken for layers 0..t-1
   * @param budgetRemaining (budget - least reachable latency) / all-FP16 latency; 1 without a budget
   */
  encode(t: number, actions: readonly number[], budgetRemaining: number): Float32Array {
    const obs = new Float32Array(this.size);
    const L = this.layers.length;
    if (t < L) obs.set(this.staticFeatures[t], 0);
    let o = this.staticSize;
    obs[o++] = t / L;
    if (t > 0) obs[o + actions[t - 1]] = 1;
    o += this.nActions;
    obs[o++] = clip(budgetRemaining);
    for (let i = 0; i < t; i++) obs[o + actions[i]] += 1 / L;
    o += this.nActions;
    if (this.observePrefix) for (let i = 0; i < t; i++) obs[o + i * this.nActions + actions[i]] = 1;
    return obs;
  }
}
