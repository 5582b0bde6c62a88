/**
 * Gymnasium's two spaces that a precision search needs: `Discrete` (actions, with an optional mask of
 * legal ones) and `Box` (observations). Each space owns its own seeded generator, as in Gymnasium, so
 * sampling actions never disturbs the environment's or the agent's random stream.
 */
import seedrandom from 'seedrandom';

export type Rng = seedrandom.PRNG;

export interface Space<T> {
  readonly shape: readonly number[];
  contains(x: unknown): x is T;
  sample(mask?: readonly boolean[]): T;
  seed(seed: number): void;
}

export class Discrete implements Space<number> {
  readonly shape: readonly number[] = [];
  private rng: Rng;

  constructor(
    readonly n: number,
    seed = 0,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Discrete space needs n >= 1, got ${n}`);
    this.rng = seedrandom(`discrete:${seed}`);
  }

  seed(seed: number): void {
    this.rng = seedrandom(`discrete:${seed}`);
  }

  contains(x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < this.n;
  }

  /** A uniform action among those the mask allows (all when no mask). */
  sample(mask?: readonly boolean[]): number {
    const legal = legalActions(this.n, mask);
    if (legal.length === 0) throw new RangeError('Discrete.sample: the mask allows no action');
    return legal[Math.floor(this.rng() * legal.length)];
  }
}

/** Indices of the actions a mask allows; every action when there is no mask. */
export function legalActions(n: number, mask?: readonly boolean[]): number[] {
  if (mask && mask.length !== n) throw new RangeError(`action mask has ${mask.length} entries, the space has ${n}`);
  const out: number[] = [];
  for (let a = 0; a < n; a++) if (!mask || mask[a]) out.push(a);
  return out;
}

/** A flat box of float32 observations with per-dimension bounds. */
export class Box implements Space<Float32Array> {
  readonly shape: readonly number[];
  readonly low: Float32Array;
  readonly high: Float32Array;
  private rng: Rng;

  constructor(low: ArrayLike<number> | number, high: ArrayLike<number> | number, size?: number, seed = 0) {
    const n = size ?? (typeof low === 'number' ? (typeof high === 'number' ? 1 : high.length) : low.length);
    this.low = Float32Array.from({ length: n }, (_, i) => (typeof low === 'number' ? low : low[i]));
    this.high = Float32Array.from({ length: n }, (_, i) => (typeof high === 'number' ? high : high[i]));
    for (let i = 0; i < n; i++) {
      if (!(this.low[i] <= this.high[i])) throw new RangeError(`Box bound ${i}: low ${this.low[i]} > high ${this.high[i]}`);
    }
    this.shape = [n];
    this.rng = seedrandom(`box:${seed}`);
  }

  seed(seed: number): void {
    this.rng = seedrandom(`box:${seed}`);
  }

  contains(x: unknown): x is Float32Array {
    if (!(x instanceof Float32Array) || x.length !== this.shape[0]) return false;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]) || x[i] < this.low[i] || x[i] > this.high[i]) return false;
    }
    return true;
  }

  /** Uniform inside finite bounds (the only kind this project's environments declare). */
  sample(): Float32Array {
    const x = new Float32Array(this.shape[0]);
    for (let i = 0; i < x.length; i++) x[i] = this.low[i] + this.rng() * (this.high[i] - this.low[i]);
    return x;
  }
}
