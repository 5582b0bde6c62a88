/**
 * Scores with their intervals as the terminal shows them, one way everywhere (search, compare, replay):
 * `0.9870 [0.9812, 0.9917]` for a score and `0.27 % [-0.19, 0.71]` for a relative drop, 95 % intervals.
 */

export interface FiguresLike {
  score: number;
  fp32Score: number;
  drop: number;
  samples: number;
  ci95?: readonly [number, number] | number[];
  dropCi95?: readonly [number, number] | number[];
}

const digits = (v: number) => (Math.abs(v) >= 100 ? 2 : 4);

export function withInterval(v: number, ci?: readonly number[]): string {
  const d = digits(v);
  return ci ? `${v.toFixed(d)} [${ci[0].toFixed(d)}, ${ci[1].toFixed(d)}]` : v.toFixed(d);
}

/** A relative drop in percent, with its interval in percent. */
export function percentWithInterval(drop: number, ci?: readonly number[]): string {
  const p = (v: number) => (100 * v).toFixed(2);
  return ci ? `${p(drop)} % [${p(ci[0])}, ${p(ci[1])}]` : `${p(drop)} %`;
}

/** `char-accuracy 0.9870 [0.9812, 0.9917] (FP32 0.9843, drop -0.27 % [-0.71, 0.19])`. */
export function figuresText(metric: string, f: FiguresLike): string {
  return `${metric} ${withInterval(f.score, f.ci95)} (FP32 ${f.fp32Score.toFixed(digits(f.fp32Score))}, drop ${percentWithInterval(f.drop, f.dropCi95)})`;
}

/** Whether a relative drop breaks a floor (the same slack as the search's own check). */
export function breaksFloor(drop: number, maxDrop: number): boolean {
  return Number.isFinite(maxDrop) && drop > maxDrop + 1e-9;
}
