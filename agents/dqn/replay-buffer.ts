/**
 * Replay memory (a ring of typed arrays) and the n-step return collector that feeds it. Each stored
 * transition carries its own discount (gamma^k for the k rewards it sums), so one-step and n-step
 * transitions, and the shorter ones at an episode's end, share one buffer and one target formula:
 *   y = reward + discount * (1 - done) * Q_target(nextObs, argmax_a Q_online(nextObs, a)).
 */
import type { Rng } from '../../envs/spaces.ts';

export interface Transition {
  obs: Float32Array;
  action: number;
  reward: number;
  nextObs: Float32Array;
  done: boolean;
  /** Legal actions in nextObs (the Double-DQN argmax looks only at these). */
  nextMask: readonly boolean[];
  discount: number;
}

export interface ReplayBatch {
  size: number;
  obs: Float32Array;
  actions: Int32Array;
  rewards: Float32Array;
  nextObs: Float32Array;
  dones: Float32Array;
  nextMasks: Float32Array;
  discounts: Float32Array;
}

export class ReplayBuffer {
  readonly obs: Float32Array;
  readonly nextObs: Float32Array;
  readonly actions: Int32Array;
  readonly rewards: Float32Array;
  readonly dones: Uint8Array;
  readonly nextMasks: Uint8Array;
  readonly discounts: Float32Array;
  private pos = 0;
  private full = false;

  constructor(
    readonly capacity: number,
    readonly obsDim: number,
    readonly nActions: number,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`bufferSize must be >= 1, got ${capacity}`);
    this.obs = new Float32Array(capacity * obsDim);
    this.nextObs = new Float32Array(capacity * obsDim);
    this.actions = new Int32Array(capacity);
    this.rewards = new Float32Array(capacity);
    this.dones = new Uint8Array(capacity);
    this.nextMasks = new Uint8Array(capacity * nActions);
    this.discounts = new Float32Array(capacity);
  }

  get size(): number {
    return this.full ? this.capacity : this.pos;
  }

  add(t: Transition): void {
    const i = this.pos;
    this.obs.set(t.obs, i * this.obsDim);
    this.nextObs.set(t.nextObs, i * this.obsDim);
    this.actions[i] = t.action;
    this.rewards[i] = t.reward;
    this.dones[i] = t.done ? 1 : 0;
    for (let a = 0; a < this.nActions; a++) this.nextMasks[i * this.nActions + a] = t.nextMask[a] ? 1 : 0;
    this.discounts[i] = t.discount;
    this.pos = (this.pos + 1) % this.capacity;
    if (this.pos === 0) this.full = true;
  }

  /** Uniform sample with replacement (as Stable-Baselines3). */
  sample(batchSize: number, rng: Rng): ReplayBatch {
    const n = this.size;
    if (n === 0) throw new RangeError('ReplayBuffer.sample: the buffer is empty');
    const d = this.obsDim;
    const A = this.nActions;
    const b: ReplayBatch = {
      size: batchSize,
      obs: new Float32Array(batchSize * d),
      actions: new Int32Array(batchSize),
      rewards: new Float32Array(batchSize),
      nextObs: new Float32Array(batchSize * d),
      dones: new Float32Array(batchSize),
      nextMasks: new Float32Array(batchSize * A),
      discounts: new Float32Array(batchSize),
    };
    for (let k = 0; k < batchSize; k++) {
      const i = Math.floor(rng() * n);
      b.obs.set(this.obs.subarray(i * d, (i + 1) * d), k * d);
      b.nextObs.set(this.nextObs.subarray(i * d, (i + 1) * d), k * d);
      b.actions[k] = this.actions[i];
      b.rewards[k] = this.rewards[i];
      b.dones[k] = this.dones[i];
      for (let a = 0; a < A; a++) b.nextMasks[k * A + a] = this.nextMasks[i * A + a];
      b.discounts[k] = this.discounts[i];
    }
    return b;
  }

  /** State for save/load: the filled part of the ring and its write position. */
  snapshot(): { pos: number; full: boolean } {
    return { pos: this.pos, full: this.full };
  }
  restoreSnapshot(s: { pos: number; full: boolean }): void {
    this.pos = s.pos;
    this.full = s.full;
  }
}

interface PendingStep {
  obs: Float32Array;
  action: number;
  reward: number;
}

/** Turns one-step experience into n-step transitions (n = 1 is plain DQN). */
export class NStepCollector {
  private queue: PendingStep[] = [];

  constructor(
    private readonly nSteps: number,
    private readonly gamma: number,
  ) {
    if (!(Number.isInteger(nSteps) && nSteps >= 1)) throw new RangeError(`nSteps must be an integer >= 1, got ${nSteps}`);
  }

  /** Adds a step; returns the transitions that became complete (all remaining ones when the episode ended). */
  push(obs: Float32Array, action: number, reward: number, nextObs: Float32Array, done: boolean, nextMask: readonly boolean[]): Transition[] {
    this.queue.push({ obs, action, reward });
    const out: Transition[] = [];
    if (done) {
      while (this.queue.length > 0) out.push(this.emit(this.queue.length, nextObs, true, nextMask));
    } else if (this.queue.length === this.nSteps) {
      out.push(this.emit(this.nSteps, nextObs, false, nextMask));
    }
    return out;
  }

  /** Drops unfinished steps (an episode abandoned before its end). */
  clear(): void {
    this.queue = [];
  }

  private emit(k: number, nextObs: Float32Array, done: boolean, nextMask: readonly boolean[]): Transition {
    let ret = 0;
    for (let j = k - 1; j >= 0; j--) ret = this.queue[j].reward + this.gamma * ret;
    const first = this.queue.shift()!;
    return { obs: first.obs, action: first.action, reward: ret, nextObs, done, nextMask, discount: this.gamma ** k };
  }
}
