/**
 * A read-only view over a model's main graph: nodes in topological order, who produces and who consumes each
 * tensor, constant values (initializers and Constant nodes), declared value shapes, and TensorRT's layer names.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from './model.ts';
import { toNumber } from './model.ts';
import { attr, tensorToFloat32, tensorDims } from './tensor.ts';
import { UserError } from '../errors.ts';

/** TensorRT's ONNX parser names a layer after the node, or `node_of_<first output>` for an unnamed node. */
export function trtLayerName(node: NodeProto): string {
  return node.name && node.name.length > 0 ? node.name : `node_of_${(node.output ?? [])[0] ?? ''}`;
}

/** The subgraphs (If branches, Loop and Scan bodies) a node holds. */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  return (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}

/**
 * Outer-scope values a node's subgraphs read (ONNX lets If/Loop/Scan bodies use any value of the enclosing graph by
 * name): for ordering and for who-reads-what, they are inputs of the node like its listed ones.
 */
export function implicitInputs(node: NodeProto): string[] {
  const out = new Set<string>();
  const walk = (g: GraphProto, outer: ReadonlySet<string>) => {
    const local = new Set<string>(outer);
    for (const v of g.input ?? []) if (v.name) local.add(v.name);
    for (const t of g.initializer ?? []) if (t.name) local.add(t.name);
    for (const n of g.node ?? []) {
      for (const i of n.input ?? []) if (i && !local.has(i)) out.add(i);
      for (const sub of subgraphsOf(n)) walk(sub, local);
      for (const o of n.output ?? []) if (o) local.add(o);
    }
    for (const v of g.output ?? []) if (v.name && !local.has(v.name)) out.add(v.name);
  };
  for (const g of subgraphsOf(node)) walk(g, new Set());
  return [...out];
}

/** A node's inputs, listed and implicit (read inside its subgraphs). */
export function allInputs(node: NodeProto): string[] {
  const listed = node.input ?? [];
  return subgraphsOf(node).length > 0 ? [...listed, ...implicitInputs(node)] : listed;
}

/** Kahn's algorithm, stable with respect to file order; throws on cycles. */
export function topologicalSort(graph: GraphProto): NodeProto[] {
  const nodes = graph.node ?? [];
  const produced = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && produced.set(o, i)));
  const indegree = new Array(nodes.length).fill(0);
  const users: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    const deps = new Set<number>();
    for (const inp of allInputs(n)) {
      const p = inp ? produced.get(inp) : undefined;
      if (p !== undefined && p !== i) deps.add(p);
    }
    for (const p of deps) { users[p].push(i); indegree[i]++; }
  });
  const ready: number[] = [];
  indegree.forEach((d, i) => d === 0 && ready.push(i));
  const order: NodeProto[] = [];
  // ready is kept sorted so that the order is the file order wherever the graph allows it
  while (ready.length > 0) {
    const i = ready.shift()!;
    order.push(nodes[i]);
    for (const u of users[i]) {
      if (--indegree[u] === 0) {
        let k = ready.length;
        while (k > 0 && ready[k - 1] > u) k--;
        ready.splice(k, 0, u);
      }
    }
  }
  if (order.length !== nodes.length) throw new UserError('the model graph has a cycle; it is not a valid ONNX model');
  return order;
}

export class Graph {
  readonly model: ModelProto;
  readonly nodes: NodeProto[];
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly valueInfo = new Map<string, ValueInfoProto>();
  readonly inputs: ValueInfoProto[];
  readonly outputs: ValueInfoProto[];

  constructor(model: ModelProto) {
    this.model = model;
    const g = model.graph!;
    this.nodes = topologicalSort(g);
    for (const t of g.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const n of this.nodes) {
      for (const o of n.output ?? []) if (o) this.producer.set(o, n);
      for (const i of allInputs(n)) {
        if (!i) continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) if (v.name) this.valueInfo.set(v.name, v);
    // Initializers may be listed among graph inputs (IR < 4); the real inputs are the others.
    this.inputs = (g.input ?? []).filter((v) => !this.initializers.has(v.name ?? ''));
    this.outputs = g.output ?? [];
  }

  /** The constant tensor behind a name: an initializer or a Constant node's value (through Identity), else undefined. */
  constantTensor(name: string): TensorProto | undefined {
    const init = this.initializers.get(name);
    if (init) return init;
    const p = this.producer.get(name);
    if (!p) return undefined;
    if (p.opType === 'Constant') return attr(p, 'value')?.t ?? undefined;
    if (p.opType === 'Identity') return this.constantTensor((p.input ?? [])[0] ?? '');
    return undefined;
  }

  isConstant(name: string): boolean {
    return this.constantTensor(name) !== undefined;
  }

  /**
   * A constant's dims and values; the values are read (from external data, for large weights) only when `data` is
   * first asked for, so that asking for the dims of a weight costs nothing.
   */
  constantValues(name: string): { dims: number[]; data: Float32Array } | undefined {
    const t = this.constantTensor(name);
    if (!t) return undefined;
    let data: Float32Array | undefined;
    return { dims: tensorDims(t), get data() { return (data ??= tensorToFloat32(t)); } };
  }

  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /** True where a tensor is one of the graph's outputs (its consumers are then not the only readers). */
  isGraphOutput(name: string): boolean {
    return this.outputs.some((o) => o.name === name);
  }

  /** Declared shape of a value: numbers for fixed dims, strings for symbolic ones, undefined when unknown. */
  declaredShape(name: string): Array<number | string> | undefined {
    const dims = this.valueInfo.get(name)?.type?.tensorType?.shape?.dim;
    if (!dims) return undefined;
    // A dim that sets neither field is unknown ('?'); decoded messages report an unset dim_value as 0, so ask
    // whether the field was written (a dim_value of 0 is a real, empty dimension).
    const has = (d: object, key: string) => Object.prototype.hasOwnProperty.call(d, key);
    return dims.map((d) => (d.dimParam ? d.dimParam : has(d, 'dimValue') && d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : '?'));
  }
}
