import type { LayerPolicy, Precision } from '../policy.ts';

export interface LayerLatency {
  name: string;
  /** The layer's kernel time plus that of the non-quantizable ops that follow its precision (reported under it). */
  ms: number;
  precision: Precision;
  /**
   * Reformats charged to this layer: converting its inputs from their producers' precision/layout, and
   * converting a graph output it produces back to fp32 (0 if none).
   */
  reformatMs: number;
}

export interface LatencyEstimate {
  /** Everything: sum over perLayer of ms + reformatMs, plus otherMs. */
  totalMs: number;
  perLayer: LayerLatency[];
  /** Time no layer can be charged with (unmapped engine layers, runtime nodes outside any layer); 0 if absent. */
  otherMs?: number;
}

/** One interface, several sources (roofline GPU model, imported trtexec profile, measured onnxruntime CPU). */
export interface LatencyModel {
  /** e.g. "t4", "orin-agx", "profile:DIR", "ort-cpu". */
  readonly target: string;
  estimate(policy: LayerPolicy): Promise<LatencyEstimate>;
}
