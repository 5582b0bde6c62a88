import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { withSearchOptions, DEFAULT_EPISODES, DEFAULT_LADDER_STEPS, DEFAULT_TIME_LIMIT, type SearchArgs } from '../../search/options.ts';
import { AGENT_NAMES } from '../../../agents/names.ts';
import { formatTable, formatMacs } from '../table.ts';
import { shellQuote } from '../../export/shell.ts';
import { monitored, withMetricsPort } from '../../monitor/cli.ts';
import { breaksFloor, figuresText, percentWithInterval } from '../figures.ts';

type Args = GlobalOptions & SearchArgs;

export const searchCommand: CommandModule<GlobalOptions, Args> = {
  command: 'search',
  describe: 'Search per-layer precisions (the built-in example when no --model)',
  builder: (y) =>
    withMetricsPort(withSearchOptions(y))
      .option('agent', { type: 'string', choices: [...AGENT_NAMES], default: 'dqn', describe: 'Search agent' })
      .option('resume', { type: 'boolean', describe: 'Continue the interrupted search in --out' })
      .option('pareto-steps', { type: 'number', default: DEFAULT_LADDER_STEPS, describe: 'Most steps of the ladder in pareto/ (Pareto front of measured policies, fastest first, ending at all-FP16)' })
      .epilogue(`Defaults: --episodes ${DEFAULT_EPISODES}, --time-limit ${DEFAULT_TIME_LIMIT}, whichever ends first. Ctrl-C stops at the next evaluation, keeping the best policy; --resume continues.`)
      .example([
        ['$0 search', 'Run the built-in PP-OCRv4 recognition example end to end'],
        ['$0 search --model model.onnx --data calib.npy --labels labels.txt --metric top1 --target orin-agx --max-drop 0.01 --out runs/mine', 'Search your own model'],
        ['$0 search --config runs/mine.json --resume', 'Continue an interrupted search: the same options (here from a --config file) plus --resume'],
      ]) as any,
  handler: async (args) => {
    // Loaded here, not at the top: TensorFlow.js and vega cost a second that --help should not pay.
    const { runSearch } = await import('../../search/run.ts');
    // --json keeps stdout for the one document; progress still goes to stderr.
    const quiet = Boolean(args.quiet);
    const log = (m: string) => { if (!args.quiet) process.stderr.write(`${m}\n`); };
    let interrupt: (() => void) | undefined;
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts > 1) {
        process.stderr.write('\ntrtmix: interrupted again; exiting now (the best policy so far is in policy.json)\n');
        process.exit(130);
      }
      process.stderr.write('\ntrtmix: stopping after the current evaluation; the best policy so far is kept (Ctrl-C again to quit now)\n');
      interrupt?.();
    };
    process.on('SIGINT', onSigint);
    try {
      const outcome = await monitored('search', args, log, (monitor) => runSearch(args, { quiet, log, monitor, onReady: (i) => { interrupt = i; if (interrupts > 0) i(); } }));
      const { setup, policy, status, outDir, figures } = outcome;
      const stats = setup.env.stats;
      const maxDrop = setup.env.constraints.maxDrop;
      const testBreaksFloor = figures?.test !== undefined && breaksFloor(figures.test.drop, maxDrop);
      const doc = {
        status,
        out: outDir,
        agent: args.agent ?? 'dqn',
        target: args.target ?? 't4',
        score: policy?.metrics.score ?? null,
        fp32Score: setup.env.fp32Score,
        drop: policy?.metrics.drop ?? null,
        latencyMs: policy?.metrics.latencyMs ?? null,
        fp16LatencyMs: setup.env.fp16LatencyMs,
        int8LatencyMs: policy?.metrics.int8LatencyMs ?? null,
        int8MacsShare: policy?.metrics.int8MacsShare ?? null,
        reward: policy?.metrics.reward ?? null,
        searchSamples: figures?.search.samples ?? setup.exp.split.eval.count,
        searchCi95: figures?.search.ci95 ?? null,
        searchDropCi95: figures?.search.dropCi95 ?? null,
        confidence: setup.evaluator.confidence ?? null,
        dropBound: policy?.metrics.dropBound ?? null,
        test: policy?.metrics.test ?? null,
        evaluations: stats.evaluations,
        subsetEvaluations: stats.subsetEvaluations,
        proposals: args.proposals ?? 1,
        workers: outcome.workers,
        cacheHits: stats.cacheHits,
        files: outcome.files,
        pareto: outcome.ladder ? outcome.ladder.map((s) => ({ ...s, dir: `${outDir}/pareto/${s.dir}` })) : null,
      };
      if (args.json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      else {
        const metric = setup.exp.metric.name;
        const lines = [
          status === 'interrupted'
            ? `search interrupted; resume with: ${resumeCommand(outDir)}`
            : testBreaksFloor
              ? `search done, but the best policy breaks the ${percentWithInterval(maxDrop)} floor on the held-out test samples (drop ${percentWithInterval(figures!.test!.drop, figures!.test!.dropCi95)}): do not count on it; search with more --eval-samples, --confidence 0.95 or a looser --max-drop`
              : 'search done',
          policy && figures
            ? `best on the search split (${figures.search.samples} samples): ${figuresText(metric, figures.search)}, ${policy.metrics.latencyMs.toFixed(3)} ms on ${doc.target} (all-FP16 ${setup.env.fp16LatencyMs.toFixed(3)} ms, all-INT8 ${(doc.int8LatencyMs as number).toFixed(3)} ms), ${(100 * (doc.int8MacsShare as number)).toFixed(1)} % of MACs in int8/mixed`
            : setup.evaluator.confidence !== undefined
              ? `no feasible policy was found at ${100 * setup.evaluator.confidence} % confidence: ${setup.exp.split.eval.count} search samples may be too few to show any policy within the floor; give more --eval-samples, loosen --max-drop or the budget, or search longer`
              : 'no feasible policy was found: loosen --max-drop or the budget, or search longer',
          ...(policy && figures && setup.evaluator.confidence !== undefined
            ? [`floor checked at ${100 * setup.evaluator.confidence} % confidence: the search-split drop is at most ${percentWithInterval(policy.metrics.dropBound as number)} (upper end of its paired interval; floor ${percentWithInterval(maxDrop)})`]
            : []),
          ...(figures?.test
            ? [`on the held-out test samples (${figures.test.samples}, never used for a choice): ${figuresText(metric, figures.test)}${testBreaksFloor ? '' : `, within the ${percentWithInterval(maxDrop)} floor`}`]
            : policy ? ['no test score: there are no held-out test samples (see the note above; --test-data gives a separate file)'] : []),
          `${stats.evaluations} evaluations (+${stats.subsetEvaluations} screening runs, ${stats.cacheHits} cache hits)`,
          `results in ${outDir}/ (${policy ? (status === 'done' ? 'policy.json, trtexec.txt, build_engine.py, model.qdq.onnx, report.html, pareto/, ...' : 'policy.json, history.jsonl, checkpoint.json, report.html') : 'history.jsonl, report.html'})`,
        ];
        if (policy) {
          const counts: Record<string, { n: number; macs: number }> = {};
          for (const l of policy.layers) { counts[l.precision] ??= { n: 0, macs: 0 }; counts[l.precision].n++; counts[l.precision].macs += l.macs; }
          lines.push('', formatTable(['precision', 'layers', 'MACs'], Object.entries(counts).map(([p, c]) => [p, c.n, formatMacs(c.macs)]), ['l', 'r', 'r']));
        }
        if (outcome.ladder) {
          const mark = (s: (typeof outcome.ladder)[number]) => [s.chosen ? 'chosen' : '', s.allFp16 ? 'all FP16' : '', s.feasible ? '' : 'breaks a constraint'].filter(Boolean).join(', ');
          lines.push('', `ladder of policies in ${outDir}/pareto/, fastest first (trtmix replay ${outDir}/pareto/index.json scores them on new data):`);
          lines.push(formatTable(['step', setup.exp.metric.name, 'latency ms', 'int8 MACs', ''], outcome.ladder.map((s) => [s.dir, s.score.toFixed(4), s.latencyMs.toFixed(3), `${(100 * s.int8MacsShare).toFixed(1)} %`, mark(s)]), ['l', 'r', 'r', 'r', 'l']));
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (status === 'interrupted') process.exitCode = 130;
      else if (!policy || testBreaksFloor) process.exitCode = 1;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

/** The command line of this run again, with --resume (and --out when it was the default folder). */
function resumeCommand(outDir: string): string {
  const given = process.argv.slice(3).filter((a) => a !== '--resume');
  const hasOut = given.some((a) => a === '--out' || a.startsWith('--out='));
  return ['trtmix', 'search', ...given, ...(hasOut ? [] : ['--out', outDir]), '--resume'].map(shellQuote).join(' ');
}
