import type { LayerPolicy, Precision } from '../policy.ts';

export interface LayerLatency {
  name: string;
  ms: number;
  precision: Precision;
  /** Cost of reformatting this layer's input from its producer's precision/layout (0 if none). */
  reformatMs: number;
}

export interface LatencyEstimate {
  totalMs: number;
  perLayer: LayerLatency[];
}

/** One interface, several sources (roofline GPU model, imported trtexec profile, measured onnxruntime CPU). */
export interface LatencyModel {
  /** e.g. "t4", "orin-agx", "profile:DIR", "ort-cpu". */
  readonly target: string;
  estimate(policy: LayerPolicy): Promise<LatencyEstimate>;
}
