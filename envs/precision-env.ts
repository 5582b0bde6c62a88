/**
 * PrecisionEnv: the per-layer precision search as a Gymnasium environment. One step decides one
 * quantizable layer, in topological order; the episode ends after the last layer, when the finished
 * policy is priced (latency model) and scored (evaluator) and the reward R = wAcc*dAcc - wLat*dLat is
 * paid. Rewards before the last step are 0.
 *
 * Constraints. The latency budget is enforced by action masking: an action is illegal when, even with
 * every later layer at its fastest precision, the policy could no longer meet the budget (a lower bound
 * from the latency table, see latency-table.ts). The accuracy floor cannot be known before a policy is
 * scored, so it is enforced by the reward: a policy that breaks either constraint is paid R minus a
 * penalty and is never recorded as best.
 */
import seedrandom from 'seedrandom';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LatencyModel } from '../src/latency/types.ts';
import { DEFAULT_ACTIONS, policyKey, uniformPolicy, type LayerPolicy, type Precision } from '../src/policy.ts';
import { UserError } from '../src/errors.ts';
import type { Env, Info, ResetOptions, StepResult } from './env.ts';
import { Box, Discrete, type Rng } from './spaces.ts';
import { budgetMask, buildLatencyTable, type LatencyTable } from './latency-table.ts';
import { ObservationEncoder } from './observation.ts';
import { EvaluationLedger, type EvaluationRecord, type EvaluationStats } from './evaluation-ledger.ts';
import {
  DEFAULT_REWARD_WEIGHTS,
  accuracyChange,
  constraintViolations,
  isFeasible,
  latencyChange,
  trainingReward,
  type Constraints,
  type RewardWeights,
} from './reward.ts';
import { actionLabel, sensitivityRecord, type ActionOption, type LayerSensitivity, type PolicyEvaluator } from './types.ts';

export interface SubsetScreening {
  /** A subset-screened policy is confirmed on the full data when its subset reward ranks in the top K so far. */
  confirmTopK?: number;
  /** Extra relative accuracy drop tolerated on the subset before a policy is considered hopeless. */
  floorMargin?: number;
}

export interface PrecisionEnvOptions {
  /** Quantizable layers (layer discovery's output); sorted by `index` (topological order). */
  layers: readonly Layer[];
  evaluator: PolicyEvaluator;
  latency: LatencyModel;
  /** Action set; default DEFAULT_ACTIONS (int8, mixed, fp16). */
  actions?: readonly (ActionOption | Precision)[];
  /** Analyzer features per layer: an array aligned with `layers`, or a record by layer name. */
  sensitivity?: readonly (LayerSensitivity | undefined)[] | Readonly<Record<string, LayerSensitivity>>;
  /** Hard latency budget in ms (`--budget-ms`). */
  budgetMs?: number;
  /** Hard latency budget as a fraction of the all-FP16 latency (`--budget`). */
  budget?: number;
  /** Accuracy floor: largest relative drop vs FP32 (`--max-drop`, 0.01 = 1 %). */
  maxDrop?: number;
  weights?: Partial<RewardWeights>;
  /** Subtracted from R (with the violation size) for a policy that breaks a constraint. Default 0.2. */
  infeasiblePenalty?: number;
  /** Layer/action pairs that are never legal (e.g. a layer TensorRT cannot run in int8). */
  allowAction?: (layer: Layer, option: ActionOption) => boolean;
  /** Include the actions taken so far (one-hot per layer) in the observation. Default true. */
  observePrefix?: boolean;
  /** Score policies the latency model already puts over budget. Default false: they cost no evaluation. */
  scoreOverBudget?: boolean;
  /** Screen new policies on the evaluator's subset and confirm the promising ones on the full data. */
  subset?: SubsetScreening | boolean;
  /** Called once per new measurement (e.g. to append to history.jsonl). */
  onEvaluation?: (record: EvaluationRecord) => void;
}

/** Where one episode is: the layer it decides next, the actions taken, their latency so far. */
export interface EpisodeState {
  t: number;
  taken: number[];
  prefixMs: number;
  needsReset: boolean;
}

export interface MeasureOptions {
  /** Score a policy even where the latency model puts it over budget (a probe). */
  evenOverBudget?: boolean;
  /** Score it on the full data whatever screening and the budget would decide. */
  confirm?: boolean;
}

/** A measured policy restored from an earlier run's history (`--resume`). */
export interface RestoredMeasurement {
  policy: LayerPolicy;
  latencyMs: number;
  score?: number;
  subsetScore?: number;
  dropBound?: number;
}

function normalizeActions(actions: readonly (ActionOption | Precision)[]): ActionOption[] {
  const out = actions.map((a) => (typeof a === 'string' ? { precision: a } : { ...a }));
  for (const o of out) {
    if (o.calibration && o.precision !== 'int8' && o.precision !== 'mixed') {
      throw new RangeError(`action ${actionLabel(o)}: calibration applies to int8/mixed layers only`);
    }
  }
  const labels = out.map(actionLabel);
  if (new Set(labels).size !== labels.length) throw new RangeError(`duplicate actions in ${labels.join(', ')}`);
  if (out.length === 0) throw new RangeError('the action set is empty');
  return out;
}

function resolveBudgetMs(o: PrecisionEnvOptions, fp16TotalMs: number): number {
  if (o.budgetMs !== undefined && o.budget !== undefined) {
    throw new UserError('give either --budget-ms (milliseconds) or --budget (fraction of all-FP16 latency), not both');
  }
  if (o.budgetMs !== undefined) {
    if (!(o.budgetMs > 0)) throw new UserError(`--budget-ms must be a positive number of milliseconds, got ${o.budgetMs}`);
    return o.budgetMs;
  }
  if (o.budget !== undefined) {
    if (!(o.budget > 0)) throw new UserError(`--budget must be a positive fraction of the all-FP16 latency (e.g. 0.7), got ${o.budget}`);
    return o.budget * fp16TotalMs;
  }
  return Infinity;
}

export class PrecisionEnv implements Env<Float32Array> {
  readonly observationSpace: Box;
  readonly actionSpace: Discrete;
  readonly layers: readonly Layer[];
  readonly layerNames: readonly string[];
  readonly actions: readonly ActionOption[];
  readonly constraints: Constraints;
  readonly weights: RewardWeights;
  readonly latencyTable: LatencyTable;
  readonly featureNames: readonly string[];
  /** Analyzer features per layer (topological order), as records; {} where none were given. */
  readonly sensitivity: readonly Record<string, number>[];
  /** Seeded by reset({seed}); the environment itself is deterministic, wrappers and agents may draw from it. */
  npRandom: Rng = seedrandom('env:0');

  private readonly ledger = new EvaluationLedger();
  private readonly latencyCache = new Map<string, number>();
  private readonly pending = new Map<string, Promise<EvaluationRecord>>();
  /** Subset rewards of the screened policies still in contention (not refuted on the full data). */
  private readonly contenders = new Map<string, number>();
  /** The episode that reset/step drive; a vector env (envs/vector-env.ts) drives more, side by side. */
  private readonly main: EpisodeState = { t: 0, taken: [], prefixMs: 0, needsReset: true };
  private episodes = 0;

  private constructor(
    private readonly o: PrecisionEnvOptions,
    actions: ActionOption[],
    private readonly staticMask: boolean[][],
    table: LatencyTable,
    budgetMs: number,
    private readonly encoder: ObservationEncoder,
    private readonly fp32SubsetScore: number | undefined,
    private readonly subset: Required<SubsetScreening> | undefined,
    sensitivity: readonly (LayerSensitivity | undefined)[],
  ) {
    this.layers = [...o.layers].sort((a, b) => a.index - b.index);
    this.layerNames = this.layers.map((l) => l.name);
    this.actions = actions;
    this.latencyTable = table;
    this.constraints = { budgetMs, maxDrop: o.maxDrop ?? Infinity };
    this.weights = { ...DEFAULT_REWARD_WEIGHTS, ...o.weights };
    this.featureNames = encoder.featureNames;
    this.sensitivity = this.layers.map((_, i) => sensitivityRecord(sensitivity[i]));
    this.observationSpace = new Box(-1, 1, encoder.size);
    this.actionSpace = new Discrete(actions.length);
  }

  static async create(o: PrecisionEnvOptions): Promise<PrecisionEnv> {
    if (o.layers.length === 0) throw new UserError('the model has no quantizable layers (Conv, ConvTranspose, Gemm, MatMul): nothing to search');
    if (o.maxDrop !== undefined && !(o.maxDrop >= 0)) throw new UserError(`--max-drop must be a relative drop >= 0 (e.g. 0.01 for 1 %), got ${o.maxDrop}`);
    const w = { ...DEFAULT_REWARD_WEIGHTS, ...o.weights };
    if (!(w.wAcc >= 0 && w.wLat >= 0)) throw new UserError(`reward weights must be >= 0, got wAcc=${w.wAcc} wLat=${w.wLat}`);
    if (!Number.isFinite(o.evaluator.fp32Score)) throw new Error(`evaluator's FP32 score is not a number: ${o.evaluator.fp32Score}`);
    const layers = [...o.layers].sort((a, b) => a.index - b.index);
    const actions = normalizeActions(o.actions ?? DEFAULT_ACTIONS);
    const allow = o.allowAction ?? (() => true);
    const staticMask = layers.map((l) => {
      const m = actions.map((a) => allow(l, a));
      if (!m.some(Boolean)) throw new RangeError(`layer ${l.name}: no action in the action set is allowed`);
      return m;
    });
    const table = await buildLatencyTable(layers, actions, o.latency, staticMask);
    const budgetMs = resolveBudgetMs(o, table.fp16TotalMs);
    // An array is aligned with o.layers as given; key it by name before the layers are sorted.
    const byName: Readonly<Record<string, LayerSensitivity | undefined>> | undefined = Array.isArray(o.sensitivity)
      ? Object.fromEntries(o.layers.map((l, i) => [l.name, (o.sensitivity as readonly (LayerSensitivity | undefined)[])[i]]))
      : (o.sensitivity as Readonly<Record<string, LayerSensitivity>> | undefined);
    const sensitivity = layers.map((l) => byName?.[l.name]);
    const encoder = new ObservationEncoder(layers, actions.length, table, sensitivity, o.observePrefix ?? true);
    const subset = o.subset ? { confirmTopK: 5, floorMargin: 0.01, ...(o.subset === true ? {} : o.subset) } : undefined;
    let fp32SubsetScore = subset ? o.evaluator.fp32SubsetScore : undefined;
    const measureSubsetReference = subset !== undefined && fp32SubsetScore === undefined;
    if (measureSubsetReference) {
      const names = layers.map((l) => l.name);
      fp32SubsetScore = (await o.evaluator.evaluate(uniformPolicy(names, 'fp32'), { subset: true })).score;
    }
    const env = new PrecisionEnv(o, actions, staticMask, table, budgetMs, encoder, fp32SubsetScore, subset, sensitivity);
    if (measureSubsetReference) env.ledger.stats.subsetEvaluations++;
    return env;
  }

  get fp16LatencyMs(): number {
    return this.latencyTable.fp16TotalMs;
  }
  get fp32Score(): number {
    return this.o.evaluator.fp32Score;
  }
  get higherIsBetter(): boolean {
    return this.o.evaluator.higherIsBetter;
  }
  get stats(): Readonly<EvaluationStats & { episodes: number }> {
    return { ...this.ledger.stats, episodes: this.episodes };
  }
  /** Best feasible policy measured on the full data so far. */
  get best(): EvaluationRecord | undefined {
    return this.ledger.best;
  }
  /** Every measurement, in order. */
  get history(): readonly EvaluationRecord[] {
    return this.ledger.history;
  }
  /** Every distinct policy measured, latest record each. */
  records(): EvaluationRecord[] {
    return [...this.ledger.all()];
  }
  /** Latest record of a policy by its policyKey. */
  recordOf(key: string): EvaluationRecord | undefined {
    return this.ledger.get(key);
  }
  /** The layer the next step decides (L when the episode is over). */
  get currentLayer(): number {
    return this.main.t;
  }

  reset(opts: ResetOptions = {}): [Float32Array, Info] {
    if (opts.seed !== undefined) this.npRandom = seedrandom(`env:${opts.seed}`);
    return this.resetEpisode(this.main);
  }

  actionMask(): boolean[] {
    return this.maskOf(this.main);
  }

  async step(action: number): Promise<StepResult<Float32Array>> {
    const policy = this.advance(this.main, action);
    if (policy === undefined) return [this.observe(this.main), 0, false, false, { actionMask: this.maskOf(this.main), layer: this.layerNames[this.main.t] }];
    const hitsBefore = this.ledger.stats.cacheHits;
    const record = await this.evaluatePolicy(policy);
    return this.terminalStep(this.main, record, this.ledger.stats.cacheHits > hitsBefore);
  }

  /** A new episode state for a vector env: stepped with the *Episode methods, finished by evaluateRound. */
  newEpisode(): EpisodeState {
    return { t: 0, taken: [], prefixMs: 0, needsReset: true };
  }

  /** reset() of one episode state. */
  resetEpisode(ep: EpisodeState): [Float32Array, Info] {
    ep.t = 0;
    ep.taken = [];
    ep.prefixMs = 0;
    ep.needsReset = false;
    const mask = this.maskOf(ep);
    return [this.observe(ep), { actionMask: mask, layer: this.layerNames[0], budgetReachable: this.budgetReachable() }];
  }

  /** The legal actions of one episode state. */
  maskOf(ep: EpisodeState): boolean[] {
    if (ep.t >= this.layers.length) return this.actions.map(() => true);
    return budgetMask(this.latencyTable, ep.t, ep.prefixMs, this.constraints.budgetMs, this.staticMask[ep.t]);
  }

  /** The observation of one episode state. */
  observationOf(ep: EpisodeState): Float32Array {
    return this.observe(ep);
  }

  /**
   * Takes one action in an episode state; returns the finished policy after the last layer (the episode is then over:
   * its measurement is the caller's, by evaluatePolicy or evaluateRound, and terminalStep makes the step's result).
   */
  advance(ep: EpisodeState, action: number): LayerPolicy | undefined {
    if (ep.needsReset) throw new Error('PrecisionEnv.step: call reset() first (the episode is over or never started)');
    if (!this.actionSpace.contains(action)) throw new RangeError(`action ${action} is outside Discrete(${this.actionSpace.n})`);
    if (!this.maskOf(ep)[action]) {
      throw new RangeError(`action ${action} (${actionLabel(this.actions[action])}) is masked for layer ${this.layerNames[ep.t]}`);
    }
    ep.prefixMs += this.latencyTable.layerMs[ep.t][action];
    ep.taken.push(action);
    ep.t++;
    if (ep.t < this.layers.length) return undefined;
    ep.needsReset = true;
    this.episodes++;
    return this.policyFromActions(ep.taken);
  }

  /** The last step's result of a finished episode, from its measurement. */
  terminalStep(ep: EpisodeState, record: EvaluationRecord, cached: boolean): StepResult<Float32Array> {
    const info: Info = { actionMask: this.maskOf(ep), record, reward: record.reward, feasible: record.feasible, cached };
    return [this.observe(ep), record.trainingReward, true, false, info];
  }

  policyFromActions(actions: readonly number[]): LayerPolicy {
    if (actions.length !== this.layers.length) throw new RangeError(`expected ${this.layers.length} actions, got ${actions.length}`);
    const policy: LayerPolicy = {};
    actions.forEach((a, i) => {
      const o = this.actions[a];
      if (!o) throw new RangeError(`action ${a} is outside Discrete(${this.actions.length})`);
      policy[this.layerNames[i]] = o.calibration ? { precision: o.precision, calibration: o.calibration } : { precision: o.precision };
    });
    return policy;
  }

  /** Action indices that reproduce a policy; throws when a layer's decision is not in the action set. */
  actionsFromPolicy(policy: LayerPolicy): number[] {
    return this.layerNames.map((name) => {
      const d = policy[name];
      if (!d) throw new RangeError(`policy has no decision for layer ${name}`);
      const label = actionLabel(d);
      const a = this.actions.findIndex((o) => actionLabel(o) === label);
      if (a < 0) throw new RangeError(`layer ${name}: ${label} is not in the action set (${this.actions.map(actionLabel).join(', ')})`);
      return a;
    });
  }

  /** Actions of a uniform policy (e.g. all-int8), or undefined when that precision is not an action. */
  uniformActions(precision: Precision): number[] | undefined {
    const a = this.actions.findIndex((o) => o.precision === precision && !o.calibration);
    return a < 0 ? undefined : this.layers.map(() => a);
  }

  /** Statically legal actions of layer i (the budget mask aside). */
  allowedActions(i: number): number[] {
    return this.staticMask[i].flatMap((ok, a) => (ok ? [a] : []));
  }

  /** Exact latency of a policy from the latency model (cached; precision decides latency, calibration does not). */
  async latencyOf(policy: LayerPolicy): Promise<number> {
    const key = this.layerNames.map((n) => policy[n]?.precision ?? 'fp32').join('|');
    let ms = this.latencyCache.get(key);
    if (ms === undefined) {
      ms = (await this.o.latency.estimate(policy)).totalMs;
      this.latencyCache.set(key, ms);
    }
    return ms;
  }

  /** Lower bound of a (partial) policy's latency used by the mask: committed layers + fastest rest. */
  latencyLowerBound(actions: readonly number[]): number {
    let ms = this.latencyTable.otherMs + this.latencyTable.minSuffixMs[actions.length];
    actions.forEach((a, i) => (ms += this.latencyTable.layerMs[i][a]));
    return ms;
  }

  /**
   * Measures a complete policy through the cache: what `step` does at the end of an episode, and what
   * baseline agents that reason about whole policies call directly. Concurrent requests for one policy
   * share one measurement. A policy over the latency budget is priced but not scored, unless
   * `evenOverBudget` asks for its score anyway (sensitivity probes, Polygraphy-style accuracy checks).
   * `confirm` scores it on the full data whatever screening and the budget would decide (the ladder's safe end).
   */
  async evaluatePolicy(policy: LayerPolicy, opts: MeasureOptions = {}): Promise<EvaluationRecord> {
    return (await this.evaluateRound([policy], opts))[0];
  }

  /**
   * Measures several complete policies as one round (Gymnasium's vector step): the evaluator's jobs of the round run
   * concurrently and their results are consumed in proposal order, so the records, their evaluation ordinals and the
   * history are the same however many workers score them and however long each takes. With screening, all new
   * policies are screened at once, then confirmed (on the full data, at once) in order against the contenders known
   * at the start of the round plus the round's earlier subset rewards; refutations on the full data take effect at
   * the end of the round. A round of one is exactly one sequential measurement. Each policy costs at most one full
   * evaluation, so a round no wider than the evaluations left never overspends a budget.
   */
  evaluateRound(policies: readonly LayerPolicy[], opts: MeasureOptions = {}): Promise<EvaluationRecord[]> {
    const evenOverBudget = opts.evenOverBudget === true || opts.confirm === true;
    const confirm = opts.confirm === true;
    // Per proposal: a known record, a measurement already under way, or a slot of this round's fresh policies.
    const answers: (EvaluationRecord | Promise<EvaluationRecord> | number)[] = [];
    const fresh: { key: string; policy: LayerPolicy; screened?: number }[] = [];
    const freshSlot = new Map<string, number>();
    for (const policy of policies) {
      const key = policyKey(this.layerNames, policy);
      const cached = this.ledger.get(key);
      const upgrade = cached !== undefined && ((!cached.scored && evenOverBudget) || (!cached.confirmed && confirm));
      const pending = this.pending.get(key);
      const again = freshSlot.get(key);
      if (again !== undefined || (cached && !upgrade) || (pending && !upgrade)) {
        this.ledger.stats.cacheHits++;
        answers.push(again ?? (cached && !upgrade ? cached : pending!));
        continue;
      }
      freshSlot.set(key, fresh.length);
      answers.push(fresh.length);
      fresh.push({ key, policy, screened: cached?.subsetScore });
    }
    const round = fresh.length === 0 ? Promise.resolve([]) : this.measureRound(fresh, evenOverBudget, confirm);
    fresh.forEach((f, i) => {
      const p = round.then((rs) => rs[i]).finally(() => this.pending.delete(f.key));
      // Awaited by this call and by later requests for the same policy; a failed round is reported through them.
      p.catch(() => {});
      this.pending.set(f.key, p);
    });
    const slots = answers.map((a) => (typeof a === 'number' ? round.then((rs) => rs[a]) : Promise.resolve(a)));
    return Promise.all(slots);
  }

  /** Fills the cache from an earlier run's history; restored policies cost no evaluation. */
  restore(measurements: readonly RestoredMeasurement[]): void {
    for (const m of measurements) {
      const key = policyKey(this.layerNames, m.policy);
      const actions = this.actionsFromPolicy(m.policy);
      const confirmed = m.score !== undefined && Number.isFinite(m.score);
      const score = confirmed ? m.score! : m.subsetScore;
      const rec = this.makeRecord(key, m.policy, actions, m.latencyMs, score, confirmed, 0, 0, m.dropBound);
      if (m.subsetScore !== undefined) {
        rec.subsetScore = m.subsetScore;
        if (!confirmed || rec.feasible) this.contenders.set(key, rec.reward);
      }
      this.ledger.put(rec, { restored: true });
    }
  }

  private async measureRound(fresh: readonly { key: string; policy: LayerPolicy; screened?: number }[], evenOverBudget: boolean, confirm: boolean): Promise<EvaluationRecord[]> {
    const started = performance.now();
    const stats = this.ledger.stats;
    const items = [];
    for (const f of fresh) {
      const actions = this.actionsFromPolicy(f.policy);
      const latencyMs = await this.latencyOf(f.policy);
      const overBudget = latencyMs > this.constraints.budgetMs * (1 + 1e-9);
      items.push({ ...f, actions, latencyMs, scoreIt: !(overBudget && !this.o.scoreOverBudget && !evenOverBudget) });
    }
    const screen = this.subset !== undefined && !confirm;
    const first = await Promise.all(items.map((it) => (it.scoreIt ? this.o.evaluator.evaluate(it.policy, screen ? { subset: true } : {}) : undefined)));
    // In proposal order: which screened policies are confirmed on the full data.
    const screenedRecords: (EvaluationRecord | undefined)[] = items.map(() => undefined);
    const confirmIt = items.map(() => false);
    if (screen) {
      items.forEach((it, i) => {
        if (!it.scoreIt) return;
        const subsetScore = first[i]!.score;
        stats.subsetEvaluations++;
        const r = this.makeRecord(it.key, it.policy, it.actions, it.latencyMs, subsetScore, false, 0, started);
        r.subsetScore = subsetScore;
        screenedRecords[i] = r;
        confirmIt[i] = this.shouldConfirm(r);
      });
    }
    const full = screen ? await Promise.all(items.map((it, i) => (confirmIt[i] ? this.o.evaluator.evaluate(it.policy) : undefined))) : first;
    const records = items.map((it, i) => {
      let record: EvaluationRecord;
      if (!it.scoreIt) {
        stats.skippedOverBudget++;
        record = this.makeRecord(it.key, it.policy, it.actions, it.latencyMs, undefined, false, 0, started);
      } else if (screen && !confirmIt[i]) {
        record = screenedRecords[i]!;
      } else {
        const { score, dropBound } = full[i]!;
        stats.evaluations++;
        record = this.makeRecord(it.key, it.policy, it.actions, it.latencyMs, score, true, stats.evaluations, started, dropBound);
        const subsetScore = screen ? screenedRecords[i]!.subsetScore : it.screened;
        if (subsetScore !== undefined) record.subsetScore = subsetScore;
        // Refuted on the full data: it no longer crowds out later candidates.
        if (!record.feasible) this.contenders.delete(it.key);
      }
      this.ledger.put(record);
      this.o.onEvaluation?.(record);
      return record;
    });
    return records;
  }

  /**
   * Confirm a screened policy on the full data when it is within the budget, not hopeless on the
   * subset, and among the top K subset rewards of the policies still in contention (those not yet
   * refuted on the full data): the few candidates that could become best.
   */
  private shouldConfirm(r: EvaluationRecord): boolean {
    const s = this.subset!;
    if (r.violations.latency > 0) return false;
    const drop = -r.dAcc;
    if (Number.isFinite(this.constraints.maxDrop) && drop > this.constraints.maxDrop + s.floorMargin) return false;
    this.contenders.set(r.key, r.reward);
    let better = 0;
    for (const x of this.contenders.values()) if (x > r.reward) better++;
    return better < s.confirmTopK;
  }

  private makeRecord(
    key: string,
    policy: LayerPolicy,
    actions: number[],
    latencyMs: number,
    score: number | undefined,
    confirmed: boolean,
    evaluation: number,
    started: number,
    dropBound?: number,
  ): EvaluationRecord {
    const dLat = latencyChange(latencyMs, this.fp16LatencyMs);
    const scored = score !== undefined;
    const ref = confirmed ? this.fp32Score : (this.fp32SubsetScore ?? this.fp32Score);
    const dAcc = scored ? accuracyChange(score, ref, this.higherIsBetter) : NaN;
    const reward = scored ? this.weights.wAcc * dAcc - this.weights.wLat * dLat : NaN;
    // An unscored policy is over budget; pay it as if its accuracy were perfect, minus the penalty. With a drop bound
    // (--confidence) the floor must hold for the bound, while the reward stays on the point estimate.
    const bounded = confirmed && dropBound !== undefined;
    const violations = constraintViolations(latencyMs, scored ? (bounded ? -dropBound : dAcc) : 0, this.constraints);
    return {
      key,
      policy,
      actions,
      score: confirmed ? score! : NaN,
      confirmed,
      scored,
      ...(bounded ? { dropBound } : {}),
      latencyMs,
      reward,
      dAcc,
      dLat,
      trainingReward: trainingReward(scored ? reward : -this.weights.wLat * dLat, violations, this.o.infeasiblePenalty ?? 0.2),
      feasible: scored && isFeasible(violations),
      violations,
      evaluation,
      seconds: started > 0 ? (performance.now() - started) / 1000 : 0,
    };
  }

  private budgetReachable(): boolean {
    return this.latencyTable.otherMs + this.latencyTable.minSuffixMs[0] <= this.constraints.budgetMs * (1 + 1e-9);
  }

  private observe(ep: EpisodeState): Float32Array {
    const budgetLeft = Number.isFinite(this.constraints.budgetMs)
      ? (this.constraints.budgetMs - (ep.prefixMs + this.latencyTable.otherMs + this.latencyTable.minSuffixMs[ep.t])) / this.fp16LatencyMs
      : 1;
    return this.encoder.encode(ep.t, ep.taken, budgetLeft);
  }
}
