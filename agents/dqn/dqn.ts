/**
 * DQN (Mnih et al. 2015) with Double-DQN targets (van Hasselt et al. 2016), Huber loss, gradient
 * clipping by global norm, n-step returns and action masks, in TensorFlow.js. Public surface and
 * hyperparameter names follow Stable-Baselines3: `learn`, `predict`, `save`, `load`.
 *
 * Defaults differ from SB3's where the precision search differs from Atari: an episode is one pass over
 * the layers and each new policy costs a real evaluation (hundreds of ms to seconds), so the agent must
 * learn from hundreds of episodes, not millions of frames. Hence a small network, learning from the
 * first episodes, frequent target updates, gamma = 1 (finite episodes, reward only at the end), and
 * n-step returns that carry the final reward back through the episode quickly. Replaying a policy that
 * is already in the environment's cache costs no evaluation, so exploitation is free and exploration
 * (epsilon) is scheduled against the evaluation budget as well as against timesteps.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { Wrapper, type Env } from '../../envs/env.ts';
import type { PrecisionVectorEnv } from '../../envs/vector-env.ts';
import { legalActions } from '../../envs/spaces.ts';
import { initTfBackend } from './backend.ts';
import { QNetwork } from './q-network.ts';
import { NStepCollector, ReplayBuffer } from './replay-buffer.ts';
import { linearSchedule } from './schedule.ts';
import { decodeTensors, encodeTensors, loadLayersModel, saveLayersModel, writeFileAtomic } from './serialization.ts';

export interface DQNHyperparameters {
  learningRate: number;
  bufferSize: number;
  /** Environment steps collected before the first gradient step. */
  learningStarts: number;
  batchSize: number;
  /** Polyak coefficient of the target update (1 = hard copy). */
  tau: number;
  gamma: number;
  /** Train every `trainFreq` environment steps... */
  trainFreq: number;
  /** ...with this many gradient steps. */
  gradientSteps: number;
  /** Environment steps between target updates. */
  targetUpdateInterval: number;
  explorationFraction: number;
  explorationInitialEps: number;
  explorationFinalEps: number;
  maxGradNorm: number;
  /** n of n-step returns (SB3 n_steps); the episode length gives Monte-Carlo targets. */
  nSteps: number;
  policyKwargs: { netArch: number[] };
  /**
   * Every this many episodes, replay the highest-return episode seen so far (0 = never), in the spirit
   * of self-imitation learning (Oh et al. 2018). In the precision search that episode's policy is
   * cached, so it costs no evaluation, and it keeps the greedy policy, and with it the epsilon
   * exploration, close to the best policy found instead of drifting with noisy Q-estimates.
   */
  replayBestEvery: number;
  /**
   * Temporally-extended exploration, εz-greedy (Dabney, Ostrovski & Barreto 2021): when epsilon picks a random
   * action, keep repeating it for n steps, n drawn from a zeta distribution with this exponent (P(n) ∝ n^-mu),
   * until the mask forbids it or the episode ends. 0 = one-step epsilon-greedy (SB3's behaviour). In the
   * precision search a repeated action is a block of consecutive layers in one precision: the moves that pay
   * off there (an FP16 prefix, an INT8 stretch) without the reformats that single-layer flips cost.
   */
  explorationDurationMu: number;
  seed: number;
}

export const DQN_DEFAULTS: DQNHyperparameters = {
  learningRate: 1e-3,
  bufferSize: 50_000,
  learningStarts: 64,
  batchSize: 32,
  tau: 1.0,
  gamma: 1.0,
  trainFreq: 4,
  gradientSteps: 2,
  targetUpdateInterval: 200,
  explorationFraction: 0.9,
  explorationInitialEps: 1.0,
  explorationFinalEps: 0.1,
  maxGradNorm: 10,
  nSteps: 3,
  policyKwargs: { netArch: [64, 64] },
  replayBestEvery: 5,
  explorationDurationMu: 0,
  seed: 0,
};

/** Longest exploration run εz-greedy draws (runs also end with the episode). */
const MAX_EXPLORATION_DURATION = 1000;

/** Cumulative distribution of the zeta(mu) law truncated to 1..MAX_EXPLORATION_DURATION. */
function zetaCdf(mu: number): Float64Array {
  const cdf = new Float64Array(MAX_EXPLORATION_DURATION);
  let total = 0;
  for (let n = 1; n <= MAX_EXPLORATION_DURATION; n++) cdf[n - 1] = total += n ** -mu;
  for (let i = 0; i < cdf.length; i++) cdf[i] /= total;
  return cdf;
}

/** An exploration run in progress: the action being repeated and how many more steps it lasts. */
interface ExplorationRun {
  action: number;
  left: number;
}

/** An environment that reports how many (expensive) evaluations it has run: PrecisionEnv does. */
interface CountsEvaluations {
  readonly stats: { readonly evaluations: number };
}
function evaluationCounter(env: Env): CountsEvaluations | undefined {
  // Wrappers forward steps, not statistics: look through them to the environment that counts.
  let e: unknown = env;
  while (e) {
    if (typeof (e as CountsEvaluations).stats?.evaluations === 'number') return e as CountsEvaluations;
    e = e instanceof Wrapper ? e.env : undefined;
  }
  return undefined;
}

export interface EpisodeLog {
  episode: number;
  timesteps: number;
  evaluations?: number;
  epsilon: number;
  /** Sum of rewards the agent received this episode. */
  return: number;
  /** Mean loss of the gradient steps during the episode (NaN before learning starts). */
  loss: number;
  info: Record<string, unknown>;
}

export interface LearnOptions {
  totalTimesteps: number;
  /** Stop once the environment has run this many evaluations (needs env.stats.evaluations). */
  maxEvaluations?: number;
  /** Stop after this much wall time (makes the run length machine-dependent). */
  timeLimitMs?: number;
  /** Action sequences replayed first, e.g. the all-fp16 / all-int8 / greedy baseline policies. */
  demonstrations?: readonly (readonly number[])[];
  /** Called after every episode; returning false stops learning (SB3 callback semantics). */
  callback?: (log: EpisodeLog) => boolean | void;
}

export interface PredictOptions {
  mask?: readonly boolean[];
  /** Greedy when true (default); epsilon-greedy with the current exploration rate when false. */
  deterministic?: boolean;
}

interface AgentState {
  version: 1;
  algorithm: 'DQN';
  hyperparameters: DQNHyperparameters;
  obsDim: number;
  nActions: number;
  numTimesteps: number;
  episodes: number;
  nUpdates: number;
  explorationRate: number;
  rngState: seedrandom.State.Arc4;
  bestEpisode?: { actions: number[]; return: number };
  target: { specs: tf.io.WeightsManifestEntry[] };
  /** Adam's running beta powers, restored bit for bit (setWeights would recompute them with pow). */
  optimizer: { specs: tf.io.WeightsManifestEntry[]; accBeta1: number; accBeta2: number };
  replay?: { size: number; pos: number; full: boolean };
}

export class DQN {
  readonly hyperparameters: DQNHyperparameters;
  readonly obsDim: number;
  readonly nActions: number;
  readonly policy: QNetwork;
  replayBuffer: ReplayBuffer;
  numTimesteps = 0;
  episodes = 0;
  /** Gradient steps taken (SB3's _n_updates). */
  nUpdates = 0;
  explorationRate: number;
  /** Highest-return complete episode so far (replayed every replayBestEvery episodes). */
  bestEpisode: { actions: number[]; return: number } | undefined;
  private rng: seedrandom.StatefulPRNG<seedrandom.State.Arc4>;
  private readonly explorationSchedule: (progressRemaining: number) => number;
  private readonly durationCdf: Float64Array | undefined;

  /** Use `DQN.create` (it selects the tfjs backend first). */
  constructor(spaces: { obsDim: number; nActions: number }, hyper: Partial<DQNHyperparameters> = {}, restore?: { rngState: seedrandom.State.Arc4; online: tf.Sequential }) {
    this.hyperparameters = { ...DQN_DEFAULTS, ...hyper, policyKwargs: { ...DQN_DEFAULTS.policyKwargs, ...hyper.policyKwargs } };
    const h = this.hyperparameters;
    for (const k of ['learningRate', 'bufferSize', 'batchSize', 'trainFreq', 'targetUpdateInterval'] as const) {
      if (!(h[k] > 0)) throw new RangeError(`DQN ${k} must be > 0, got ${h[k]}`);
    }
    if (!(h.gamma >= 0 && h.gamma <= 1)) throw new RangeError(`DQN gamma must be in [0, 1], got ${h.gamma}`);
    if (!(h.explorationDurationMu === 0 || h.explorationDurationMu > 1)) {
      throw new RangeError(`DQN explorationDurationMu must be 0 (off) or > 1, got ${h.explorationDurationMu}`);
    }
    this.durationCdf = h.explorationDurationMu > 0 ? zetaCdf(h.explorationDurationMu) : undefined;
    this.obsDim = spaces.obsDim;
    this.nActions = spaces.nActions;
    this.rng = restore ? seedrandom('', { state: restore.rngState }) : seedrandom(`dqn:${h.seed}`, { state: true });
    this.policy = new QNetwork(
      { obsDim: this.obsDim, nActions: this.nActions, netArch: h.policyKwargs.netArch, learningRate: h.learningRate, maxGradNorm: h.maxGradNorm },
      // A restored agent's weights come from disk: drawing init seeds from its rng would shift the saved stream.
      restore ? seedrandom('restored-weights-are-overwritten') : this.rng,
      restore?.online,
    );
    this.replayBuffer = new ReplayBuffer(h.bufferSize, this.obsDim, this.nActions);
    this.explorationSchedule = linearSchedule(h.explorationInitialEps, h.explorationFinalEps, h.explorationFraction);
    this.explorationRate = h.explorationInitialEps;
  }

  static async create(env: Pick<Env, 'observationSpace' | 'actionSpace'>, hyper: Partial<DQNHyperparameters> = {}): Promise<DQN> {
    await initTfBackend();
    return new DQN({ obsDim: env.observationSpace.shape[0], nActions: env.actionSpace.n }, hyper);
  }

  /** Action for an observation: greedy over the legal actions, or epsilon-greedy when not deterministic. */
  predict(obs: Float32Array, opts: PredictOptions = {}): number {
    if (opts.deterministic === false && this.rng() < this.explorationRate) return this.randomAction(opts.mask);
    return this.policy.greedyAction(obs, opts.mask);
  }

  /** A uniformly random legal action, drawn from the agent's seeded stream. */
  private randomAction(mask: readonly boolean[] | undefined): number {
    const legal = legalActions(this.nActions, mask);
    return legal[Math.floor(this.rng() * legal.length)];
  }

  /** The training-time action: epsilon-greedy, or εz-greedy with `run` carrying an exploration run across steps. */
  private explore(obs: Float32Array, mask: readonly boolean[], run: ExplorationRun): number {
    if (run.left > 0 && mask[run.action]) {
      run.left--;
      return run.action;
    }
    run.left = 0;
    if (!this.durationCdf) return this.predict(obs, { mask, deterministic: false });
    if (this.rng() >= this.explorationRate) return this.policy.greedyAction(obs, mask);
    run.action = this.randomAction(mask);
    const u = this.rng();
    let n = 0;
    while (n < this.durationCdf.length - 1 && this.durationCdf[n] < u) n++;
    run.left = n; // n + 1 steps in all, this one included
    return run.action;
  }

  async learn(env: Env, opts: LearnOptions): Promise<this> {
    const h = this.hyperparameters;
    const counter = evaluationCounter(env);
    if (opts.maxEvaluations !== undefined && !counter) {
      throw new TypeError('learn({ maxEvaluations }) needs an environment with stats.evaluations (PrecisionEnv)');
    }
    const started = performance.now();
    const startTimesteps = this.numTimesteps;
    const evals = (): number | undefined => counter?.stats.evaluations;
    const startEvals = evals() ?? 0;
    const progress = (): number => {
      let p = (this.numTimesteps - startTimesteps) / opts.totalTimesteps;
      if (opts.maxEvaluations) p = Math.max(p, ((evals() ?? 0) - startEvals) / opts.maxEvaluations);
      return Math.min(1, p);
    };
    const collector = new NStepCollector(h.nSteps, h.gamma);
    const demos = [...(opts.demonstrations ?? [])];
    let stop = false;
    let firstReset = this.episodes === 0;
    while (!stop) {
      const replayBest = demos.length === 0 && h.replayBestEvery > 0 && this.bestEpisode !== undefined && this.episodes % h.replayBestEvery === h.replayBestEvery - 1;
      const demo = demos.shift() ?? (replayBest ? this.bestEpisode!.actions : undefined);
      const taken: number[] = [];
      const [firstObs, info] = env.reset(firstReset ? { seed: h.seed } : {});
      let obs = firstObs;
      firstReset = false;
      let mask = (info.actionMask as boolean[] | undefined) ?? env.actionMask();
      let episodeReturn = 0;
      let lossSum = 0;
      let lossCount = 0;
      collector.clear();
      const run: ExplorationRun = { action: 0, left: 0 };
      for (let t = 0; ; t++) {
        let action: number;
        if (demo) {
          action = demo[t];
          if (!mask[action]) break; // a demonstration the budget mask rules out is skipped
        } else {
          this.explorationRate = this.explorationSchedule(1 - progress());
          action = this.explore(obs, mask, run);
        }
        taken.push(action);
        const [nextObs, reward, terminated, truncated, stepInfo] = await env.step(action);
        const nextMask = (stepInfo.actionMask as boolean[] | undefined) ?? env.actionMask();
        episodeReturn += reward;
        const losses = this.afterStep(collector, obs, action, reward, nextObs, terminated, truncated, nextMask);
        lossSum += losses.sum;
        lossCount += losses.count;
        obs = nextObs;
        mask = nextMask;
        if (terminated || truncated) {
          this.episodes++;
          if (terminated && (this.bestEpisode === undefined || episodeReturn > this.bestEpisode.return)) {
            this.bestEpisode = { actions: taken, return: episodeReturn };
          }
          const log: EpisodeLog = {
            episode: this.episodes,
            timesteps: this.numTimesteps,
            evaluations: evals(),
            epsilon: this.explorationRate,
            return: episodeReturn,
            loss: lossCount ? lossSum / lossCount : NaN,
            info: stepInfo,
          };
          if (opts.callback?.(log) === false) stop = true;
          break;
        }
      }
      if (demos.length === 0) {
        if (this.numTimesteps - startTimesteps >= opts.totalTimesteps) stop = true;
        if (opts.maxEvaluations !== undefined && (evals() ?? 0) - startEvals >= opts.maxEvaluations) stop = true;
        if (opts.timeLimitMs !== undefined && performance.now() - started >= opts.timeLimitMs) stop = true;
      }
    }
    return this;
  }

  /** What follows every environment step: the transition into the replay memory, training and target updates when due. */
  private afterStep(collector: NStepCollector, obs: Float32Array, action: number, reward: number, nextObs: Float32Array, terminated: boolean, truncated: boolean, nextMask: readonly boolean[]): { sum: number; count: number } {
    const h = this.hyperparameters;
    this.numTimesteps++;
    let sum = 0;
    let count = 0;
    // A truncated episode bootstraps from nextObs; only termination ends the return.
    for (const tr of collector.push(obs, action, reward, nextObs, terminated, nextMask)) this.replayBuffer.add(tr);
    if (truncated && !terminated) collector.clear();
    if (this.numTimesteps > h.learningStarts && this.numTimesteps % h.trainFreq === 0) {
      for (let g = 0; g < h.gradientSteps; g++) {
        sum += this.policy.trainStep(this.replayBuffer.sample(h.batchSize, this.rng));
        count++;
        this.nUpdates++;
      }
    }
    if (this.numTimesteps % h.targetUpdateInterval === 0) this.policy.syncTarget(h.tau);
    return { sum, count };
  }

  /**
   * learn() on K episodes side by side (a PrecisionVectorEnv): each step chooses the K actions with the same network
   * and its own exploration run, then stores and trains on the K transitions in slot order; the K policies are
   * measured as one round. A round is never wider than the evaluations left. With one slot this is learn() exactly.
   */
  async learnVector(venv: PrecisionVectorEnv, opts: LearnOptions): Promise<this> {
    const h = this.hyperparameters;
    const env = venv.env;
    const started = performance.now();
    const startTimesteps = this.numTimesteps;
    const startEvals = env.stats.evaluations;
    const used = (): number => env.stats.evaluations - startEvals;
    const progress = (): number => {
      let p = (this.numTimesteps - startTimesteps) / opts.totalTimesteps;
      if (opts.maxEvaluations) p = Math.max(p, used() / opts.maxEvaluations);
      return Math.min(1, p);
    };
    const demos = [...(opts.demonstrations ?? [])];
    const collectors = Array.from({ length: venv.numEnvs }, () => new NStepCollector(h.nSteps, h.gamma));
    if (this.episodes === 0) env.reset({ seed: h.seed });
    const L = env.layers.length;
    let stop = false;
    while (!stop) {
      const width = opts.maxEvaluations === undefined ? venv.numEnvs : Math.max(1, Math.min(venv.numEnvs, opts.maxEvaluations - used()));
      const slots = Array.from({ length: width }, (_, s) => {
        const replayBest = demos.length === 0 && h.replayBestEvery > 0 && this.bestEpisode !== undefined && (this.episodes + s) % h.replayBestEvery === h.replayBestEvery - 1;
        const demo = demos.shift() ?? (replayBest ? this.bestEpisode!.actions : undefined);
        const [obs, info] = venv.resetAt(s);
        collectors[s].clear();
        return {
          demo, obs, alive: true, taken: [] as number[], episodeReturn: 0, lossSum: 0, lossCount: 0,
          mask: info.actionMask as boolean[],
          run: { action: 0, left: 0 } as ExplorationRun,
        };
      });
      for (let t = 0; t < L && slots.some((x) => x.alive); t++) {
        const actions: (number | undefined)[] = Array.from({ length: venv.numEnvs }, () => undefined);
        slots.forEach((x, s) => {
          if (!x.alive) return;
          if (x.demo) {
            if (!x.mask[x.demo[t]]) {
              x.alive = false; // a demonstration the budget mask rules out is skipped
              return;
            }
            actions[s] = x.demo[t];
          } else {
            this.explorationRate = this.explorationSchedule(1 - progress());
            actions[s] = this.explore(x.obs, x.mask, x.run);
          }
        });
        const results = await venv.step(actions);
        slots.forEach((x, s) => {
          const result = results[s];
          if (!x.alive || result === undefined) return;
          const [nextObs, reward, terminated, truncated, stepInfo] = result;
          const action = actions[s]!;
          x.taken.push(action);
          const nextMask = stepInfo.actionMask as boolean[];
          x.episodeReturn += reward;
          const losses = this.afterStep(collectors[s], x.obs, action, reward, nextObs, terminated, truncated, nextMask);
          x.lossSum += losses.sum;
          x.lossCount += losses.count;
          x.obs = nextObs;
          x.mask = nextMask;
          if (terminated || truncated) {
            x.alive = false;
            this.episodes++;
            if (terminated && (this.bestEpisode === undefined || x.episodeReturn > this.bestEpisode.return)) {
              this.bestEpisode = { actions: x.taken, return: x.episodeReturn };
            }
            const log: EpisodeLog = {
              episode: this.episodes, timesteps: this.numTimesteps, evaluations: env.stats.evaluations, epsilon: this.explorationRate,
              return: x.episodeReturn, loss: x.lossCount ? x.lossSum / x.lossCount : NaN, info: stepInfo,
            };
            if (opts.callback?.(log) === false) stop = true;
          }
        });
      }
      if (demos.length === 0) {
        if (this.numTimesteps - startTimesteps >= opts.totalTimesteps) stop = true;
        if (opts.maxEvaluations !== undefined && used() >= opts.maxEvaluations) stop = true;
        if (opts.timeLimitMs !== undefined && performance.now() - started >= opts.timeLimitMs) stop = true;
      }
    }
    return this;
  }

  async save(dir: string, opts: { replayBuffer?: boolean } = {}): Promise<void> {
    await saveLayersModel(dir, this.policy.online);
    const target = await encodeTensors(this.policy.target.getWeights().map((tensor, i) => ({ name: `target/${i}`, tensor })));
    const optimizerWeights = await this.policy.optimizer.getWeights();
    const optimizer = await encodeTensors(optimizerWeights);
    // getWeights returns the moment variables themselves plus a fresh scalar for the step count.
    for (const w of optimizerWeights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
    await writeFileAtomic(join(dir, 'target.bin'), target.data);
    await writeFileAtomic(join(dir, 'optimizer.bin'), optimizer.data);
    const state: AgentState = {
      version: 1,
      algorithm: 'DQN',
      hyperparameters: this.hyperparameters,
      obsDim: this.obsDim,
      nActions: this.nActions,
      numTimesteps: this.numTimesteps,
      episodes: this.episodes,
      nUpdates: this.nUpdates,
      explorationRate: this.explorationRate,
      rngState: this.rng.state(),
      bestEpisode: this.bestEpisode,
      target: { specs: target.specs },
      optimizer: { specs: optimizer.specs, ...this.adamBetaPowers() },
    };
    if (opts.replayBuffer ?? true) {
      const rb = this.replayBuffer;
      const n = rb.size;
      const parts = [
        rb.obs.subarray(0, n * this.obsDim), rb.nextObs.subarray(0, n * this.obsDim), rb.actions.subarray(0, n),
        rb.rewards.subarray(0, n), rb.discounts.subarray(0, n), rb.dones.subarray(0, n), rb.nextMasks.subarray(0, n * this.nActions),
      ];
      const bytes = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
      let o = 0;
      for (const p of parts) {
        bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), o);
        o += p.byteLength;
      }
      await writeFileAtomic(join(dir, 'replay.bin'), bytes);
      state.replay = { size: n, ...rb.snapshot() };
    }
    await writeFileAtomic(join(dir, 'agent.json'), JSON.stringify(state, null, 2));
  }

  static async load(dir: string): Promise<DQN> {
    await initTfBackend();
    const state = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as AgentState;
    if (state.version !== 1 || state.algorithm !== 'DQN') throw new Error(`${dir}/agent.json is not a version-1 DQN agent`);
    const online = (await loadLayersModel(dir)) as tf.Sequential;
    const agent = new DQN({ obsDim: state.obsDim, nActions: state.nActions }, state.hyperparameters, { rngState: state.rngState, online });
    const target = decodeTensors(new Uint8Array(await readFile(join(dir, 'target.bin'))), state.target.specs);
    agent.policy.target.setWeights(target.map((t) => t.tensor));
    target.forEach((t) => t.tensor.dispose());
    const optimizer = decodeTensors(new Uint8Array(await readFile(join(dir, 'optimizer.bin'))), state.optimizer.specs);
    await agent.policy.optimizer.setWeights(optimizer);
    optimizer.forEach((t) => t.tensor.dispose());
    agent.setAdamBetaPowers(state.optimizer);
    agent.numTimesteps = state.numTimesteps;
    agent.episodes = state.episodes;
    agent.nUpdates = state.nUpdates;
    agent.explorationRate = state.explorationRate;
    agent.bestEpisode = state.bestEpisode;
    if (state.replay) {
      const raw = await readFile(join(dir, 'replay.bin'));
      const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength).slice();
      const rb = agent.replayBuffer;
      const n = state.replay.size;
      let o = 0;
      const take = <T extends Float32Array | Int32Array | Uint8Array>(target: T, count: number, ctor: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number }): void => {
        target.set(new ctor(bytes.buffer, o, count));
        o += count * ctor.BYTES_PER_ELEMENT;
      };
      take(rb.obs, n * state.obsDim, Float32Array);
      take(rb.nextObs, n * state.obsDim, Float32Array);
      take(rb.actions, n, Int32Array);
      take(rb.rewards, n, Float32Array);
      take(rb.discounts, n, Float32Array);
      take(rb.dones, n, Uint8Array);
      take(rb.nextMasks, n * state.nActions, Uint8Array);
      rb.restoreSnapshot(state.replay);
    }
    return agent;
  }

  private adamBetaPowers(): { accBeta1: number; accBeta2: number } {
    const adam = this.policy.optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    return { accBeta1: adam.accBeta1.dataSync()[0], accBeta2: adam.accBeta2.dataSync()[0] };
  }

  private setAdamBetaPowers(p: { accBeta1: number; accBeta2: number }): void {
    const adam = this.policy.optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    tf.tidy(() => {
      adam.accBeta1.assign(tf.scalar(p.accBeta1));
      adam.accBeta2.assign(tf.scalar(p.accBeta2));
    });
  }

  dispose(): void {
    this.policy.dispose();
  }
}
