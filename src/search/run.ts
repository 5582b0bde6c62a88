/**
 * One search, top to bottom: the experiment (model, data, calibration, evaluator), the latency model, the
 * sensitivity analysis, the PrecisionEnv and the agent; every measured policy appended to history.jsonl, the best
 * feasible policy saved atomically whenever it improves, exports, the ladder of policies (pareto/) and report.html at
 * the end (grafana-dashboard.json too, or at the start with --metrics-port).
 *
 * Interrupting (SIGINT) stops at the next evaluation: the best policy is already on disk, history.jsonl holds every
 * measurement, and checkpoint.json marks the run interrupted. `--resume` replays the run deterministically from the
 * seed, answering every evaluation already in history.jsonl from it (no onnxruntime work), so the resumed run passes
 * through exactly the states of an uninterrupted one and ends at the same policy.
 *
 * At the end the best policy is scored once on the held-out test samples, which no choice has seen; policy.json gets
 * those figures beside the search split's, each with its bootstrap interval.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic, appendFileChecked } from '../fs.ts';
import { DEFAULT_ACTIONS, policyKey, uniformPolicy, readsInt8, type LayerPolicy, type PolicyFile } from '../policy.ts';
import { prepareExperiment, type Experiment, type ExperimentUi } from '../cli/experiment.ts';
import { createLatencyModel, parseTarget } from '../latency/index.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { LatencyModel } from '../latency/types.ts';
import { cachedAnalysis, loadAnalysis, analysisJson, analysisMarkdown, analysisMetrics, type Analysis } from '../analysis/index.ts';
import { resolveAmax } from '../quant/simulate.ts';
import { int8Exclusion, DEFAULT_OTHER_OPS } from '../quant/placement.ts';
import { choiceLabel } from '../quant/calibrate.ts';
import { policyJson, sha256Hex } from '../export/policy-file.ts';
import { searchDataRecord } from '../export/replay.ts';
import { writeExports, type ExportInputs } from '../export/index.ts';
import type { BiasCorrector, BiasCorrectionRecord } from '../quant/bias-correction.ts';
import { measureSafeEnd, writeParetoLadder, type LadderStep } from './pareto.ts';
import { renderSearchReport } from '../report/index.ts';
import type { SearchReportInput, HistoryPoint, BaselinePoint, HeldOutFigures } from '../report/types.ts';
import { PrecisionEnv } from '../../envs/precision-env.ts';
import { buildLatencyTable, type LatencyTable } from '../../envs/latency-table.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import type { PolicyEvaluator as EnvEvaluator } from '../../envs/types.ts';
import { createAgent, AGENT_NAMES, type SearchResult, type AgentOptions } from '../../agents/index.ts';
import { progress, searchProgress, workText } from '../cli/progress.ts';
import type { RunMetrics } from '../monitor/metrics.ts';
import { grafanaDashboardJson } from '../monitor/grafana.ts';
import { breaksFloor } from '../cli/figures.ts';
import type { ScoreFigures } from '../quant/evaluator.ts';
import type { EvaluationBackend } from '../parallel/types.ts';
import { openBackend, autoJobs } from '../parallel/index.ts';
import { workerSetup } from '../parallel/setup.ts';
import { parseWorkers, parseDuration, parseConfidence, defaultRunDir, searchActions, parseLayerCalibration, DEFAULT_EPISODES, DEFAULT_LADDER_STEPS, DEFAULT_LAYER_CALIBRATION, DEFAULT_TIME_LIMIT, type SearchArgs } from './options.ts';
export { DEFAULT_EPISODES, DEFAULT_TIME_LIMIT } from './options.ts';

const AGENTS_WITH_SENSITIVITY = new Set(['dqn', 'rules', 'knapsack', 'greedy']);

/** Thrown from inside an evaluation once the user interrupted; the runner catches it and saves. */
export class SearchInterrupted extends Error {
  constructor() {
    super('search interrupted');
  }
}

/** One line of history.jsonl. Timing fields (`seconds`, `wallSeconds`) aside, a seed reproduces it exactly. */
export interface HistoryLine {
  n: number;
  agent: string;
  episode: number;
  evaluation: number;
  key: string;
  precisions: string[];
  score: number | null;
  subsetScore: number | null;
  confirmed: boolean;
  /** With --confidence: the drop bound the floor was checked against (null otherwise). */
  dropBound?: number | null;
  latencyMs: number;
  reward: number | null;
  feasible: boolean;
  seconds: number;
  wallSeconds: number;
}

/** What a run is: the options that decide its result. --resume refuses a folder made with other ones. */
export function runConfig(args: SearchArgs, agent: string): Record<string, unknown> {
  return {
    model: args.model ?? 'builtin:ppocr-rec', data: args.data ?? null, labels: args.labels ?? null, metric: args.metric ?? null,
    inputShape: args['input-shape'] ?? null, target: args.target ?? 't4', budgetMs: args['budget-ms'] ?? null, budget: args.budget ?? null,
    maxDrop: args['max-drop'] ?? 0.01, agent, episodes: args.episodes ?? null, maxEvaluations: args['max-evaluations'] ?? null,
    calibSamples: args['calib-samples'] ?? null, evalSamples: args['eval-samples'] ?? null, calibration: args.calibration ?? 'percentile',
    percentile: args.percentile ?? 99.99, screenSamples: args['screen-samples'] ?? 64, wAcc: args['w-acc'] ?? 0.6, wLat: args['w-lat'] ?? 0.4,
    analysis: args.analysis ?? null, analysisSamples: args['analysis-samples'] ?? 64, batchSize: args['batch-size'] ?? 16, seed: args.seed ?? 0,
    layerCalibration: args['layer-calibration'] ?? DEFAULT_LAYER_CALIBRATION,
    confidence: args.confidence ?? null, testSamples: args['test-samples'] ?? null, testData: args['test-data'] ?? null, testLabels: args['test-labels'] ?? null,
    otherOps: args['other-ops'] ?? DEFAULT_OTHER_OPS,
    // Only when on, so that folders from before --bias-correction still resume.
    ...(args['bias-correction'] ? { biasCorrection: { passes: args['bias-passes'] ?? 1 } } : {}),
    // The round width decides the result (the workers do not); recorded only when not 1, as above.
    ...((args.proposals ?? 1) !== 1 ? { proposals: args.proposals } : {}),
  };
}

interface Checkpoint {
  version: 1;
  status: 'running' | 'interrupted' | 'done';
  config: Record<string, unknown>;
  startedAt: string;
  updatedAt: string;
  measurements: number;
  bestKey?: string;
}

function readHistory(path: string): HistoryLine[] {
  return readJsonLines<HistoryLine>(path);
}

function readJsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const out: T[] = [];
  for (const [i, l] of lines.entries()) {
    try {
      out.push(JSON.parse(l) as T);
    } catch {
      // A line cut short by a kill mid-write is the last one; everything before it is whole.
      if (i === lines.length - 1) break;
      throw new UserError(`${path} line ${i + 1} is not JSON; the run folder is damaged — start a new search with another --out`);
    }
  }
  return out;
}

/**
 * Where the search's evaluations run: in this process (one at a time), on --jobs worker threads, or through --queue.
 * --jobs defaults to what the cores and memory allow, never more than the round's --proposals (more could not be used).
 */
export async function openSearchBackend(args: SearchArgs, setup: SearchSetup, proposals: number, ui: ExperimentUi): Promise<EvaluationBackend | undefined> {
  let jobs: number;
  if (args.jobs !== undefined) jobs = parseWorkers('jobs', args.jobs, 1);
  else {
    const auto = autoJobs({ proposals, modelBytes: statSync(setup.exp.loaded.path).size });
    jobs = auto.jobs;
    if (jobs > 1 && !args.queue) ui.log(`note: --jobs ${jobs} (${auto.why})`);
  }
  if (jobs <= 1 && !args.queue) return undefined;
  const { evaluator } = setup;
  return openBackend({ jobs, queue: args.queue, setup: workerSetup(setup.exp, { screenSamples: evaluator.screenSamples, confidence: evaluator.confidence }), log: ui.log });
}

/**
 * The evaluator the environment sees: screening subset, replay of recorded scores on --resume, interruption, and
 * with --confidence the drop bound of every full evaluation.
 */
class RunEvaluator implements EnvEvaluator {
  readonly recorded = new Map<string, { score: number; dropBound?: number }>();
  interrupted = false;
  /** Where jobs go (--jobs N > 1, --queue); absent: scored in this process, one at a time. */
  backend?: EvaluationBackend;
  /** Called with every score computed (not replayed): scores.jsonl, so that an interrupted round is replayed. */
  onScore?: (key: string, result: { score: number; dropBound?: number }) => void;
  /** Jobs running now, jobs finished, and the workers' seconds on them (throughput for the progress line and the report). */
  readonly work = { running: 0, done: 0, seconds: 0 };
  private queue: Promise<unknown> = Promise.resolve();
  constructor(private readonly exp: Experiment, private readonly layerNames: string[], readonly screenSamples: number, readonly confidence?: number) {}
  get fp32Score(): number { return this.exp.evaluator.fp32Score; }
  get higherIsBetter(): boolean { return this.exp.evaluator.higherIsBetter; }
  async evaluate(policy: LayerPolicy, opts: { subset?: boolean } = {}): Promise<{ score: number; dropBound?: number }> {
    const key = `${opts.subset ? 'subset' : 'full'}#${policyKey(this.layerNames, policy)}`;
    const known = this.recorded.get(key);
    if (known !== undefined) return known;
    if (this.interrupted) throw new SearchInterrupted();
    const t0 = performance.now();
    const result = this.backend
      ? await this.counted(() => this.backend!.score({ policy, subset: opts.subset === true }))
      : await this.inTurn(() => this.counted(() => this.inProcess(policy, opts.subset === true)));
    this.work.seconds += 'seconds' in result ? (result as { seconds: number }).seconds : (performance.now() - t0) / 1000;
    const kept = { score: result.score, ...(result.dropBound !== undefined ? { dropBound: result.dropBound } : {}) };
    this.recorded.set(key, kept);
    this.onScore?.(key, kept);
    return kept;
  }
  private async inProcess(policy: LayerPolicy, subset: boolean): Promise<{ score: number; dropBound?: number }> {
    if (subset) return { score: (await this.exp.evaluator.evaluate(policy, { samples: this.screenSamples })).score };
    if (this.confidence === undefined) return { score: (await this.exp.evaluator.evaluate(policy)).score };
    const f = await this.exp.evaluator.figures(policy, { confidence: this.confidence });
    return { score: f.score, dropBound: f.dropBound };
  }
  private async counted<T>(f: () => Promise<T>): Promise<T> {
    this.work.running++;
    try {
      return await f();
    } finally {
      this.work.running--;
      this.work.done++;
    }
  }
  /** In process, jobs run one after another (a round's concurrency is the workers'); an interrupt stops the queue. */
  private inTurn<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.interrupted) throw new SearchInterrupted();
      return f();
    });
    this.queue = next.catch(() => {});
    return next;
  }
  remember(line: HistoryLine): void {
    if (line.subsetScore !== null) this.recorded.set(`subset#${line.key}`, { score: line.subsetScore });
    if (line.confirmed && line.score !== null) {
      this.recorded.set(`full#${line.key}`, { score: line.score, ...(typeof line.dropBound === 'number' ? { dropBound: line.dropBound } : {}) });
    }
  }
  /** A line of scores.jsonl (a score computed in a round that an interrupt cut short). */
  rememberScore(line: ScoreLine): void {
    this.recorded.set(line.job, { score: line.score, ...(typeof line.dropBound === 'number' ? { dropBound: line.dropBound } : {}) });
  }
}

/** One line of scores.jsonl: every score the workers computed, by job (`subset#KEY` / `full#KEY`). */
export interface ScoreLine {
  job: string;
  score: number;
  dropBound?: number;
}

export interface SearchSetup {
  exp: Experiment;
  latency: LatencyModel;
  analysis?: Analysis;
  env: PrecisionEnv;
  evaluator: RunEvaluator;
  /** Set by the runner: called once per new measurement (the environment's onEvaluation). */
  hooks: { onEvaluation: (r: EvaluationRecord) => void };
}

/** Builds experiment, latency model, analysis and environment for one agent's search. */
export async function setupSearch(args: SearchArgs, agent: string, ui: ExperimentUi & { analysisFile?: string; monitor?: RunMetrics }, exp?: Experiment): Promise<SearchSetup> {
  if (args.agent !== undefined && !AGENT_NAMES.includes(agent as (typeof AGENT_NAMES)[number])) {
    throw new UserError(`unknown --agent "${agent}"; choose one of ${AGENT_NAMES.join(', ')}`);
  }
  parseTarget(args.target ?? 't4'); // an unknown target is refused before calibration, not after
  const layerCalibration = parseLayerCalibration(args['layer-calibration']);
  const confidence = parseConfidence(args.confidence);
  exp ??= await prepareExperiment(args, ui);
  const { loaded } = exp;
  const latency = await createLatencyModel(args.target ?? 't4', loaded.layers, { model: loaded.model, graph: loaded.graph, inputShapes: loaded.inputShapes, simulation: exp.base });
  await checkBudgetReachable(args, loaded.layers, latency);
  let analysis: Analysis | undefined;
  const analysisFile = args.analysis ?? ui.analysisFile;
  if (analysisFile) {
    analysis = loadAnalysis(analysisFile);
    const names = new Set(loaded.layers.map((l) => l.name));
    if (analysis.layers.length !== loaded.layers.length || analysis.layers.some((l) => !names.has(l.name))) {
      throw new UserError(`--analysis ${analysisFile} was made for another model (its layers differ); run trtmix analyze on this model`);
    }
  } else if (AGENTS_WITH_SENSITIVITY.has(agent)) {
    const bar = progress('sensitivity analysis', { total: 2 * loaded.layers.length, quiet: ui.quiet });
    const layerByName = new Map(loaded.layers.map((l) => [l.name, l]));
    analysis = await cachedAnalysis(exp, { samples: args['analysis-samples'] ?? 64, onProgress: (p) => { bar.update(p.done, p.layer); ui.monitor?.analysisLayer(layerByName.get(p.layer)!, p.measured); } });
    bar.finish(`${loaded.layers.length} layers`);
  }
  const layerNames = loaded.layers.map((l) => l.name);
  const screen = args['screen-samples'] ?? 64;
  if (!Number.isInteger(screen) || screen < 0) throw new UserError(`--screen-samples must be a whole number >= 0, got ${screen}`);
  const evaluator = new RunEvaluator(exp, layerNames, screen, confidence);
  const byName = new Map(analysis?.layers.map((l) => [l.name, l]));
  const sensitivity = analysis
    ? loaded.layers.map((l) => {
        const a = byName.get(l.name)!;
        return { int8Drop: a.int8Drop, leaveOneOutDrop: a.leaveOneOutDrop, kl: a.kl, histogramOverlap: a.histogramOverlap, outlierFraction: a.outlierFraction, rangeWaste: a.rangeWaste, sqnrDb: a.sqnrDb };
      })
    : undefined;
  const hooks = { onEvaluation: (_r: EvaluationRecord) => {} };
  const env = await PrecisionEnv.create({
    onEvaluation: (r) => hooks.onEvaluation(r),
    layers: loaded.layers,
    actions: searchActions(layerCalibration, exp.defaultCalibration),
    // Layers TensorRT does not run faster in INT8 (small GEMMs/convs, GEMVs) are not offered INT8 (src/quant/placement.ts).
    allowAction: (layer, option) => !readsInt8(option.precision) || int8Exclusion(layer, loaded.graph) === undefined,
    evaluator,
    latency,
    sensitivity,
    budgetMs: args['budget-ms'],
    budget: args.budget,
    maxDrop: args['max-drop'] ?? 0.01,
    weights: { wAcc: args['w-acc'] ?? 0.6, wLat: args['w-lat'] ?? 0.4 },
    subset: screen > 0 && screen < exp.split.eval.count ? { confirmTopK: 5, floorMargin: 0.01 } : false,
  });
  const infeasible = infeasibleBudget(env.constraints.budgetMs, env.latencyTable, args.target ?? 't4');
  if (infeasible) throw infeasible;
  return { exp, latency, analysis, env, evaluator, hooks };
}

/**
 * A budget no policy can meet is the user's to fix. Checked before the sensitivity analysis (minutes on a real model)
 * with the environment's default action set and the same lower bound its masking uses (reformats left out), so a
 * budget some policy meets is never refused.
 */
async function checkBudgetReachable(args: SearchArgs, layers: readonly Layer[], latency: LatencyModel): Promise<void> {
  if (args['budget-ms'] !== undefined && args.budget !== undefined) {
    throw new UserError('give either --budget-ms (milliseconds) or --budget (fraction of all-FP16 latency), not both');
  }
  if (args['budget-ms'] === undefined && args.budget === undefined) return;
  const actions = DEFAULT_ACTIONS.map((precision) => ({ precision }));
  const table = await buildLatencyTable(layers, actions, latency, layers.map(() => actions.map(() => true)));
  const budgetMs = args['budget-ms'] ?? args.budget! * table.fp16TotalMs;
  if (!(budgetMs > 0)) return; // PrecisionEnv names the bad value
  const infeasible = infeasibleBudget(budgetMs, table, args.target ?? 't4');
  if (infeasible) throw infeasible;
}

function infeasibleBudget(budgetMs: number, table: LatencyTable, target: string): UserError | undefined {
  const fastest = table.otherMs + table.minSuffixMs[0];
  if (!(fastest > budgetMs * (1 + 1e-9))) return undefined;
  // Rounded up, so that the suggested value is itself feasible.
  const up = (v: number) => (Math.ceil(v * 1000) / 1000).toFixed(3);
  const int8 = table.uniformTotalMs.int8;
  return new UserError(
    `the latency budget ${budgetMs.toFixed(3)} ms is infeasible on ${target}: no policy can be faster than ${up(fastest)} ms ` +
      `(all-INT8 ${int8 !== undefined ? `${int8.toFixed(3)} ms, ` : ''}all-FP16 ${table.fp16TotalMs.toFixed(3)} ms); ` +
      `use --budget-ms ${up(fastest)} or more (--budget ${(Math.ceil((100 * fastest) / table.fp16TotalMs) / 100).toFixed(2)})`,
  );
}

/**
 * Agent options that depend on the setup: with an analysis at hand, knapsack takes its per-layer drops from it
 * (as HAWQ-V3 and ModelOpt's auto_quantize take theirs from a sensitivity pass) instead of probing each layer.
 */
export function agentOptions(setup: SearchSetup): AgentOptions {
  return setup.analysis ? { knapsack: { dropFeatures: { int8: 'int8Drop', mixed: 'int8Drop' } } } : {};
}

/** The best policy's figures with intervals: on the search split (where it was chosen) and on the held-out test samples. */
export interface PolicyFigures {
  search: ScoreFigures;
  /** Absent when there is no test split (too little data, --test-samples 0). */
  test?: ScoreFigures;
}

/** Scores the chosen policy on the test samples (and takes its search-split intervals); the choice is already made. */
export async function policyFigures(exp: Experiment, policy: LayerPolicy, ui: { quiet?: boolean } = {}): Promise<PolicyFigures> {
  const search = await exp.evaluator.figures(policy);
  const testEvaluator = await exp.testEvaluator();
  if (!testEvaluator) return { search };
  const bar = progress('test split', { total: 1, quiet: ui.quiet });
  const test = await testEvaluator.figures(policy);
  bar.update(1);
  bar.finish(`${test.samples} held-out samples`);
  return { search, test };
}

/** policy.json's `metrics.test`: the figures and whether the drop on the held-out samples stays within the floor. */
export function testRecord(test: ScoreFigures, maxDrop: number): Record<string, unknown> {
  const { score, fp32Score, drop, samples, ci95, dropCi95 } = test;
  return { score, fp32Score, drop, samples, ci95, dropCi95, withinFloor: !breaksFloor(drop, maxDrop) };
}

/** policy.json for a measured record (with its intervals and test figures once the search has ended). */
export function policyFileOf(setup: SearchSetup, record: EvaluationRecord, meta: { agent: string; seed: number; evaluations: number; seconds: number; target: string; int8LatencyMs?: number }, figures?: PolicyFigures): PolicyFile {
  const { exp, env } = setup;
  const layers = exp.loaded.layers;
  const policy = record.policy;
  const amax = resolveAmax(exp.base, policy);
  const totalMacs = layers.reduce((a, l) => a + l.macs, 0);
  const int8Macs = layers.filter((l) => readsInt8(policy[l.name]?.precision ?? 'fp32')).reduce((a, l) => a + l.macs, 0);
  return {
    version: 1,
    model: { path: exp.loaded.path, sha256: sha256Hex(readFileSync(exp.loaded.path)) },
    layers: layers.map((l) => {
      const d = policy[l.name] ?? { precision: 'fp32' as const };
      return { name: l.name, op: l.op, precision: d.precision, macs: l.macs, ...(d.calibration ? { calibration: d.calibration } : {}) };
    }),
    calibration: { method: choiceLabel(exp.defaultCalibration), amax },
    ...(exp.base.otherOps ? { otherOps: exp.base.otherOps } : {}),
    ...(exp.biasCorrector ? { biasCorrection: biasCorrectionRecord(exp.biasCorrector, policy) } : {}),
    metrics: {
      score: record.score,
      fp32Score: env.fp32Score,
      drop: -record.dAcc,
      latencyMs: record.latencyMs,
      fp16LatencyMs: env.fp16LatencyMs,
      ...(meta.int8LatencyMs !== undefined ? { int8LatencyMs: meta.int8LatencyMs } : {}),
      reward: record.reward,
      int8MacsShare: totalMacs ? int8Macs / totalMacs : 0,
      metric: exp.metric.name,
      target: meta.target,
      ...(record.dropBound !== undefined ? { dropBound: record.dropBound } : {}),
      ...(figures ? { searchSamples: figures.search.samples, searchCi95: figures.search.ci95, searchDropCi95: figures.search.dropCi95 } : {}),
      ...(figures?.test ? { test: testRecord(figures.test, env.constraints.maxDrop) } : {}),
    },
    search: {
      agent: meta.agent,
      seed: meta.seed,
      evaluations: meta.evaluations,
      seconds: meta.seconds,
      budgetMs: Number.isFinite(env.constraints.budgetMs) ? env.constraints.budgetMs : null,
      maxDrop: env.constraints.maxDrop,
      confidence: setup.evaluator.confidence ?? null,
      data: searchDataRecord(exp),
      inputShapes: exp.loaded.inputShapes,
    },
  };
}

/** policy.json's `biasCorrection` of a policy whose corrections were measured (corrections() awaited first). */
function biasCorrectionRecord(corrector: BiasCorrector, policy: LayerPolicy): BiasCorrectionRecord {
  const corrections = corrector.cached(policy);
  if (!corrections) throw new Error('policyFileOf: the policy\'s bias corrections were not measured');
  return corrector.record(corrections);
}

/** The timing fields of policy.json; everything else is decided by the seed. */
export const POLICY_TIMING_FIELDS = ['search.seconds'];

export interface SearchOutcome {
  outDir: string;
  status: 'done' | 'interrupted';
  policy?: PolicyFile;
  /** The best policy's figures on the search and test samples (absent without a feasible policy). */
  figures?: PolicyFigures;
  result?: SearchResult;
  setup: SearchSetup;
  files: string[];
  /** pareto/index.json as written (a finished search). */
  ladder?: LadderStep[];
  /** Where the evaluations ran (`this process`, `2 worker threads`, `queue redis://...`). */
  workers: string;
}

export interface RunUi extends ExperimentUi {
  /** Called once the run can be interrupted cleanly (the SIGINT handler is the caller's). */
  onReady?: (interrupt: () => void) => void;
  /** The live metrics of --metrics-port. */
  monitor?: RunMetrics;
}

export async function runSearch(args: SearchArgs, ui: RunUi): Promise<SearchOutcome> {
  const agentName = args.agent ?? 'dqn';
  const outDir = args.out ?? defaultRunDir();
  const config = runConfig(args, agentName);
  const checkpointPath = join(outDir, 'checkpoint.json');
  const historyPath = join(outDir, 'history.jsonl');
  const ladderSteps = args['pareto-steps'] ?? DEFAULT_LADDER_STEPS;
  if (!Number.isInteger(ladderSteps) || ladderSteps < 2) throw new UserError(`--pareto-steps must be a whole number >= 2 (the fastest step and the all-FP16 end), got ${ladderSteps}`);
  let restored: HistoryLine[] = [];
  let startedAt = new Date().toISOString();
  if (args.resume) {
    if (!existsSync(checkpointPath)) throw new UserError(`--resume: ${outDir} has no checkpoint.json; pass the --out folder of the search to continue`);
    let cp: Checkpoint;
    try {
      cp = JSON.parse(readFileSync(checkpointPath, 'utf8')) as Checkpoint;
    } catch {
      throw new UserError(`--resume: ${checkpointPath} is not JSON; the run folder is damaged — start a new search with another --out`);
    }
    const diff = Object.keys(config).filter((k) => JSON.stringify(config[k]) !== JSON.stringify(cp.config[k]));
    if (diff.length > 0) throw new UserError(`--resume: ${outDir} was searched with other options (${diff.join(', ')}); resume with the same options or use another --out`);
    restored = readHistory(historyPath);
    startedAt = cp.startedAt;
  } else if (existsSync(checkpointPath)) {
    throw new UserError(`${outDir} already holds a search; continue it with --resume, or choose another --out`);
  }
  const createdOutDir = !existsSync(outDir);
  mkdirOrExplain(outDir);
  const writeCheckpoint = (status: Checkpoint['status'], measurements: number, bestKey?: string) =>
    writeFileAtomic(checkpointPath, `${JSON.stringify({ version: 1, status, config, startedAt, updatedAt: new Date().toISOString(), measurements, ...(bestKey ? { bestKey } : {}) } satisfies Checkpoint, null, 2)}\n`);

  // A resumed run reads the analysis it wrote instead of measuring it again.
  const savedAnalysis = join(outDir, 'analysis.json');
  let setup: SearchSetup;
  const proposals = parseWorkers('proposals', args.proposals, 1);
  if (args.jobs !== undefined) parseWorkers('jobs', args.jobs, 1); // refused before calibration, not after
  if (args.queue !== undefined) await checkQueue(args.queue);
  try {
    setup = await setupSearch(args, agentName, { ...ui, ...(args.resume && existsSync(savedAnalysis) ? { analysisFile: savedAnalysis } : {}) });
    setup.evaluator.backend = await openSearchBackend(args, setup, proposals, ui);
  } catch (e) {
    // Refused before any result (bad data, infeasible budget): no empty run folder left behind.
    if (createdOutDir) removeEmptyFolder(outDir);
    throw e;
  }
  // Only now: a search refused during setup (bad data, infeasible budget) must not leave a folder that "already holds a search".
  writeCheckpoint('running', restored.length);
  if (!args.resume) writeFileAtomic(historyPath, '');
  const dashboardPath = join(outDir, 'grafana-dashboard.json');
  const writeDashboard = () => writeFileAtomic(dashboardPath, grafanaDashboardJson());
  // With --metrics-port it is wanted while the search runs; otherwise it comes with the other outputs at the end.
  if (ui.monitor) writeDashboard();
  const { exp, env, evaluator } = setup;
  const workersText = evaluator.backend?.description ?? 'this process';
  for (const line of restored) evaluator.remember(line);
  // Scores of a round an interrupt cut short: replayed by --resume like the history.
  const scoresPath = join(outDir, 'scores.jsonl');
  if (args.resume) for (const line of readJsonLines<ScoreLine>(scoresPath)) evaluator.rememberScore(line);
  else writeFileAtomic(scoresPath, '');
  evaluator.onScore = (job, r) => appendFileChecked(scoresPath, `${JSON.stringify({ job, ...r } satisfies ScoreLine)}\n`);

  if (setup.analysis && !args.analysis && !existsSync(savedAnalysis)) {
    // The search's report.html carries the heatmap; the analysis adds its table and Prometheus metrics.
    writeFileAtomic(savedAnalysis, analysisJson(setup.analysis));
    writeFileAtomic(join(outDir, 'analysis.md'), analysisMarkdown(setup.analysis));
    writeFileAtomic(join(outDir, 'metrics.prom'), analysisMetrics(setup.analysis));
  }
  const names = exp.loaded.layers.map((l) => l.name);
  const int8Latency = await env.latencyOf(uniformPolicy(names, 'int8'));
  const timeLimitMs = parseDuration(args['time-limit'] ?? DEFAULT_TIME_LIMIT);
  const episodes = args.episodes ?? DEFAULT_EPISODES;
  const started = performance.now();
  let measured = 0;
  let episode = 0;
  let bestKey: string | undefined;
  const target = args.target ?? 't4';
  // The bar counts measurements run (full evaluations + screening runs), so its ETA means something for every agent;
  // only a DQN search without --max-evaluations counts episodes (random's episodes are its runs and cache hits).
  const byEpisodes = agentName === 'dqn' && args['max-evaluations'] === undefined;
  const fallbackTotal = agentName === 'random' ? episodes : undefined;
  const stats0 = { evaluations: env.stats.evaluations, subsetEvaluations: env.stats.subsetEvaluations };
  const work = () => ({ evaluations: env.stats.evaluations - stats0.evaluations, screeningRuns: env.stats.subsetEvaluations - stats0.subsetEvaluations });
  const bar = progress(`search (${agentName})`, { total: byEpisodes ? episodes : (args['max-evaluations'] ?? fallbackTotal), timeLimitMs, quiet: ui.quiet });
  const updateBar = (status: string) => {
    if (byEpisodes) return bar.status(status);
    const p = searchProgress({ ...work(), maxEvaluations: args['max-evaluations'] });
    bar.setTotal(p.total ?? fallbackTotal);
    bar.update(p.done, status);
  };

  // The agent's choice; once it has finished, the ladder's own measurement (all-FP16) never replaces it.
  let chosen: { record: EvaluationRecord | undefined } | undefined;
  const chosenRecord = () => (chosen ? chosen.record : env.best);
  let bestMeta: Parameters<typeof policyFileOf>[2] | undefined;
  const writePolicy = (best: EvaluationRecord, figures?: PolicyFigures) =>
    writeFileAtomic(join(outDir, 'policy.json'), policyJson(policyFileOf(setup, best, bestMeta!, figures)));
  const savePolicy = () => {
    const best = chosenRecord();
    if (!best || best.key === bestKey) return;
    // A record restored by --resume has no measured corrections yet; the policy is written once they are.
    if (exp.biasCorrector && !exp.biasCorrector.cached(best.policy)) return;
    bestKey = best.key;
    bestMeta = { agent: agentName, seed: exp.seed, evaluations: env.stats.evaluations, seconds: (performance.now() - started) / 1000, target, int8LatencyMs: int8Latency };
    writePolicy(best);
  };
  setup.hooks.onEvaluation = (r: EvaluationRecord) => {
    measured++;
    if (measured > restored.length) {
      const line: HistoryLine = {
        n: measured, agent: agentName, episode, evaluation: r.evaluation, key: r.key,
        precisions: names.map((n) => r.policy[n]?.precision ?? 'fp32'),
        score: r.confirmed ? r.score : null, subsetScore: r.subsetScore ?? null, confirmed: r.confirmed, dropBound: r.dropBound ?? null,
        latencyMs: r.latencyMs, reward: Number.isFinite(r.reward) ? r.reward : null, feasible: r.feasible,
        seconds: r.seconds, wallSeconds: (performance.now() - started) / 1000,
      };
      appendFileChecked(historyPath, `${JSON.stringify(line)}\n`);
    }
    savePolicy();
    const best = chosenRecord();
    const w = work();
    const workers = proposals > 1 || evaluator.backend ? ` · ${roundText(proposals, evaluator.backend)}` : '';
    updateBar(best ? `best ${best.score.toFixed(4)} @ ${best.latencyMs.toFixed(3)} ms · ${workText(w.evaluations, w.screeningRuns)}${workers}` : `${workText(w.evaluations, w.screeningRuns)}, nothing feasible yet${workers}`);
  };
  ui.monitor?.watchSearch(setup, agentName, target);
  ui.onReady?.(() => { evaluator.interrupted = true; });

  const agent = createAgent(agentName, {
    ...agentOptions(setup),
    seed: exp.seed,
    dqn: { episodes, onEpisode: (log) => { episode = log.episode; if (byEpisodes) bar.update(log.episode); } },
  });
  let result: SearchResult | undefined;
  let status: SearchOutcome['status'] = 'done';
  let safeEnd: EvaluationRecord | undefined;
  try {
    result = await agent.search(env, { episodes, maxEvaluations: args['max-evaluations'], timeLimitMs, proposals });
    chosen = { record: env.best };
    safeEnd = await measureSafeEnd(env);
  } catch (e) {
    if (!(e instanceof SearchInterrupted)) throw e;
    status = 'interrupted';
  } finally {
    (agent as { dispose?: () => void }).dispose?.();
    await evaluator.backend?.close();
    evaluator.backend = undefined;
  }
  const best = chosenRecord();
  bar.finish(best ? `best ${best.score.toFixed(4)} @ ${best.latencyMs.toFixed(3)} ms` : 'no feasible policy');
  // The agent's own account: where it started, and why it stopped with evaluations left.
  if (!ui.quiet) for (const note of result?.notes ?? []) ui.log(`  ${agentName}: ${note}`);
  savePolicy();
  if (!ui.monitor) writeDashboard();
  const files = [join(outDir, 'history.jsonl'), checkpointPath, dashboardPath];
  let policy: PolicyFile | undefined;
  let figures: PolicyFigures | undefined;
  if (best) {
    figures = await policyFigures(exp, best.policy, ui);
    await exp.biasCorrector?.corrections(best.policy);
    writePolicy(best, figures);
  }
  writeCheckpoint(status, measured, bestKey);
  const exportInputs = (p: PolicyFile): ExportInputs => ({
    policy: p, layers: exp.loaded.layers, graph: exp.loaded.graph,
    model: { path: exp.loaded.path, sha256: p.model.sha256 }, inputShapes: exp.loaded.inputShapes,
  });
  if (best) {
    policy = JSON.parse(readFileSync(join(outDir, 'policy.json'), 'utf8')) as PolicyFile;
    files.push(join(outDir, 'policy.json'));
    if (status === 'done') {
      const exported = writeExports(outDir, exportInputs(policy));
      files.push(...exported.files);
      for (const w of exported.warnings) ui.log(`export: ${w}`);
    }
  }
  let ladder: LadderStep[] | undefined;
  if (status === 'done' && safeEnd) {
    const meta = { agent: agentName, seed: exp.seed, evaluations: env.stats.evaluations, seconds: (performance.now() - started) / 1000, target, int8LatencyMs: int8Latency };
    if (exp.biasCorrector) for (const r of [...env.records(), safeEnd]) if (r.confirmed && r.feasible) await exp.biasCorrector.corrections(r.policy);
    const written = writeParetoLadder(outDir, {
      records: env.records(), safeEnd, chosen: best && policy ? { key: best.key, policy } : undefined, higherIsBetter: env.higherIsBetter,
      maxSteps: ladderSteps, policyFile: (r) => policyFileOf(setup, r, meta), exportInputs,
    });
    ladder = written.steps;
    files.push(written.index);
  }
  const w = work();
  const throughput = result ? { ...w, wallSeconds: result.seconds, workerSeconds: evaluator.work.seconds, proposals, workers: workersText } : undefined;
  const report = await renderSearchReport({ ...reportInput(setup, agentName, policy, readHistory(historyPath), int8Latency, target), ...(ladder ? { ladder } : {}), ...(throughput ? { throughput } : {}) }, outDir, { png: false });
  files.push(report.html);
  return { outDir, status, policy, figures, result, setup, files, ladder, workers: workersText };
}

/** An unreachable or malformed --queue is found out before minutes of calibration and analysis. */
export async function checkQueue(url: string): Promise<void> {
  const { parseQueueUrl, probe } = await import('../parallel/queue.ts');
  parseQueueUrl(url);
  await probe(url);
}

/** `4 at once on 2 worker threads`: the round width and where its evaluations run. */
export function roundText(proposals: number, backend: EvaluationBackend | undefined): string {
  return `${proposals} at once on ${backend ? backend.description : 'this process'}`;
}

function removeEmptyFolder(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, or already gone: nothing to tidy
  }
}

function mkdirOrExplain(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot create the output folder ${dir} (${code}); choose a writable --out`);
  }
  // Found out now, not after minutes of calibration and analysis.
  const probe = join(dir, `.trtmix-write-test.${process.pid}`);
  try {
    writeFileAtomic(probe, '');
  } catch (e) {
    const code = (e as { cause?: NodeJS.ErrnoException }).cause?.code ?? (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot write into the output folder ${dir}${code ? ` (${code})` : ''}; choose a writable --out`, { cause: e });
  } finally {
    rmSync(probe, { force: true });
  }
}

function uniformPoint(setup: SearchSetup, precision: 'int8' | 'fp16'): BaselinePoint | undefined {
  const names = setup.exp.loaded.layers.map((l) => l.name);
  const r = setup.env.recordOf(policyKey(names, uniformPolicy(names, precision)));
  if (!r || !r.confirmed) return undefined;
  return { agent: `all-${precision}`, score: r.score, latencyMs: r.latencyMs, reward: r.reward, feasible: r.feasible };
}

export function reportInput(setup: SearchSetup, agent: string, policy: PolicyFile | undefined, history: HistoryLine[], int8LatencyMs: number, target: string, extraBaselines: BaselinePoint[] = []): SearchReportInput {
  const { exp, env } = setup;
  const points: HistoryPoint[] = history
    .filter((h) => h.confirmed && h.score !== null && h.reward !== null)
    .map((h) => ({ evaluation: h.evaluation, episode: h.episode, score: h.score!, latencyMs: h.latencyMs, reward: h.reward!, feasible: h.feasible, agent: h.agent, seconds: h.wallSeconds }));
  const baselines = [uniformPoint(setup, 'fp16'), uniformPoint(setup, 'int8'), ...extraBaselines].filter((b): b is BaselinePoint => b !== undefined);
  const byName = new Map(policy?.layers.map((l) => [l.name, l.precision]));
  return {
    title: `trtmix search: ${exp.loaded.builtIn ? 'PP-OCRv4 recognition (built-in example)' : exp.loaded.path}`,
    model: { path: exp.loaded.path, sha256: policy?.model.sha256 ?? sha256Hex(readFileSync(exp.loaded.path)) },
    target, agent, seed: exp.seed, metricName: exp.metric.name, higherIsBetter: exp.metric.higherIsBetter,
    ...(Number.isFinite(env.constraints.budgetMs) ? { budgetMs: env.constraints.budgetMs } : {}),
    ...(Number.isFinite(env.constraints.maxDrop) ? { maxDrop: env.constraints.maxDrop } : {}),
    fp32Score: env.fp32Score, fp16LatencyMs: env.fp16LatencyMs, int8LatencyMs,
    layers: exp.loaded.layers.map((l) => ({ name: l.name, op: l.op, macs: l.macs, precision: byName.get(l.name) ?? 'fp32' })),
    best: policy ? {
      score: policy.metrics.score, latencyMs: policy.metrics.latencyMs, reward: policy.metrics.reward as number,
      ...(policy.metrics.searchCi95 ? { ci95: policy.metrics.searchCi95 as [number, number], samples: policy.metrics.searchSamples as number } : {}),
    } : null,
    ...(policy?.metrics.test ? { test: policy.metrics.test as HeldOutFigures } : {}),
    history: points,
    baselines,
    ...(setup.analysis ? { sensitivity: { metricName: exp.metric.name, layers: setup.analysis.layers.map((l) => ({ name: l.name, op: l.op, macs: l.macs, int8Drop: l.int8Drop, leaveOneOutDrop: l.leaveOneOutDrop, mse: l.mse, kl: l.kl, histogramOverlap: l.histogramOverlap, outlierFraction: l.outlierFraction, rangeWaste: l.rangeWaste })) } } : {}),
  };
}
