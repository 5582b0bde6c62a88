/**
 * A small roofline latency model for the toy network, shaped like DESIGN.md's roofline source but with
 * made-up device numbers (a toy device, not a GPU datasheet): per layer, max(compute at the precision's
 * peak, bytes moved / bandwidth) + launch overhead; int8 tensors move half the bytes of fp16; depthwise
 * layers use the fast math poorly; a reformat kernel runs wherever a layer's input dtype differs from
 * what its producer wrote. The reformats make latency non-additive across layers.
 */
import type { Layer } from '../../src/onnx/layer-types.ts';
import type { LatencyEstimate, LatencyModel } from '../../src/latency/types.ts';
import type { LayerPolicy, Precision } from '../../src/policy.ts';

export interface ToyDevice {
  /** Multiply-accumulates per ms at each precision (dense layers). */
  macsPerMs: Record<Precision, number>;
  /** Fraction of peak a depthwise layer reaches, per precision. */
  depthwiseEfficiency: Record<Precision, number>;
  bytesPerMs: number;
  launchMs: number;
}

export const TOY_DEVICE: ToyDevice = {
  macsPerMs: { fp32: 0.25e9, fp16: 1e9, mixed: 2e9, int8: 2e9 },
  depthwiseEfficiency: { fp32: 0.5, fp16: 0.25, mixed: 0.15, int8: 0.15 },
  bytesPerMs: 25e6,
  launchMs: 0.004,
};

type DType = 'int8' | 'fp16' | 'fp32';
const BYTES: Record<DType, number> = { int8: 1, fp16: 2, fp32: 4 };

const inputType = (p: Precision): DType => (p === 'int8' || p === 'mixed' ? 'int8' : p);
const outputType = (p: Precision): DType => (p === 'int8' ? 'int8' : p === 'fp32' ? 'fp32' : 'fp16');
const elems = (shape: readonly number[]): number => shape.slice(1).reduce((a, b) => a * b, 1);

export class ToyRooflineLatency implements LatencyModel {
  readonly target = 'toy-roofline';

  constructor(
    private readonly layers: readonly Layer[],
    private readonly batch = 256,
    private readonly device: ToyDevice = TOY_DEVICE,
  ) {}

  async estimate(policy: LayerPolicy): Promise<LatencyEstimate> {
    const d = this.device;
    const perLayer = [];
    let totalMs = 0;
    // The network input arrives in fp32.
    let producerType: DType = 'fp32';
    for (const l of [...this.layers].sort((a, b) => a.index - b.index)) {
      const p = policy[l.name]?.precision ?? 'fp32';
      const inT = inputType(p);
      const inElems = elems(l.inputShape) * this.batch;
      const outElems = elems(l.outputShape) * this.batch;
      const weightBytes = l.params * (p === 'fp32' ? 4 : p === 'fp16' ? 2 : 1);
      const bytes = inElems * BYTES[inT] + weightBytes + outElems * BYTES[outputType(p)];
      const peak = d.macsPerMs[p] * (l.depthwise ? d.depthwiseEfficiency[p] : 1);
      const ms = Math.max((l.macs * this.batch) / peak, bytes / d.bytesPerMs) + d.launchMs;
      const reformatMs = producerType === inT ? 0 : (inElems * (BYTES[producerType] + BYTES[inT])) / d.bytesPerMs + d.launchMs;
      perLayer.push({ name: l.name, ms, precision: p, reformatMs });
      totalMs += ms + reformatMs;
      producerType = outputType(p);
    }
    // Pooling and the final copy-out: outside the quantizable layers, same for every policy.
    totalMs += 2 * d.launchMs;
    return { totalMs, perLayer };
  }
}
