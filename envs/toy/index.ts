/**
 * A complete toy precision problem (network, evaluator, latency model) for tests, benchmarks and
 * examples that must run without an ONNX model: see tiny-convnet.ts and toy-latency.ts.
 */
import type { Layer } from '../../src/onnx/layer-types.ts';
import { TinyConvNet, TinyConvNetEvaluator, type TinyConvNetOptions } from './tiny-convnet.ts';
import { ToyRooflineLatency } from './toy-latency.ts';

export { TinyConvNet, TinyConvNetEvaluator, EIGHT_LAYER_NET } from './tiny-convnet.ts';
export { ToyRooflineLatency, TOY_DEVICE } from './toy-latency.ts';

export interface ToyProblem {
  net: TinyConvNet;
  layers: readonly Layer[];
  evaluator: TinyConvNetEvaluator;
  latency: ToyRooflineLatency;
}

export function toyProblem(opts: TinyConvNetOptions = {}): ToyProblem {
  const net = new TinyConvNet(opts);
  return { net, layers: net.layers, evaluator: new TinyConvNetEvaluator(net), latency: new ToyRooflineLatency(net.layers) };
}

/** A 4-layer problem small enough for unit tests (81 policies over int8/mixed/fp16, ms per evaluation). */
export function smallToyProblem(seed = 1): ToyProblem {
  return toyProblem({
    seed,
    inputShape: [2, 8, 8],
    layers: [
      { kind: 'conv', outChannels: 6, kernel: 3, activation: 'relu' },
      { kind: 'conv', outChannels: 8, kernel: 3, stride: 2, activation: 'relu' },
      { kind: 'conv', outChannels: 8, kernel: 1, activation: 'relu' },
      { kind: 'gemm', outFeatures: 5 },
    ],
    outliers: [{ layer: 1, channel: 3, gain: 30 }],
    samples: 64,
    subsetSamples: 16,
    calibrationSamples: 32,
  });
}
