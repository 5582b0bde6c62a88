/** Wrappers, one concern each (Gymnasium's gymnasium/wrappers). */
import { Wrapper, type Info, type ResetOptions, type StepResult } from './env.ts';

export interface EpisodeStatistics {
  /** Sum of rewards over the episode. */
  r: number;
  /** Episode length in steps. */
  l: number;
}

/** Adds `info.episode = { r, l }` at the end of each episode and keeps the recent returns. */
export class RecordEpisodeStatistics<Obs = Float32Array> extends Wrapper<Obs> {
  readonly returnQueue: number[] = [];
  readonly lengthQueue: number[] = [];
  private episodeReturn = 0;
  private episodeLength = 0;

  constructor(
    env: Wrapper<Obs>['env'],
    private readonly bufferLength = 100,
  ) {
    super(env);
  }

  override reset(opts?: ResetOptions): [Obs, Info] {
    this.episodeReturn = 0;
    this.episodeLength = 0;
    return super.reset(opts);
  }

  override async step(action: number): Promise<StepResult<Obs>> {
    const [obs, reward, terminated, truncated, info] = await super.step(action);
    this.episodeReturn += reward;
    this.episodeLength++;
    if (terminated || truncated) {
      const episode: EpisodeStatistics = { r: this.episodeReturn, l: this.episodeLength };
      this.returnQueue.push(episode.r);
      this.lengthQueue.push(episode.l);
      if (this.returnQueue.length > this.bufferLength) {
        this.returnQueue.shift();
        this.lengthQueue.shift();
      }
      return [obs, reward, terminated, truncated, { ...info, episode }];
    }
    return [obs, reward, terminated, truncated, info];
  }
}

/**
 * Multiplies every reward by a constant (Gymnasium's TransformReward with f = r * scale). The precision
 * reward differs by a few thousandths between good policies; a Q-network trained with Adam resolves
 * such gaps better when they are scaled towards unit size.
 */
export class ScaleReward<Obs = Float32Array> extends Wrapper<Obs> {
  constructor(
    env: Wrapper<Obs>['env'],
    readonly scale: number,
  ) {
    super(env);
    if (!(scale > 0)) throw new RangeError(`ScaleReward: scale must be > 0, got ${scale}`);
  }

  override async step(action: number): Promise<StepResult<Obs>> {
    const [obs, reward, terminated, truncated, info] = await super.step(action);
    return [obs, reward * this.scale, terminated, truncated, info];
  }
}
