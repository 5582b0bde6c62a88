import type { CommandModule } from 'yargs';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { GlobalOptions } from '../main.ts';
import { withSearchOptions, parseDuration, parseLayerCalibration, parseWorkers, DEFAULT_EPISODES, type SearchArgs } from '../../search/options.ts';
import type { EvaluationBackend } from '../../parallel/types.ts';
import { prepareExperiment } from '../experiment.ts';
import { AGENT_NAMES } from '../../../agents/names.ts';
import { formatTable } from '../table.ts';
import { writeFileAtomic } from '../../fs.ts';
import { UserError } from '../../errors.ts';
import { progress, searchProgress, workText } from '../progress.ts';
import { monitored, withMetricsPort } from '../../monitor/cli.ts';
import { withInterval } from '../figures.ts';

type Args = GlobalOptions & SearchArgs & { agents?: string[]; evaluations?: number };

export interface CompareRow {
  agent: string;
  evaluations: number;
  screeningRuns: number;
  cacheHits: number;
  score: number | null;
  drop: number | null;
  latencyMs: number | null;
  reward: number | null;
  int8MacsShare: number | null;
  /** The agent's best policy on the held-out test samples (null without a feasible policy or a test split). */
  testScore: number | null;
  testDrop: number | null;
  testCi95: [number, number] | null;
  wallSeconds: number;
}

const DEFAULT_AGENTS = ['dqn', 'greedy', 'bisect', 'knapsack', 'best-calibration', 'rules', 'random', 'int8', 'fp16'];

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const compareCommand: CommandModule<GlobalOptions, Args> = {
  command: 'compare',
  describe: 'Run several agents side by side on the same model, data and budget',
  builder: (y) =>
    withMetricsPort(withSearchOptions(y))
      .option('agents', { type: 'string', array: true, default: DEFAULT_AGENTS, describe: `Agents to compare (${AGENT_NAMES.join(', ')})` })
      .option('evaluations', { type: 'number', default: 60, describe: 'Full evaluations each agent may spend' })
      .example([
        ['$0 compare --evaluations 60', 'Every agent on the built-in PP-OCRv4 example, 60 evaluations each'],
        ['$0 compare --model m.onnx --data x.npy --agents dqn greedy knapsack --target orin-agx --budget 0.8', 'Three agents on your model under a latency budget'],
      ]) as any,
  handler: async (args) => {
    // Loaded here, not at the top: TensorFlow.js and vega cost a second that --help should not pay.
    const { setupSearch, agentOptions, openSearchBackend } = await import('../../search/run.ts');
    const { createAgent } = await import('../../../agents/index.ts');
    // --json keeps stdout for the one document; progress still goes to stderr.
    const quiet = Boolean(args.quiet);
    const log = (m: string) => { if (!args.quiet) process.stderr.write(`${m}\n`); };
    const agents = args.agents ?? DEFAULT_AGENTS;
    for (const a of agents) if (!AGENT_NAMES.includes(a as (typeof AGENT_NAMES)[number])) throw new UserError(`unknown agent "${a}" in --agents; choose from ${AGENT_NAMES.join(', ')}`);
    const evaluations = args.evaluations ?? 60;
    if (!Number.isInteger(evaluations) || evaluations < 1) throw new UserError(`--evaluations must be a whole number >= 1, got ${evaluations}`);
    parseLayerCalibration(args['layer-calibration']); // refused before calibration, not after
    const outDir = args.out ?? `runs/compare-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
    try { mkdirSync(outDir, { recursive: true }); } catch { throw new UserError(`cannot create the output folder ${outDir}; choose a writable --out`); }
    const { exp, rows } = await monitored('compare', args, log, async (monitor) => {
      const exp = await prepareExperiment(args, { quiet, log });
      const rows: CompareRow[] = [];
      const proposals = parseWorkers('proposals', args.proposals, 1);
      // One set of workers for all agents (their setup is the experiment's, the same for every agent).
      let backend: EvaluationBackend | undefined;
      try {
        for (const name of agents) {
          exp.evaluator.clearCache();
          const setup = await setupSearch({ ...args, agent: name }, name, { quiet, log, monitor }, exp);
          backend ??= await openSearchBackend(args, setup, proposals, { quiet, log });
          setup.evaluator.backend = backend;
          const bar = progress(`compare: ${name}`, { total: evaluations, quiet });
          // Counts screening runs too (searchProgress), so the ETA means something for agents that screen many policies.
          const stats0 = { evaluations: setup.env.stats.evaluations, subsetEvaluations: setup.env.stats.subsetEvaluations };
          setup.hooks.onEvaluation = () => {
            const w = { evaluations: setup.env.stats.evaluations - stats0.evaluations, screeningRuns: setup.env.stats.subsetEvaluations - stats0.subsetEvaluations };
            const p = searchProgress({ ...w, maxEvaluations: evaluations });
            bar.setTotal(p.total);
            bar.update(p.done, workText(w.evaluations, w.screeningRuns));
          };
          monitor?.watchSearch(setup, name, args.target ?? 't4');
          const agent = createAgent(name, { ...agentOptions(setup), seed: exp.seed, dqn: { episodes: args.episodes ?? DEFAULT_EPISODES } });
          const started = performance.now();
          const result = await agent.search(setup.env, { maxEvaluations: evaluations, episodes: args.episodes ?? DEFAULT_EPISODES, timeLimitMs: parseDuration(args['time-limit']), proposals });
          (agent as { dispose?: () => void }).dispose?.();
          const best = result.best;
          // Scored after the agent is done: the test samples never take part in its choices.
          const test = best ? await (await exp.testEvaluator())?.figures(best.policy) : undefined;
          const totalMacs = exp.loaded.layers.reduce((a, l) => a + l.macs, 0);
          const int8Macs = best ? exp.loaded.layers.filter((l) => ['int8', 'mixed'].includes(best.policy[l.name]?.precision ?? 'fp32')).reduce((a, l) => a + l.macs, 0) : 0;
          const row: CompareRow = {
            agent: name,
            evaluations: result.evaluations,
            screeningRuns: result.subsetEvaluations,
            cacheHits: result.cacheHits,
            score: best ? best.score : null,
            drop: best ? -best.dAcc : null,
            latencyMs: best ? best.latencyMs : null,
            reward: best ? best.reward : null,
            int8MacsShare: best ? int8Macs / totalMacs : null,
            testScore: test?.score ?? null,
            testDrop: test?.drop ?? null,
            testCi95: test?.ci95 ?? null,
            wallSeconds: (performance.now() - started) / 1000,
          };
          bar.finish(best ? `best ${best.score.toFixed(4)} @ ${best.latencyMs.toFixed(3)} ms, reward ${best.reward.toFixed(4)}` : 'no feasible policy');
          // Why it stopped (e.g. with evaluations left) and where it started: the agent's own account.
          for (const note of result.notes) log(`  ${name}: ${note}`);
          rows.push(row);
        }
      } finally {
        await backend?.close();
      }
      return { exp, rows };
    });
    const testEvaluator = await exp.testEvaluator();
    const doc = {
      model: exp.loaded.path, target: args.target ?? 't4', metric: exp.metric.name, fp32Score: exp.evaluator.fp32Score,
      searchSamples: exp.split.eval.count, testSamples: testEvaluator?.data.count ?? 0, testFp32Score: testEvaluator?.fp32Score ?? null,
      maxDrop: args['max-drop'] ?? 0.01, budgetMs: args['budget-ms'] ?? null, budget: args.budget ?? null, evaluationsPerAgent: evaluations, seed: exp.seed, rows,
    };
    const header = ['agent', 'evaluations', 'screeningRuns', 'cacheHits', 'score', 'drop', 'latencyMs', 'reward', 'int8MacsShare', 'testScore', 'testDrop', 'testCi95Low', 'testCi95High', 'wallSeconds'] as const;
    const csvRow = (r: CompareRow) => ({ ...r, testCi95Low: r.testCi95?.[0] ?? null, testCi95High: r.testCi95?.[1] ?? null });
    writeFileAtomic(join(outDir, 'compare.json'), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileAtomic(join(outDir, 'compare.csv'), `${header.join(',')}\n${rows.map((r) => header.map((h) => csvCell(csvRow(r)[h])).join(',')).join('\n')}\n`);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ ...doc, out: outDir }, null, 2)}\n`);
      return;
    }
    const f = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));
    const pct = (v: number | null) => (v === null ? '-' : (100 * v).toFixed(2));
    const testNote = testEvaluator
      ? `, ${testEvaluator.fp32Score.toFixed(4)} on the ${testEvaluator.data.count} held-out test samples (test: the best policy there, never used for a choice; [95 % interval])`
      : '; no test score: there are no held-out test samples';
    process.stdout.write(`${formatTable(
      ['agent', 'evals', 'screens', 'search score', 'drop %', 'test score', 'test drop %', 'latency ms', 'reward', 'int8 MACs %', 'wall s'],
      rows.map((r) => [r.agent, r.evaluations, r.screeningRuns, f(r.score, 4), pct(r.drop), r.testScore === null ? '-' : withInterval(r.testScore, r.testCi95 ?? undefined), pct(r.testDrop), f(r.latencyMs, 3), f(r.reward, 4), r.int8MacsShare === null ? '-' : (100 * r.int8MacsShare).toFixed(1), r.wallSeconds.toFixed(1)]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    )}\n\n${exp.metric.name} FP32 ${exp.evaluator.fp32Score.toFixed(4)} on the ${exp.split.eval.count} search samples${testNote}; table in ${join(outDir, 'compare.csv')} and compare.json\n`);
  },
};
