/**
 * A tiny convolutional classifier in plain TypeScript, for environment and agent tests and for the
 * exhaustive-gap benchmark: a real network evaluated with TensorRT's INT8/FP16 arithmetic, not a
 * made-up score. Each quantizable layer runs in its policy's precision:
 *   int8  : input fake-quantized per tensor (calibrated amax), weights per output channel, output int8
 *   mixed : as int8, output rounded to fp16
 *   fp16  : input, weights, bias and output rounded to fp16
 *   fp32  : untouched
 * so errors compound through the network and layers interact (an int8 output feeding an fp16 layer
 * keeps its quantization error). Conv weights are folded-BatchNorm style (data-dependent init: unit
 * variance per channel) and a few channels carry planted outliers, compensated in their consumer so
 * the FP32 function is unchanged, the mechanism that makes per-tensor int8 collapse in real models
 * such as PP-OCR. The score is top-1 agreement with the FP32 network (DESIGN.md's `agreement` metric).
 */
import seedrandom from 'seedrandom';
import type { Layer } from '../../src/onnx/layer-types.ts';
import type { LayerPolicy, Precision } from '../../src/policy.ts';
import type { PolicyEvaluator } from '../types.ts';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/onnx/model.ts';
import { floatTensor, makeAttr } from '../../src/onnx/tensor.ts';
import { absMax, fakeQuantPerChannel, fakeQuantPerTensor, roundArrayToFloat16, roundToFloat16 } from './numerics.ts';

export type ToyLayerSpec =
  | { kind: 'conv'; outChannels: number; kernel: number; stride?: number; depthwise?: boolean; activation?: 'relu' | 'relu6' | 'none' }
  | { kind: 'gemm'; outFeatures: number };

export interface PlantedOutlier {
  /** Layer whose output channel is scaled up. */
  layer: number;
  channel: number;
  gain: number;
}

export interface TinyConvNetOptions {
  seed?: number;
  /** [channels, height, width] of one sample. */
  inputShape?: [number, number, number];
  layers?: ToyLayerSpec[];
  /** Evaluation samples. */
  samples?: number;
  /** The first `subsetSamples` evaluation samples form the screening subset. */
  subsetSamples?: number;
  calibrationSamples?: number;
  outliers?: PlantedOutlier[];
}

/** The benchmark network: 8 quantizable layers (3^8 = 6561 policies over int8/mixed/fp16). */
export const EIGHT_LAYER_NET: Required<Pick<TinyConvNetOptions, 'inputShape' | 'layers' | 'outliers'>> = {
  inputShape: [3, 12, 12],
  layers: [
    { kind: 'conv', outChannels: 8, kernel: 3, activation: 'relu' },
    { kind: 'conv', outChannels: 16, kernel: 3, stride: 2, activation: 'relu' },
    { kind: 'conv', outChannels: 16, kernel: 3, depthwise: true, activation: 'relu' },
    { kind: 'conv', outChannels: 24, kernel: 1, activation: 'relu' },
    { kind: 'conv', outChannels: 32, kernel: 3, stride: 2, activation: 'relu' },
    { kind: 'conv', outChannels: 32, kernel: 3, depthwise: true, activation: 'relu6' },
    { kind: 'conv', outChannels: 48, kernel: 1, activation: 'relu' },
    { kind: 'gemm', outFeatures: 10 },
  ],
  outliers: [
    { layer: 1, channel: 2, gain: 16 },
    { layer: 3, channel: 5, gain: 40 },
    { layer: 6, channel: 7, gain: 30 },
  ],
};

interface ToyLayer {
  spec: ToyLayerSpec;
  /** [C, H, W] for conv input, [F] for gemm input (after global average pooling). */
  inShape: number[];
  outShape: number[];
  groups: number;
  kernel: number;
  stride: number;
  pad: number;
  /** Global average pooling of a [C, H, W] input before the gemm. */
  poolBefore: boolean;
  weight: Float32Array;
  bias: Float32Array;
  weightInt8: Float32Array;
  weightFp16: Float32Array;
  biasFp16: Float32Array;
  amaxIn: number;
  amaxOut: number;
}

function gaussian(rng: seedrandom.PRNG): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export class TinyConvNet {
  readonly layers: readonly Layer[];
  readonly inputShape: readonly number[];
  readonly samples: number;
  readonly subsetSamples: number;
  /** Forward passes of single layers computed so far (a measure of real work done). */
  layerRuns = 0;
  private readonly net: ToyLayer[];
  private readonly inputs: { full: Float32Array; subset: Float32Array };
  /** Samples the amax were calibrated on (disjoint from the evaluation samples). */
  readonly calibrationInputs: Float32Array;
  /** Last activation computed after each layer, keyed by the precisions of the layers up to it. */
  private readonly prefixCache: { full: Array<{ key: string; act: Float32Array } | undefined>; subset: Array<{ key: string; act: Float32Array } | undefined> };

  constructor(opts: TinyConvNetOptions = {}) {
    const rng = seedrandom(`tiny-convnet:${opts.seed ?? 0}`);
    this.inputShape = opts.inputShape ?? EIGHT_LAYER_NET.inputShape;
    const specs = opts.layers ?? EIGHT_LAYER_NET.layers;
    this.samples = opts.samples ?? 128;
    this.subsetSamples = Math.min(opts.subsetSamples ?? Math.ceil(this.samples / 4), this.samples);
    const last = specs[specs.length - 1];
    const classes = last.kind === 'gemm' ? last.outFeatures : 10;
    const prototypes = Array.from({ length: classes }, () => randomImage(rng, this.inputShape, 0));
    const calibration = makeImages(rng, opts.calibrationSamples ?? 64, this.inputShape, prototypes);
    const full = makeImages(rng, this.samples, this.inputShape, prototypes);
    this.inputs = { full, subset: full.subarray(0, this.subsetSamples * size(this.inputShape)) };
    this.calibrationInputs = calibration;
    this.net = buildLayers(specs, this.inputShape, rng);
    normalizeLayers(this.net, calibration);
    fitHead(this.net, prototypes);
    plantOutliers(this.net, opts.outliers ?? (opts.layers ? [] : EIGHT_LAYER_NET.outliers));
    calibrateAmax(this.net, calibration);
    for (const l of this.net) {
      l.weightInt8 = fakeQuantPerChannel(l.weight, l.outShape[0]);
      l.weightFp16 = roundArrayToFloat16(l.weight);
      l.biasFp16 = roundArrayToFloat16(l.bias);
    }
    this.layers = this.net.map((l, i) => describeLayer(l, i));
    this.prefixCache = { full: [], subset: [] };
  }

  /** Logits [samples, classes] of the network under per-layer precisions (topological order). */
  forward(precisions: readonly Precision[], subset = false): Float32Array {
    const set = subset ? 'subset' : 'full';
    const n = subset ? this.subsetSamples : this.samples;
    const cache = this.prefixCache[set];
    let act = this.inputs[set];
    let start = 0;
    const keys = precisions.map((_, i) => precisions.slice(0, i + 1).join(','));
    for (let k = precisions.length - 1; k >= 0; k--) {
      if (cache[k]?.key === keys[k]) {
        act = cache[k]!.act;
        start = k + 1;
        break;
      }
    }
    for (let i = start; i < this.net.length; i++) {
      act = runLayer(this.net[i], act, n, precisions[i]);
      this.layerRuns++;
      cache[i] = { key: keys[i], act };
    }
    return act;
  }

  /** The evaluation samples, [samples, ...inputShape] flattened. */
  get evaluationInputs(): Float32Array {
    return this.inputs.full;
  }

  /**
   * The same network as an ONNX model (opset 13, dynamic batch, input `x`, output `logits`), so the
   * onnxruntime simulator can quantize it: Conv (+ Relu / Clip 0..6), GlobalAveragePool, Flatten, Gemm.
   * Node names equal the layer names here.
   */
  toOnnx(): ModelProto {
    const nodes: NodeProto[] = [];
    const init: TensorProto[] = [];
    let x = 'x';
    this.net.forEach((l, i) => {
      const name = this.layers[i].name;
      init.push(floatTensor(`${name}.weight`, this.layers[i].weightShape, l.weight), floatTensor(`${name}.bias`, [l.outShape[0]], l.bias));
      if (l.spec.kind === 'gemm') {
        if (l.poolBefore) {
          nodes.push({ name: `${name}.pool`, opType: 'GlobalAveragePool', input: [x], output: [`${name}.pooled`] });
          nodes.push({ name: `${name}.flatten`, opType: 'Flatten', input: [`${name}.pooled`], output: [`${name}.flat`], attribute: [makeAttr.int('axis', 1)] });
          x = `${name}.flat`;
        }
        nodes.push({ name, opType: 'Gemm', input: [x, `${name}.weight`, `${name}.bias`], output: ['logits'], attribute: [makeAttr.int('transB', 1)] });
        x = 'logits';
        return;
      }
      const out = `${name}.out`;
      nodes.push({
        name, opType: 'Conv', input: [x, `${name}.weight`, `${name}.bias`], output: [out],
        attribute: [
          makeAttr.ints('kernel_shape', [l.kernel, l.kernel]), makeAttr.ints('pads', [l.pad, l.pad, l.pad, l.pad]),
          makeAttr.ints('strides', [l.stride, l.stride]), makeAttr.int('group', l.groups),
        ],
      });
      const act = l.spec.activation ?? 'relu';
      if (act === 'none') {
        x = out;
        return;
      }
      const fused = `t${i + 1}`;
      if (act === 'relu') nodes.push({ name: `${name}.relu`, opType: 'Relu', input: [out], output: [fused] });
      else {
        init.push(floatTensor(`${name}.clip.min`, [], [0]), floatTensor(`${name}.clip.max`, [], [6]));
        nodes.push({ name: `${name}.clip`, opType: 'Clip', input: [out, `${name}.clip.min`, `${name}.clip.max`], output: [fused] });
      }
      x = fused;
    });
    const io = (name: string, dims: Array<number | string>): ValueInfoProto => ({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    });
    const classes = this.net[this.net.length - 1].outShape[0];
    return {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'trtmix-toy',
      graph: { name: 'tiny-convnet', node: nodes, input: [io('x', ['N', ...this.inputShape])], output: [io('logits', ['N', classes])], initializer: init },
    };
  }

  /** Top-1 class per sample. */
  predict(precisions: readonly Precision[], subset = false): Int32Array {
    const logits = this.forward(precisions, subset);
    const classes = this.net[this.net.length - 1].outShape[0];
    const n = logits.length / classes;
    const out = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (logits[s * classes + c] > logits[s * classes + best]) best = c;
      out[s] = best;
    }
    return out;
  }
}

/** Agreement of the toy network's top-1 with its FP32 top-1: a PolicyEvaluator over TinyConvNet. */
export class TinyConvNetEvaluator implements PolicyEvaluator {
  readonly higherIsBetter = true;
  readonly fp32Score: number;
  readonly fp32SubsetScore: number;
  /** Policies actually computed (not answered by any cache upstream). */
  evaluations = 0;
  private readonly reference: { full: Int32Array; subset: Int32Array };

  constructor(readonly net: TinyConvNet) {
    const fp32 = net.layers.map((): Precision => 'fp32');
    this.reference = { full: net.predict(fp32), subset: net.predict(fp32, true) };
    this.fp32Score = this.agreement(this.reference.full, false);
    this.fp32SubsetScore = this.agreement(this.reference.subset, true);
  }

  async evaluate(policy: LayerPolicy, opts: { subset?: boolean } = {}): Promise<{ score: number }> {
    const precisions = this.net.layers.map((l) => {
      const d = policy[l.name];
      if (d?.calibration && d.calibration.method !== 'max') {
        throw new RangeError(`the toy network calibrates with max only; got ${d.calibration.method} for ${l.name}`);
      }
      return d?.precision ?? 'fp32';
    });
    this.evaluations++;
    return { score: this.agreement(this.net.predict(precisions, opts.subset), opts.subset ?? false) };
  }

  private agreement(pred: Int32Array, subset: boolean): number {
    const ref = subset ? this.reference.subset : this.reference.full;
    let same = 0;
    for (let i = 0; i < ref.length; i++) if (pred[i] === ref[i]) same++;
    return same / ref.length;
  }
}

/** Smooth random images: a few random plane waves per channel, plus noise. */
function randomImage(rng: seedrandom.PRNG, [c, h, w]: readonly number[], noise: number): Float32Array {
  const x = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    const waves = Array.from({ length: 3 }, () => ({ fy: rng() * 0.8, fx: rng() * 0.8, phase: rng() * 2 * Math.PI, amp: 0.5 + rng() }));
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let v = noise * gaussian(rng);
        for (const wv of waves) v += wv.amp * Math.sin(wv.fy * y + wv.fx * xx + wv.phase);
        x[(ch * h + y) * w + xx] = v;
      }
    }
  }
  return x;
}

/**
 * Samples drawn around a few class prototypes, so that, as with a trained classifier on real data,
 * most samples sit well inside a decision region and quantization flips only those near a boundary.
 */
function makeImages(rng: seedrandom.PRNG, n: number, shape: readonly number[], prototypes: readonly Float32Array[]): Float32Array {
  const per = size(shape);
  const x = new Float32Array(n * per);
  for (let s = 0; s < n; s++) {
    const proto = prototypes[Math.floor(rng() * prototypes.length)];
    const own = randomImage(rng, shape, 0.1);
    for (let i = 0; i < per; i++) x[s * per + i] = proto[i] + 0.25 * own[i];
  }
  return x;
}

function buildLayers(specs: readonly ToyLayerSpec[], inputShape: readonly number[], rng: seedrandom.PRNG): ToyLayer[] {
  let shape = [...inputShape];
  return specs.map((spec) => {
    const empty = new Float32Array(0);
    if (spec.kind === 'gemm') {
      const poolBefore = shape.length === 3;
      const inF = shape[0];
      const weight = Float32Array.from({ length: spec.outFeatures * inF }, () => gaussian(rng) * Math.sqrt(1 / inF));
      const layer: ToyLayer = {
        spec, inShape: [inF], outShape: [spec.outFeatures], groups: 1, kernel: 1, stride: 1, pad: 0, poolBefore,
        weight, bias: new Float32Array(spec.outFeatures), weightInt8: empty, weightFp16: empty, biasFp16: empty, amaxIn: 0, amaxOut: 0,
      };
      shape = [spec.outFeatures];
      return layer;
    }
    if (shape.length !== 3) throw new RangeError('a conv layer cannot follow a gemm in the toy network');
    const [c, h, w] = shape;
    const groups = spec.depthwise ? c : 1;
    const oc = spec.depthwise ? c : spec.outChannels;
    const k = spec.kernel;
    const stride = spec.stride ?? 1;
    const pad = Math.floor(k / 2);
    const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
    const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
    const fanIn = (c / groups) * k * k;
    const weight = Float32Array.from({ length: oc * fanIn }, () => gaussian(rng) * Math.sqrt(2 / fanIn));
    const layer: ToyLayer = {
      spec, inShape: [c, h, w], outShape: [oc, oh, ow], groups, kernel: k, stride, pad, poolBefore: false,
      weight, bias: new Float32Array(oc), weightInt8: empty, weightFp16: empty, biasFp16: empty, amaxIn: 0, amaxOut: 0,
    };
    shape = [oc, oh, ow];
    return layer;
  });
}

function activate(spec: ToyLayerSpec, y: Float32Array): void {
  const act = spec.kind === 'conv' ? (spec.activation ?? 'relu') : 'none';
  if (act === 'relu') for (let i = 0; i < y.length; i++) y[i] = y[i] > 0 ? y[i] : 0;
  else if (act === 'relu6') for (let i = 0; i < y.length; i++) y[i] = y[i] < 0 ? 0 : y[i] > 6 ? 6 : y[i];
}

function globalAveragePool(x: Float32Array, n: number, c: number, hw: number): Float32Array {
  const out = new Float32Array(n * c);
  for (let i = 0; i < n * c; i++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += x[i * hw + j];
    out[i] = s / hw;
  }
  return out;
}

/** The layer's own arithmetic (conv or gemm + bias), before activation, in float. */
function linear(l: ToyLayer, x: Float32Array, n: number, weight: Float32Array, bias: Float32Array): Float32Array {
  if (l.spec.kind === 'gemm') {
    const [inF] = l.inShape;
    const [outF] = l.outShape;
    const y = new Float32Array(n * outF);
    for (let s = 0; s < n; s++) {
      for (let o = 0; o < outF; o++) {
        let acc = bias[o];
        for (let i = 0; i < inF; i++) acc += weight[o * inF + i] * x[s * inF + i];
        y[s * outF + o] = acc;
      }
    }
    return y;
  }
  const [c, h, w] = l.inShape;
  const [oc, oh, ow] = l.outShape;
  const { kernel: k, stride, pad, groups } = l;
  const icPerGroup = c / groups;
  const ocPerGroup = oc / groups;
  const y = new Float32Array(n * oc * oh * ow);
  // Loop order (tap outermost, output row innermost) keeps the hot loop a strided multiply-add.
  for (let s = 0; s < n; s++) {
    for (let o = 0; o < oc; o++) {
      const g = Math.floor(o / ocPerGroup);
      const yBase = (s * oc + o) * oh * ow;
      y.fill(bias[o], yBase, yBase + oh * ow);
      for (let ic = 0; ic < icPerGroup; ic++) {
        const xBase = (s * c + g * icPerGroup + ic) * h * w;
        const wBase = (o * icPerGroup + ic) * k * k;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const wv = weight[wBase + ky * k + kx];
            const x0 = Math.max(0, Math.ceil((pad - kx) / stride));
            const x1 = Math.min(ow - 1, Math.floor((w - 1 + pad - kx) / stride));
            for (let yy = 0; yy < oh; yy++) {
              const iy = yy * stride + ky - pad;
              if (iy < 0 || iy >= h) continue;
              const rowX = xBase + iy * w + kx - pad;
              const rowY = yBase + yy * ow;
              for (let xx = x0; xx <= x1; xx++) y[rowY + xx] += wv * x[rowX + xx * stride];
            }
          }
        }
      }
    }
  }
  return y;
}

function layerInput(l: ToyLayer, x: Float32Array, n: number): Float32Array {
  return l.poolBefore ? globalAveragePool(x, n, l.inShape[0], x.length / n / l.inShape[0]) : x;
}

function runLayer(l: ToyLayer, x: Float32Array, n: number, p: Precision): Float32Array {
  const input = layerInput(l, x, n);
  let y: Float32Array;
  if (p === 'int8' || p === 'mixed') {
    y = linear(l, fakeQuantPerTensor(input, l.amaxIn), n, l.weightInt8, l.bias);
  } else if (p === 'fp16') {
    y = linear(l, roundArrayToFloat16(input), n, l.weightFp16, l.biasFp16);
  } else {
    y = linear(l, input, n, l.weight, l.bias);
  }
  activate(l.spec, y);
  if (p === 'int8') return fakeQuantPerTensor(y, l.amaxOut);
  if (p === 'mixed' || p === 'fp16') for (let i = 0; i < y.length; i++) y[i] = roundToFloat16(y[i]);
  return y;
}

/** Folded-BatchNorm style init: each channel's pre-activation gets zero mean and unit variance on calibration data. */
function normalizeLayers(net: ToyLayer[], calibration: Float32Array): void {
  const samples = calibration.length / size(net[0].inShape);
  let x = calibration;
  for (const l of net) {
    const input = layerInput(l, x, samples);
    const y = linear(l, input, samples, l.weight, l.bias);
    const oc = l.outShape[0];
    const per = size(l.outShape) / oc;
    const fanPerChannel = l.weight.length / oc;
    for (let o = 0; o < oc; o++) {
      let sum = 0;
      let sq = 0;
      for (let s = 0; s < samples; s++) {
        for (let j = 0; j < per; j++) {
          const v = y[(s * oc + o) * per + j];
          sum += v;
          sq += v * v;
        }
      }
      const count = samples * per;
      const mean = sum / count;
      const std = Math.sqrt(Math.max(sq / count - mean * mean, 1e-12));
      for (let i = o * fanPerChannel; i < (o + 1) * fanPerChannel; i++) l.weight[i] /= std;
      l.bias[o] = -mean / std;
    }
    x = linear(l, input, samples, l.weight, l.bias);
    activate(l.spec, x);
  }
}

/**
 * Make a final gemm with one output per class a nearest-class-mean head over the FP32 features of the
 * class prototypes, as a linear probe trained on them would be: samples then sit inside decision
 * regions with real margins instead of on the knife edge of a random projection.
 */
function fitHead(net: ToyLayer[], prototypes: readonly Float32Array[]): void {
  const head = net[net.length - 1];
  if (head.spec.kind !== 'gemm' || head.outShape[0] !== prototypes.length) return;
  let x: Float32Array = new Float32Array(prototypes.length * prototypes[0].length);
  prototypes.forEach((p, i) => x.set(p, i * p.length));
  const n = prototypes.length;
  for (const l of net.slice(0, -1)) {
    x = linear(l, layerInput(l, x, n), n, l.weight, l.bias);
    activate(l.spec, x);
  }
  const feats = layerInput(head, x, n);
  const f = head.inShape[0];
  const mean = new Float32Array(f);
  for (let k = 0; k < n; k++) for (let i = 0; i < f; i++) mean[i] += feats[k * f + i] / n;
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = 0; i < f; i++) norm += (feats[k * f + i] - mean[i]) ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < f; i++) head.weight[k * f + i] = (feats[k * f + i] - mean[i]) / norm;
    let b = 0;
    for (let i = 0; i < f; i++) b -= head.weight[k * f + i] * mean[i];
    head.bias[k] = b;
  }
}

/**
 * Scale one output channel of a layer by `gain` and divide the matching input weights of the next dense
 * consumer (through depthwise layers, which carry channels one to one) so the FP32 function is unchanged.
 */
function plantOutliers(net: ToyLayer[], outliers: readonly PlantedOutlier[]): void {
  for (const { layer, channel, gain } of outliers) {
    const l = net[layer];
    if (!l || l.spec.kind !== 'conv') throw new RangeError(`outlier: layer ${layer} is not a conv layer`);
    const fan = l.weight.length / l.outShape[0];
    for (let i = channel * fan; i < (channel + 1) * fan; i++) l.weight[i] *= gain;
    l.bias[channel] *= gain;
    let j = layer + 1;
    while (net[j] && net[j].spec.kind === 'conv' && net[j].groups > 1) {
      const dw = net[j];
      if (dw.spec.kind === 'conv' && dw.spec.activation === 'relu6') throw new RangeError(`outlier through layer ${j}: relu6 is not scale-invariant`);
      dw.bias[channel] *= gain;
      j++;
    }
    const consumer = net[j];
    if (!consumer) throw new RangeError(`outlier: layer ${layer} has no consumer to compensate`);
    const inC = consumer.spec.kind === 'gemm' ? consumer.inShape[0] : consumer.inShape[0];
    const kk = consumer.spec.kind === 'gemm' ? 1 : consumer.kernel * consumer.kernel;
    for (let o = 0; o < consumer.outShape[0]; o++) {
      for (let t = 0; t < kk; t++) consumer.weight[(o * inC + channel) * kk + t] /= gain;
    }
  }
}

/** Max calibration of every quantized tensor, on the FP32 network (as TensorRT calibrates). */
function calibrateAmax(net: ToyLayer[], calibration: Float32Array): void {
  let x = calibration;
  const n = calibration.length / size(net[0].inShape);
  for (const l of net) {
    const input = layerInput(l, x, n);
    l.amaxIn = absMax(input);
    const y = linear(l, input, n, l.weight, l.bias);
    activate(l.spec, y);
    l.amaxOut = absMax(y);
    x = y;
  }
}

function describeLayer(l: ToyLayer, i: number): Layer {
  const isGemm = l.spec.kind === 'gemm';
  const name = isGemm ? `gemm${i}` : `conv${i}`;
  const act = l.spec.kind === 'conv' ? (l.spec.activation ?? 'relu') : 'none';
  const [oc] = l.outShape;
  const weightShape = isGemm ? [oc, l.inShape[0]] : [oc, l.inShape[0] / l.groups, l.kernel, l.kernel];
  const params = size(weightShape) + oc;
  const outSize = size(l.outShape);
  return {
    name,
    index: i,
    nodeIndex: 2 * i,
    op: isGemm ? 'Gemm' : 'Conv',
    input: i === 0 ? 'input' : `t${i}`,
    weight: `${name}.weight`,
    weightIsConstant: true,
    bias: `${name}.bias`,
    output: `${name}.out`,
    fusedOutput: `t${i + 1}`,
    ...(act === 'none' ? {} : { activation: act as 'relu' | 'relu6' }),
    ...(act === 'relu6' ? { activationRange: [0, 6] as [number, number] } : {}),
    inputShape: [1, ...l.inShape],
    weightShape,
    outputShape: [1, ...l.outShape],
    inChannels: l.inShape[0],
    outChannels: oc,
    kernel: isGemm ? [] : [l.kernel, l.kernel],
    stride: isGemm ? [] : [l.stride, l.stride],
    dilation: isGemm ? [] : [1, 1],
    groups: l.groups,
    depthwise: l.groups > 1 && l.groups === l.inShape[0],
    weightAxis: 0,
    macs: outSize * (weightShape.slice(1).reduce((a, b) => a * b, 1)),
    params,
  };
}
