/**
 * The Gymnasium environment contract, rendered in TypeScript. `step` is async because evaluating a
 * policy runs onnxruntime; `reset` is synchronous because it only rewinds state.
 */
import type { Box, Discrete } from './spaces.ts';

export type Info = Record<string, unknown>;

export interface ResetOptions {
  seed?: number;
  options?: Record<string, unknown>;
}

/** [observation, reward, terminated, truncated, info], as Gymnasium's `step`. */
export type StepResult<Obs> = [Obs, number, boolean, boolean, Info];

export interface Env<Obs = Float32Array, Act = number> {
  readonly observationSpace: Box;
  readonly actionSpace: Discrete;
  reset(opts?: ResetOptions): [Obs, Info];
  step(action: Act): Promise<StepResult<Obs>>;
  /** Legal actions in the current state (sb3-contrib's `action_masks()`); also in `info.actionMask`. */
  actionMask(): boolean[];
}

/** A wrapper changes one concern of the environment it wraps and forwards the rest. */
export class Wrapper<Obs = Float32Array> implements Env<Obs> {
  constructor(readonly env: Env<Obs>) {}
  get observationSpace(): Box {
    return this.env.observationSpace;
  }
  get actionSpace(): Discrete {
    return this.env.actionSpace;
  }
  reset(opts?: ResetOptions): [Obs, Info] {
    return this.env.reset(opts);
  }
  step(action: number): Promise<StepResult<Obs>> {
    return this.env.step(action);
  }
  actionMask(): boolean[] {
    return this.env.actionMask();
  }
  /** The innermost environment (Gymnasium's `env.unwrapped`). */
  get unwrapped(): Env<Obs> {
    let e: Env<Obs> = this.env;
    while (e instanceof Wrapper) e = e.env;
    return e;
  }
}
