/**
 * The DQN policy: online and target Q-networks (MLPs over the observation, one output per action) and
 * the gradient step. As in Stable-Baselines3, the policy owns the networks and the algorithm owns the
 * loop. Every tensor made here is released by tf.tidy or dispose, so training does not grow memory.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../envs/spaces.ts';
import type { ReplayBatch } from './replay-buffer.ts';

/** Large enough to rule out a masked action, small enough to stay finite in float32 arithmetic. */
const MASKED_Q = -1e9;

export function buildQModel(obsDim: number, nActions: number, netArch: readonly number[], rng: Rng): tf.Sequential {
  // tfjs initializers take an integer seed; drawing them from the agent's rng makes weights reproducible.
  const seed = (): number => Math.floor(rng() * 2 ** 31);
  const model = tf.sequential();
  netArch.forEach((units, i) => {
    model.add(
      tf.layers.dense({
        units,
        activation: 'relu',
        ...(i === 0 ? { inputShape: [obsDim] } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed() }),
        biasInitializer: 'zeros',
      }),
    );
  });
  model.add(
    tf.layers.dense({
      units: nActions,
      ...(netArch.length === 0 ? { inputShape: [obsDim] } : {}),
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed() }),
      biasInitializer: 'zeros',
    }),
  );
  return model;
}

export interface QNetworkOptions {
  obsDim: number;
  nActions: number;
  netArch: readonly number[];
  learningRate: number;
  maxGradNorm: number;
}

export class QNetwork {
  readonly online: tf.Sequential;
  readonly target: tf.Sequential;
  readonly optimizer: tf.AdamOptimizer;

  constructor(
    readonly opts: QNetworkOptions,
    rng: Rng,
    online?: tf.Sequential,
  ) {
    this.online = online ?? buildQModel(opts.obsDim, opts.nActions, opts.netArch, rng);
    this.target = buildQModel(opts.obsDim, opts.nActions, opts.netArch, rng);
    this.target.trainable = false;
    this.syncTarget(1);
    this.optimizer = tf.train.adam(opts.learningRate);
  }

  /** Q-values of one observation. */
  qValues(obs: Float32Array): Float32Array {
    return tf.tidy(() => (this.online.predict(tf.tensor2d(obs, [1, this.opts.obsDim])) as tf.Tensor).dataSync() as Float32Array);
  }

  /** Greedy action among the legal ones. */
  greedyAction(obs: Float32Array, mask?: readonly boolean[]): number {
    const q = this.qValues(obs);
    let best = -1;
    for (let a = 0; a < q.length; a++) {
      if (mask && !mask[a]) continue;
      if (best < 0 || q[a] > q[best]) best = a;
    }
    if (best < 0) throw new RangeError('greedyAction: the mask allows no action');
    return best;
  }

  /** One gradient step of Double DQN with Huber loss and global-norm gradient clipping; returns the loss. */
  trainStep(b: ReplayBatch): number {
    const { obsDim: d, nActions: A, maxGradNorm } = this.opts;
    return tf.tidy(() => {
      const nextObs = tf.tensor2d(b.nextObs, [b.size, d]);
      const nextMask = tf.tensor2d(b.nextMasks, [b.size, A]);
      // Double DQN: the online network picks the next action, the target network values it.
      const qNextOnline = (this.online.predict(nextObs) as tf.Tensor2D).add(tf.scalar(1).sub(nextMask).mul(MASKED_Q));
      const nextAction = qNextOnline.argMax(1) as tf.Tensor1D;
      const qNextTarget = this.target.predict(nextObs) as tf.Tensor2D;
      const nextQ = qNextTarget.mul(tf.oneHot(nextAction, A)).sum(1);
      const notDone = tf.scalar(1).sub(tf.tensor1d(b.dones));
      const y = tf.tensor1d(b.rewards).add(tf.tensor1d(b.discounts).mul(notDone).mul(nextQ));
      const obs = tf.tensor2d(b.obs, [b.size, d]);
      const taken = tf.oneHot(tf.tensor1d(b.actions, 'int32'), A);
      const vars = this.online.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = this.optimizer.computeGradients(() => {
        const q = this.online.apply(obs, { training: true }) as tf.Tensor2D;
        return tf.losses.huberLoss(y, q.mul(taken).sum(1)) as tf.Scalar;
      }, vars);
      // AdamOptimizer's typing says variables; at run time it takes gradient tensors by variable name.
      this.optimizer.applyGradients(clipByGlobalNorm(grads, maxGradNorm) as unknown as Record<string, tf.Variable>);
      return value.dataSync()[0];
    });
  }

  /** target <- tau * online + (1 - tau) * target (tau = 1: hard copy). */
  syncTarget(tau: number): void {
    tf.tidy(() => {
      const src = this.online.getWeights();
      if (tau >= 1) {
        this.target.setWeights(src);
        return;
      }
      const dst = this.target.getWeights();
      this.target.setWeights(src.map((w, i) => w.mul(tau).add(dst[i].mul(1 - tau))));
    });
  }

  dispose(): void {
    this.online.dispose();
    this.target.dispose();
    this.optimizer.dispose();
  }
}

/** Scales all gradients together so their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_). */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    const sq = tf.addN(names.map((n) => grads[n].square().sum()));
    const scale = tf.minimum(tf.scalar(1), tf.scalar(maxNorm).div(sq.sqrt().add(1e-6)));
    const out: tf.NamedTensorMap = {};
    for (const n of names) out[n] = grads[n].mul(scale);
    return out;
  });
}
