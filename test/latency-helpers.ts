/**
 * Hand-made layers and latency graphs for the latency tests: the roofline needs shapes and MACs, not weights.
 */
import type { Layer } from '../src/onnx/layer-types.ts';
import type { GraphNode, LatencyGraph } from '../src/latency/graph.ts';

export interface ConvSpec {
  name: string;
  cin: number;
  cout: number;
  k?: number;
  groups?: number;
  h: number;
  w: number;
  input: string;
  output: string;
}

/** A Conv layer as layer discovery would report it (batch 1, stride 1, same padding). */
export function convLayer(spec: ConvSpec, index = 0): Layer {
  const k = spec.k ?? 1;
  const groups = spec.groups ?? 1;
  const macs = spec.h * spec.w * spec.cout * (spec.cin / groups) * k * k;
  return {
    name: spec.name, index, nodeIndex: index, op: 'Conv',
    input: spec.input, weight: `${spec.name}.w`, weightIsConstant: true, output: spec.output, fusedOutput: spec.output,
    inputShape: [1, spec.cin, spec.h, spec.w], weightShape: [spec.cout, spec.cin / groups, k, k], outputShape: [1, spec.cout, spec.h, spec.w],
    inChannels: spec.cin, outChannels: spec.cout, kernel: [k, k], stride: [1, 1], dilation: [1, 1], groups,
    depthwise: groups > 1 && groups === spec.cin, weightAxis: 0, macs, params: spec.cout * (spec.cin / groups) * k * k + spec.cout,
  };
}

/** A graph of the given layers, each followed by a fused Relu, chained input -> layer0 -> layer1 -> ... -> output. */
export function chainGraph(specs: Omit<ConvSpec, 'input' | 'output'>[]): LatencyGraph {
  const nodes: GraphNode[] = [];
  const tensorElems = new Map<string, number>();
  const layers: Layer[] = [];
  let prev = 'x';
  tensorElems.set('x', specs[0].cin * specs[0].h * specs[0].w);
  specs.forEach((s, i) => {
    const layer = convLayer({ ...s, input: prev, output: `${s.name}.out` }, i);
    layers.push(layer);
    nodes.push({ name: s.name, op: 'Conv', inputs: [prev, layer.weight], outputs: [layer.output], layer });
    tensorElems.set(layer.output, s.cout * s.h * s.w);
    nodes.push({ name: `${s.name}.relu`, op: 'Relu', inputs: [layer.output], outputs: [`${s.name}.act`] });
    tensorElems.set(`${s.name}.act`, s.cout * s.h * s.w);
    prev = `${s.name}.act`;
  });
  return { nodes, tensorElems, inputs: ['x'], outputs: [prev], layers };
}
