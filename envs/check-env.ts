/**
 * checkEnv: tests an environment against the contract, as Gymnasium's utils/env_checker does: spaces
 * of the right kind, reset/step signatures, observations inside the observation space, a usable action
 * mask, episodes that end, errors on misuse, and determinism under a seed. Throws on the first breach.
 */
import { Box, Discrete } from './spaces.ts';
import type { Env, Info } from './env.ts';

export interface CheckEnvOptions {
  seed?: number;
  /** An episode longer than this is reported as never ending. */
  maxEpisodeSteps?: number;
}

function fail(msg: string): never {
  throw new Error(`checkEnv: ${msg}`);
}

function checkObs(env: Env, obs: unknown, where: string): void {
  if (!(obs instanceof Float32Array)) fail(`${where}: observation is not a Float32Array`);
  if (obs.length !== env.observationSpace.shape[0]) {
    fail(`${where}: observation has ${obs.length} entries, observationSpace has ${env.observationSpace.shape[0]}`);
  }
  if (!env.observationSpace.contains(obs)) {
    const o = obs as Float32Array;
    const i = Array.from(o).findIndex((x, k) => !(x >= env.observationSpace.low[k] && x <= env.observationSpace.high[k]));
    fail(`${where}: observation entry ${i} = ${o[i]} is outside [${env.observationSpace.low[i]}, ${env.observationSpace.high[i]}]`);
  }
}

function checkMask(env: Env, info: Info, where: string): boolean[] {
  const mask = env.actionMask();
  if (!Array.isArray(mask) || mask.length !== env.actionSpace.n) fail(`${where}: actionMask() must have ${env.actionSpace.n} booleans`);
  if (!mask.some(Boolean)) fail(`${where}: actionMask() allows no action`);
  if (info.actionMask !== undefined && JSON.stringify(info.actionMask) !== JSON.stringify(mask)) {
    fail(`${where}: info.actionMask differs from actionMask()`);
  }
  return mask;
}

interface Trace {
  obs: number[][];
  rewards: number[];
  actions: number[];
}

async function rollout(env: Env, seed: number, maxSteps: number): Promise<Trace> {
  const sampler = new Discrete(env.actionSpace.n, seed);
  const resetOut = env.reset({ seed });
  if (!Array.isArray(resetOut) || resetOut.length !== 2) fail('reset() must return [observation, info]');
  const [obs0, info0] = resetOut;
  if (typeof info0 !== 'object' || info0 === null) fail('reset(): info must be an object');
  checkObs(env, obs0, 'reset()');
  const trace: Trace = { obs: [Array.from(obs0)], rewards: [], actions: [] };
  let mask = checkMask(env, info0, 'reset()');
  for (let t = 0; ; t++) {
    if (t >= maxSteps) fail(`episode did not end within ${maxSteps} steps`);
    const action = sampler.sample(mask);
    const out = await env.step(action);
    if (!Array.isArray(out) || out.length !== 5) fail('step() must return [observation, reward, terminated, truncated, info]');
    const [obs, reward, terminated, truncated, info] = out;
    const where = `step ${t}`;
    checkObs(env, obs, where);
    if (typeof reward !== 'number' || !Number.isFinite(reward)) fail(`${where}: reward ${reward} is not a finite number`);
    if (typeof terminated !== 'boolean' || typeof truncated !== 'boolean') fail(`${where}: terminated/truncated must be booleans`);
    if (typeof info !== 'object' || info === null) fail(`${where}: info must be an object`);
    trace.obs.push(Array.from(obs));
    trace.rewards.push(reward);
    trace.actions.push(action);
    if (terminated || truncated) return trace;
    mask = checkMask(env, info, where);
  }
}

async function expectThrow(f: () => unknown, what: string): Promise<void> {
  try {
    await f();
  } catch {
    return;
  }
  fail(what);
}

export async function checkEnv(env: Env, opts: CheckEnvOptions = {}): Promise<void> {
  const seed = opts.seed ?? 0;
  const maxSteps = opts.maxEpisodeSteps ?? 100_000;
  if (!(env.actionSpace instanceof Discrete)) fail('actionSpace must be a Discrete space');
  if (!(env.observationSpace instanceof Box)) fail('observationSpace must be a Box space');

  const first = await rollout(env, seed, maxSteps);
  const again = await rollout(env, seed, maxSteps);
  if (JSON.stringify(first) !== JSON.stringify(again)) fail(`two episodes with seed ${seed} and the same actions differ: the environment is not deterministic`);
  // reset(seed) must rewind everything, whatever ran in between.
  await rollout(env, seed + 1, maxSteps);
  const afterOther = await rollout(env, seed, maxSteps);
  if (JSON.stringify(afterOther) !== JSON.stringify(first)) fail(`an episode with seed ${seed} changed after an episode with seed ${seed + 1}: reset() does not rewind all state`);

  await expectThrow(() => env.step(0), 'step() after the episode ended must throw until reset() is called');
  env.reset({ seed });
  await expectThrow(() => env.step(env.actionSpace.n), `step(${env.actionSpace.n}) is outside the action space and must throw`);
  await expectThrow(() => env.step(-1), 'step(-1) is outside the action space and must throw');
  await expectThrow(() => env.step(0.5), 'step(0.5) is not an integer action and must throw');
  const masked = env.actionMask().findIndex((ok) => !ok);
  if (masked >= 0) await expectThrow(() => env.step(masked), `step(${masked}) is masked at reset and must throw`);
}
