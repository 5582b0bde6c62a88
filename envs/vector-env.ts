/**
 * K precision episodes side by side on one PrecisionEnv (Gymnasium's SyncVectorEnv, SB3's n_envs): every episode
 * decides the same layer at the same step, so all of them end together and their K policies are measured as one
 * round (env.evaluateRound): the evaluations run at once on the workers, their results come back in episode order.
 * The episodes share the environment's cache, ledger and budget. A slot may sit a round out (`undefined` action:
 * a demonstration the budget mask rules out), as Gymnasium's autoreset leaves a finished sub-environment.
 */
import type { PrecisionEnv, EpisodeState } from './precision-env.ts';
import type { Info, StepResult } from './env.ts';
import type { Box, Discrete } from './spaces.ts';
import { policyKey } from '../src/policy.ts';

export class PrecisionVectorEnv {
  private readonly episodes: EpisodeState[];

  /** `rewardScale` multiplies every reward, as the ScaleReward wrapper does for one episode. */
  constructor(
    readonly env: PrecisionEnv,
    readonly numEnvs: number,
    readonly rewardScale = 1,
  ) {
    if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new RangeError(`PrecisionVectorEnv: numEnvs must be a whole number >= 1, got ${numEnvs}`);
    if (!(rewardScale > 0)) throw new RangeError(`PrecisionVectorEnv: rewardScale must be > 0, got ${rewardScale}`);
    this.episodes = Array.from({ length: numEnvs }, () => env.newEpisode());
  }

  get observationSpace(): Box {
    return this.env.observationSpace;
  }
  get actionSpace(): Discrete {
    return this.env.actionSpace;
  }

  /** Starts a new episode in slot i. */
  resetAt(i: number): [Float32Array, Info] {
    return this.env.resetEpisode(this.slot(i));
  }

  /**
   * One step of every slot that has an action (in lockstep: they decide the same layer). Non-final steps return at
   * once; the final one measures the finished policies as one round and pays each its (scaled) training reward.
   */
  async step(actions: readonly (number | undefined)[]): Promise<(StepResult<Float32Array> | undefined)[]> {
    if (actions.length !== this.numEnvs) throw new RangeError(`PrecisionVectorEnv.step: expected ${this.numEnvs} actions, got ${actions.length}`);
    const out: (StepResult<Float32Array> | undefined)[] = actions.map(() => undefined);
    const finished: { i: number; policy: NonNullable<ReturnType<PrecisionEnv['advance']>> }[] = [];
    actions.forEach((a, i) => {
      if (a === undefined) return;
      const ep = this.slot(i);
      const policy = this.env.advance(ep, a);
      if (policy === undefined) out[i] = [this.env.observationOf(ep), 0, false, false, { actionMask: this.env.maskOf(ep), layer: this.env.layerNames[ep.t] }];
      else finished.push({ i, policy });
    });
    if (finished.length > 0) {
      const known = finished.map((f) => this.env.recordOf(policyKey(this.env.layerNames, f.policy)) !== undefined);
      const records = await this.env.evaluateRound(finished.map((f) => f.policy));
      finished.forEach((f, n) => {
        const [obs, reward, terminated, truncated, info] = this.env.terminalStep(this.slot(f.i), records[n], known[n]);
        out[f.i] = [obs, reward * this.rewardScale, terminated, truncated, info];
      });
    }
    return out;
  }

  private slot(i: number): EpisodeState {
    const ep = this.episodes[i];
    if (!ep) throw new RangeError(`PrecisionVectorEnv: no slot ${i} (numEnvs ${this.numEnvs})`);
    return ep;
  }
}
