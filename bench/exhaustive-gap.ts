/**
 * Exhaustive gap: how close does the DQN agent get to the exact optimum, and with how many evaluations?
 *
 * Model: an 8-layer CNN built in code (envs/toy/tiny-convnet.ts: 7 convs incl. two depthwise + a Gemm head,
 * three planted outlier channels), 3 actions per layer (int8, mixed, fp16): 3^8 = 6561 policies.
 * Accuracy: top-1 agreement with FP32 on 128 samples, measured by
 *   --evaluator ort (default): the project's onnxruntime simulator (src/quant: Q/DQ + fp16 graph, max calibration)
 *                              on the network exported to ONNX;
 *   --evaluator toy          : the same arithmetic in plain TypeScript (fast; agrees with ort to about one sample).
 * Latency: a TOY roofline (envs/toy/toy-latency.ts, made-up device numbers with reformat coupling). The project's
 * GPU rooflines price this tiny network as launch-bound, where int8 barely pays, which would make the search trivial.
 *
 * The exhaustive table (every policy's score; about 2.5 min with ort on 2 cores) is computed once per evaluator and
 * cached in bench/out/; later agents read scores from it, but every policy an agent asks for still counts as one
 * evaluation in its own environment. With --budget, policies the latency model puts over budget are priced, not
 * scored, by every agent alike (exhaustive included), so "evaluations" counts scored policies only.
 *
 *   node --import tsx bench/exhaustive-gap.ts [--evaluator ort|toy] [--seeds 0,1,2] [--max-drop 0.05] [--budget 0.8]
 *                                             [--fraction 0.1] [--episodes 20000] [--no-baselines]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PrecisionEnv } from '../envs/precision-env.ts';
import type { PolicyEvaluator } from '../envs/types.ts';
import { TinyConvNet, TinyConvNetEvaluator, EIGHT_LAYER_NET } from '../envs/toy/tiny-convnet.ts';
import { ToyRooflineLatency } from '../envs/toy/toy-latency.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import { policyKey, type LayerPolicy } from '../src/policy.ts';
import { ExhaustiveAgent } from '../agents/baselines/exhaustive.ts';
import { createAgent } from '../agents/index.ts';
import { DqnSearchAgent } from '../agents/dqn/search.ts';
import type { SearchResult } from '../agents/agent.ts';

const { values: args } = parseArgs({
  options: {
    evaluator: { type: 'string', default: 'ort' },
    seeds: { type: 'string', default: '0,1,2' },
    'max-drop': { type: 'string', default: '0.05' },
    budget: { type: 'string' },
    fraction: { type: 'string', default: '0.1' },
    episodes: { type: 'string', default: '20000' },
    'no-baselines': { type: 'boolean', default: false },
  },
});
const OUT = 'bench/out';
mkdirSync(OUT, { recursive: true });
const log = (m: string): void => void process.stderr.write(`${m}\n`);

/** The network and, for --evaluator ort, the onnxruntime simulator over its ONNX export. */
async function buildEvaluator(kind: string): Promise<{ net: TinyConvNet; layers: readonly Layer[]; evaluator: PolicyEvaluator }> {
  const net = new TinyConvNet({ seed: 0 });
  if (kind === 'toy') return { net, layers: net.layers, evaluator: new TinyConvNetEvaluator(net) };
  if (kind !== 'ort') throw new Error(`--evaluator must be ort or toy, got ${kind}`);
  const { discoverLayers } = await import('../src/onnx/layers.ts');
  const { calibrationTensors, collectStatistics, CalibrationTable } = await import('../src/quant/calibrate.ts');
  const { PolicyEvaluator: OrtEvaluator, sliceFeeds } = await import('../src/quant/evaluator.ts');
  const { agreement } = await import('../src/quant/metrics.ts');
  const model = net.toOnnx();
  const { graph, layers } = await discoverLayers(model);
  const per = net.inputShape.reduce((a, b) => a * b, 1);
  const set = (x: Float32Array) => ({ count: x.length / per, inputs: { x: { data: x, dims: [x.length / per, ...net.inputShape] } } });
  const calib = set(net.calibrationInputs);
  const stats = await collectStatistics(model, calibrationTensors(layers), calib.count, (s, e) => sliceFeeds(calib, s, e), { batchSize: 64 });
  const base = { model, graph, layers, calibration: new CalibrationTable(stats, calib.count), defaultCalibration: { method: 'max' as const } };
  const ort = await OrtEvaluator.create(base, set(net.evaluationInputs), agreement, { batchSize: 128 });
  return {
    net,
    layers,
    evaluator: { fp32Score: ort.fp32Score, higherIsBetter: true, evaluate: async (p: LayerPolicy) => ({ score: (await ort.evaluate(p)).score }) },
  };
}

/** Scores of all 6561 policies, from bench/out or measured now (the expensive part, done once). */
async function scoreTable(kind: string): Promise<{ net: TinyConvNet; layers: readonly Layer[]; scores: Map<string, number>; fp32Score: number; seconds: number }> {
  const configHash = createHash('sha256').update(JSON.stringify({ kind, net: EIGHT_LAYER_NET, v: 1 })).digest('hex').slice(0, 12);
  const path = join(OUT, `exhaustive-gap-table-${kind}-${configHash}.json`);
  const { net, layers, evaluator } = await buildEvaluator(kind);
  if (existsSync(path)) {
    const cached = JSON.parse(readFileSync(path, 'utf8')) as { scores: Record<string, number>; fp32Score: number; seconds: number };
    log(`scores: ${path} (measured earlier in ${cached.seconds.toFixed(0)} s)`);
    return { net, layers, scores: new Map(Object.entries(cached.scores)), fp32Score: cached.fp32Score, seconds: cached.seconds };
  }
  log(`scores: measuring all 3^${layers.length} policies with the ${kind} evaluator (cached afterwards in ${path})`);
  const env = await PrecisionEnv.create({ layers, evaluator, latency: new ToyRooflineLatency(net.layers) });
  const started = performance.now();
  let last = started;
  const scores: Record<string, number> = {};
  const agent = new ExhaustiveAgent();
  const watch = setInterval(() => {
    const n = env.stats.evaluations;
    if (performance.now() - last > 30_000) {
      last = performance.now();
      log(`  ${n} / 6561 evaluated, ${((last - started) / 1000).toFixed(0)} s`);
    }
  }, 1000);
  try {
    await agent.search(env);
  } finally {
    clearInterval(watch);
  }
  for (const r of env.records()) scores[r.key] = r.score;
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(path, JSON.stringify({ kind, fp32Score: evaluator.fp32Score, seconds, scores }));
  return { net, layers, scores: new Map(Object.entries(scores)), fp32Score: evaluator.fp32Score, seconds };
}

interface Row {
  agent: string;
  seed?: number;
  reward: number | null;
  gapPct: number | null;
  evaluations: number;
  firstWithin1Pct: number | null;
  score: number | null;
  latencyMs: number | null;
  policy: string | null;
  seconds: number;
}

async function main(): Promise<void> {
  const kind = args.evaluator!;
  const { net, layers, scores, fp32Score, seconds: tableSeconds } = await scoreTable(kind);
  const names = layers.map((l) => l.name);
  const tableEvaluator: PolicyEvaluator = {
    fp32Score,
    higherIsBetter: true,
    async evaluate(p: LayerPolicy) {
      const s = scores.get(policyKey(names, p));
      if (s === undefined) throw new Error(`policy ${policyKey(names, p)} is not in the table`);
      return { score: s };
    },
  };
  const maxDrop = Number(args['max-drop']);
  const budget = args.budget !== undefined ? Number(args.budget) : undefined;
  // The toy network's own layer records (same names) drive the toy latency model for both evaluators.
  const latency = new ToyRooflineLatency(net.layers);
  const makeEnv = () => PrecisionEnv.create({ layers, evaluator: tableEvaluator, latency, maxDrop, budget });

  const exhaustiveEnv = await makeEnv();
  const exhaustive = await new ExhaustiveAgent().search(exhaustiveEnv);
  const space = ExhaustiveAgent.spaceSize(exhaustiveEnv);
  const optimum = exhaustive.best;
  if (!optimum) throw new Error('no feasible policy: loosen --max-drop or --budget');
  const rStar = optimum.reward;
  const cap = Math.floor(Number(args.fraction) * space);
  log(`optimum ${optimum.actions.join('')} R* = ${rStar.toFixed(5)} (score ${optimum.score.toFixed(4)}, ${optimum.latencyMs.toFixed(4)} ms); exhaustive: ${exhaustive.evaluations} evaluations of ${space} policies; cap ${cap}`);

  const rows: Row[] = [];
  const rowOf = (agent: string, r: SearchResult, firstWithin: number | null, seed?: number): Row => ({
    agent,
    seed,
    reward: r.best ? r.best.reward : null,
    gapPct: r.best ? (100 * (rStar - r.best.reward)) / Math.abs(rStar) : null,
    evaluations: r.evaluations,
    firstWithin1Pct: firstWithin,
    score: r.best ? r.best.score : null,
    latencyMs: r.best ? r.best.latencyMs : null,
    policy: r.best ? r.best.actions.join('') : null,
    seconds: r.seconds,
  });
  rows.push(rowOf('exhaustive', exhaustive, optimum.evaluation));

  const seeds = args.seeds!.split(',').map(Number);
  for (const seed of seeds) {
    const env = await makeEnv();
    let firstWithin: number | null = null;
    const agent = new DqnSearchAgent({
      hyperparameters: { seed },
      onEpisode: () => {
        if (firstWithin === null && env.best && env.best.reward >= rStar - 0.01 * Math.abs(rStar)) firstWithin = env.stats.evaluations;
      },
    });
    const r = await agent.search(env, { maxEvaluations: cap, episodes: Number(args.episodes) });
    agent.dispose();
    rows.push(rowOf('dqn', r, firstWithin, seed));
    log(`dqn seed ${seed}: R ${r.best?.reward.toFixed(5)} gap ${rows.at(-1)!.gapPct?.toFixed(2)} % in ${r.evaluations} evaluations (within 1 % after ${firstWithin}), ${r.seconds.toFixed(0)} s`);
  }

  if (!args['no-baselines']) {
    // Random search gets the same seeds and cap as DQN: the floor a learning agent has to beat.
    const runs: Array<[string, number | undefined]> = [
      ...seeds.map((seed): [string, number] => ['random', seed]),
      ...['greedy', 'bisect', 'knapsack', 'int8', 'fp16'].map((name): [string, undefined] => [name, undefined]),
    ];
    for (const [name, seed] of runs) {
      const env = await makeEnv();
      const agent = createAgent(name, { seed: seed ?? 0 });
      const r = await agent.search(env, { maxEvaluations: cap, episodes: Number(args.episodes) });
      const hit = env.history.find((rec) => rec.confirmed && rec.feasible && rec.reward >= rStar - 0.01 * Math.abs(rStar));
      rows.push(rowOf(name, r, hit ? hit.evaluation : null, seed));
    }
  }

  const dqn = rows.filter((r) => r.agent === 'dqn');
  const random = rows.filter((r) => r.agent === 'random');
  const within = (rs: Row[]): number => rs.filter((r) => r.gapPct !== null && r.gapPct <= 1).length;
  const summary = {
    evaluator: kind === 'ort' ? 'onnxruntime simulator (src/quant), max calibration' : 'TypeScript toy arithmetic (envs/toy)',
    latency: 'toy roofline (envs/toy/toy-latency.ts)',
    model: '8-layer CNN built in code (envs/toy EIGHT_LAYER_NET), 128 samples, metric agreement',
    actions: ['int8', 'mixed', 'fp16'],
    constraints: { maxDrop, budget: budget ?? null },
    space,
    exhaustiveEvaluations: exhaustive.evaluations,
    evaluationCap: cap,
    tableSeconds,
    optimum: { policy: optimum.actions.join(''), reward: rStar, score: optimum.score, latencyMs: optimum.latencyMs },
    dqnMeanGapPct: dqn.reduce((s, r) => s + (r.gapPct ?? Infinity), 0) / dqn.length,
    dqnMeanEvaluations: dqn.reduce((s, r) => s + r.evaluations, 0) / dqn.length,
    dqnSeedsWithin1Pct: `${within(dqn)}/${dqn.length}`,
    randomSeedsWithin1Pct: random.length ? `${within(random)}/${random.length}` : null,
    rows,
  };
  const tag = `${kind}-drop${maxDrop}${budget !== undefined ? `-budget${budget}` : ''}`;
  writeFileSync(join(OUT, `exhaustive-gap-${tag}.json`), `${JSON.stringify(summary, null, 2)}\n`);
  const f = (v: number | null, d: number): string => (v === null ? '-' : v.toFixed(d));
  const lines = [
    `| agent | seed | best R | gap to R* % | evaluations | within 1 % after | score | latency ms | policy | s |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
    ...rows.map((r) => `| ${r.agent} | ${r.seed ?? ''} | ${f(r.reward, 5)} | ${f(r.gapPct, 2)} | ${r.evaluations} | ${r.firstWithin1Pct ?? '-'} | ${f(r.score, 4)} | ${f(r.latencyMs, 4)} | ${r.policy ?? '-'} | ${r.seconds.toFixed(1)} |`),
  ];
  process.stdout.write(
    `${summary.evaluator}; latency ${summary.latency}; max-drop ${maxDrop}${budget ? `, budget ${budget}` : ''}\n` +
      `space ${space} policies, exhaustive scored ${exhaustive.evaluations}, cap per agent ${cap} (${args.fraction} of the space)\n` +
      `R* = ${rStar.toFixed(5)} at ${summary.optimum.policy}; dqn mean gap ${summary.dqnMeanGapPct.toFixed(2)} %, mean evaluations ${summary.dqnMeanEvaluations.toFixed(0)}; ` +
      `within 1 %: dqn ${summary.dqnSeedsWithin1Pct} seeds, random ${summary.randomSeedsWithin1Pct ?? '-'}\n\n` +
      `${lines.join('\n')}\n`,
  );
}

await main();
