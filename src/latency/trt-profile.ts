/**
 * Imported TensorRT profiles: `trtexec --exportProfile` JSON of an all-FP16 and an all-INT8 build (optionally
 * `--exportLayerInfo` with `--profilingVerbosity=detailed`), mapped from engine layers back to ONNX nodes.
 *
 * Engine layer names, as TensorRT writes them:
 *   "conv1"                                          one ONNX node (unnamed nodes: "node_of_<first output>")
 *   "conv1 + relu1", "pw3 + PWN(sig3, swish3)"       fused layers; PWN(...) is a generated pointwise kernel
 *   "conv_a || conv_b"                               horizontally fused layers
 *   "conv1_2"                                        an extra layer TensorRT made from node conv1
 *   "{ForeignNode[first...last]}"                    a Myelin region: every node from first to last
 *   "Reformatting CopyNode for Input Tensor 0 to X"  a reformat in front of engine layer X
 *   "(Unnamed Layer* 11) [Shuffle]"                  TensorRT-internal (constants, shuffles): no ONNX node
 * Layer info (TensorRT 10, detailed) carries "[ONNX Layer: <node>]" entries in `Metadata`; when present they
 * win over name parsing. Whatever cannot be mapped is reported, never thrown.
 */
import type { LatencyGraph, KernelPlan } from './graph.ts';

export type BuildPrecision = 'fp16' | 'int8' | 'fp32';

export interface EngineLayerTime {
  name: string;
  /** Per-inference time: medianMs when the profile has it, else averageMs, else timeMs / count. */
  ms: number;
}

export interface ParsedProfile {
  count: number;
  layers: EngineLayerTime[];
}

/** Parses `--exportProfile` JSON. Throws an Error saying what is malformed (the caller names the file). */
export function parseTrtProfile(raw: unknown): ParsedProfile {
  if (!Array.isArray(raw) || raw.length === 0) throw new Error('expected a JSON array whose first element is {"count": N}');
  const head = raw[0] as { count?: unknown };
  const count = typeof head?.count === 'number' && head.count > 0 ? head.count : NaN;
  if (Number.isNaN(count)) throw new Error('the first element must be {"count": N} with N > 0');
  const layers: EngineLayerTime[] = [];
  raw.slice(1).forEach((entry, i) => {
    const e = entry as { name?: unknown; timeMs?: unknown; averageMs?: unknown; medianMs?: unknown };
    if (!e || typeof e.name !== 'string') throw new Error(`entry ${i + 1} has no "name"`);
    const ms = typeof e.medianMs === 'number' ? e.medianMs
      : typeof e.averageMs === 'number' ? e.averageMs
        : typeof e.timeMs === 'number' ? e.timeMs / count : NaN;
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`entry ${i + 1} ("${e.name}") has no medianMs, averageMs or timeMs`);
    layers.push({ name: e.name, ms });
  });
  return { count, layers };
}

export interface EngineLayerInfo {
  name: string;
  type?: string;
  /** ONNX node names from Metadata "[ONNX Layer: ...]" entries. */
  onnxNodes: string[];
}

/**
 * Parses `--exportLayerInfo` JSON: {"Layers": [...]} with names only or detailed objects. TensorRT 10 writes the
 * engine's I/O as "Bindings" (names), TensorRT 11 as "I/O Tensors" (objects); neither is needed here. Metadata is
 * one string of "[ONNX Layer: ...]" entries (separated by \u001f), or a list of such strings.
 */
export function parseLayerInfo(raw: unknown): EngineLayerInfo[] {
  const layers = (raw as { Layers?: unknown })?.Layers;
  if (!Array.isArray(layers)) throw new Error('expected an object with a "Layers" array');
  return layers.map((l, i) => {
    if (typeof l === 'string') return { name: l, onnxNodes: [] };
    const o = l as { Name?: unknown; LayerType?: unknown; Metadata?: unknown };
    if (typeof o?.Name !== 'string') throw new Error(`Layers[${i}] has no "Name"`);
    const meta = typeof o.Metadata === 'string' ? o.Metadata : Array.isArray(o.Metadata) ? o.Metadata.filter((x) => typeof x === 'string').join('\u001f') : '';
    const onnxNodes = [...meta.matchAll(/\[ONNX Layer: ([^\]\u001f]*)\]/g)].map((m) => m[1].trim()).filter(Boolean);
    return { name: o.Name, ...(typeof o.LayerType === 'string' ? { type: o.LayerType } : {}), onnxNodes };
  });
}

/** What one engine layer maps to. */
export interface EngineLayerMapping {
  nodes: string[];
  /** Set for reformat layers: the engine layer the reformat feeds (input side) or drains (output side). */
  reformatOf?: string;
  reformatSide?: 'input' | 'output';
  /** Name parts that named no ONNX node (TensorRT-internal parts excluded). */
  unknown: string[];
}

const REFORMAT = /^Reformatting CopyNode for (Input|Output) Tensor \d+ to (.+)$/;
const FOREIGN = /^\{ForeignNode\[(.*)\]\}$/;

/** Node names (TensorRT layer names) in topological order, and tensor -> producing node. */
export class NodeIndex {
  readonly order = new Map<string, number>();
  readonly names: string[];
  readonly producerOf = new Map<string, string>();

  constructor(graph: LatencyGraph) {
    this.names = graph.nodes.map((n) => n.name);
    graph.nodes.forEach((n, i) => {
      this.order.set(n.name, i);
      for (const o of n.outputs) this.producerOf.set(o, n.name);
    });
  }

  /** One name part to a node: exact, an extra-layer suffix "_N", or a tensor name. */
  resolvePart(part: string): string | undefined {
    if (this.order.has(part)) return part;
    const suffix = /^(.*)_\d+$/.exec(part);
    if (suffix && this.order.has(suffix[1])) return suffix[1];
    return this.producerOf.get(part);
  }

  range(first: string, last: string): string[] | undefined {
    const a = this.order.get(first);
    const b = this.order.get(last);
    if (a === undefined || b === undefined) return undefined;
    return this.names.slice(Math.min(a, b), Math.max(a, b) + 1);
  }
}

/**
 * Splits a fused engine-layer name into node names: parts joined by " + " or " || ", and the arguments of
 * PWN(...). TensorRT-internal parts are dropped. (A node whose own name contains these characters is still
 * found when its engine layer is not fused: the whole name is tried first.)
 */
export function nameParts(name: string): string[] {
  return name
    .replace(/\(Unnamed Layer\* \d+\)( \[[^\]]*\])?/g, ',')
    .replace(/PWN\(/g, '(')
    .split(/\s*(?:\|\||[+,()])\s*/)
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Maps one engine layer name (and its layer-info ONNX nodes, if any) to ONNX nodes. */
export function mapEngineLayer(name: string, index: NodeIndex, onnxNodes: string[] = []): EngineLayerMapping {
  const reformat = REFORMAT.exec(name);
  if (reformat) {
    const target = mapEngineLayer(reformat[2], index);
    return { ...target, reformatOf: reformat[2], reformatSide: reformat[1] === 'Input' ? 'input' : 'output' };
  }
  if (onnxNodes.length > 0) {
    const nodes = onnxNodes.map((n) => index.resolvePart(n)).filter((n): n is string => n !== undefined);
    const unknown = onnxNodes.filter((n) => index.resolvePart(n) === undefined);
    if (nodes.length > 0) return { nodes: [...new Set(nodes)], unknown };
  }
  const foreign = FOREIGN.exec(name);
  if (foreign) {
    const inner = foreign[1];
    const dots = inner.indexOf('...');
    if (dots < 0) {
      const one = index.resolvePart(inner.trim());
      return one ? { nodes: [one], unknown: [] } : { nodes: [], unknown: [inner] };
    }
    const first = index.resolvePart(inner.slice(0, dots).trim());
    const last = index.resolvePart(inner.slice(dots + 3).trim());
    const nodes = first && last ? index.range(first, last) : undefined;
    return nodes ? { nodes, unknown: [] } : { nodes: [], unknown: [inner] };
  }
  const nodes: string[] = [];
  const unknown: string[] = [];
  const whole = index.resolvePart(name);
  if (whole) return { nodes: [whole], unknown };
  for (const part of nameParts(name)) {
    const node = index.resolvePart(part);
    if (node) nodes.push(node);
    else unknown.push(part);
  }
  return { nodes: [...new Set(nodes)], unknown };
}

export interface LayerTimes {
  /** Kernel time of the layer and of the non-quantizable ops reported under it. */
  ms: number;
  /** Reformat layers in front of its engine layers. */
  reformatMs: number;
}

export interface UnmappedEngineLayer {
  name: string;
  ms: number;
  reason: string;
}

export interface ImportedBuild {
  precision: BuildPrecision;
  /** Sum of all engine layer times (what trtexec's per-layer profile adds up to). */
  totalMs: number;
  /** Per quantizable layer (TensorRT layer name). */
  layers: Map<string, LayerTimes>;
  mapped: Array<{ name: string; ms: number; nodes: string[]; reformat: boolean }>;
  unmapped: UnmappedEngineLayer[];
  /** Name parts of mapped engine layers that named no ONNX node (partial mappings). */
  unknownParts: string[];
}

/**
 * Attributes each engine layer's time to quantizable layers: split by MACs among the quantizable layers it
 * contains, else to the layer whose kernel the node belongs to in the plan (the layer whose precision the op
 * follows), else to the nearest quantizable layer before it.
 */
export function importBuild(precision: BuildPrecision, profile: ParsedProfile, graph: LatencyGraph, plan: KernelPlan, info: EngineLayerInfo[] = []): ImportedBuild {
  const index = new NodeIndex(graph);
  const infoByName = new Map(info.map((l) => [l.name, l]));
  const layerByName = new Map(graph.layers.map((l) => [l.name, l]));
  const ownerOf = new Map<string, string>();
  for (const k of plan.kernels) for (const n of k.nodes) ownerOf.set(n, k.owner);
  const layersByOrder = graph.layers.map((l) => ({ name: l.name, order: index.order.get(l.name) ?? -1 })).sort((a, b) => a.order - b.order);
  const nearestLayer = (node: string): string | undefined => {
    const at = index.order.get(node) ?? -1;
    let best: string | undefined;
    for (const l of layersByOrder) if (l.order <= at) best = l.name;
    return best ?? layersByOrder[0]?.name;
  };

  const layers = new Map<string, LayerTimes>(graph.layers.map((l) => [l.name, { ms: 0, reformatMs: 0 }]));
  const mapped: ImportedBuild['mapped'] = [];
  const unmapped: UnmappedEngineLayer[] = [];
  const unknownParts: string[] = [];
  let totalMs = 0;
  for (const e of profile.layers) {
    totalMs += e.ms;
    const m = mapEngineLayer(e.name, index, infoByName.get(e.name)?.onnxNodes ?? []);
    if (m.nodes.length === 0) {
      unmapped.push({ name: e.name, ms: e.ms, reason: m.unknown.length > 0 ? `no ONNX node named ${m.unknown.map((u) => `"${u}"`).join(', ')}` : 'TensorRT-internal layer' });
      continue;
    }
    unknownParts.push(...m.unknown);
    mapped.push({ name: e.name, ms: e.ms, nodes: m.nodes, reformat: m.reformatOf !== undefined });
    const quantizable = m.nodes.map((n) => layerByName.get(n)).filter((l) => l !== undefined);
    const field: keyof LayerTimes = m.reformatOf !== undefined ? 'reformatMs' : 'ms';
    if (m.reformatOf !== undefined || quantizable.length === 0) {
      // A reformat in front of a fused region belongs to its first layer; one after it, to its last.
      const edge = m.reformatSide === 'output' ? quantizable[quantizable.length - 1] : quantizable[0];
      const owner = edge?.name ?? m.nodes.map((n) => ownerOf.get(n)).find((o) => o) ?? nearestLayer(m.nodes[0]);
      if (owner) layers.get(owner)![field] += e.ms;
      continue;
    }
    const macs = quantizable.reduce((s, l) => s + l.macs, 0);
    for (const l of quantizable) layers.get(l.name)![field] += macs > 0 ? (e.ms * l.macs) / macs : e.ms / quantizable.length;
  }
  return { precision, totalMs, layers, mapped, unmapped, unknownParts: [...new Set(unknownParts)] };
}
