/**
 * Search quality against wall time with rounds (issue #15): the same search with K policies proposed per round
 * (--proposals) on as many workers as the machine allows, for the same wall time. What K buys is throughput (K
 * evaluations at once); what it costs is sample efficiency (a round's K episodes are chosen without each other's
 * results). Each run is one `trtmix search --json` process with --time-limit; the table gives the best reward, the
 * evaluations and screening runs done, and the wall time, per K and seed.
 *
 *   node --import tsx bench/search-rounds.ts [--proposals 1,4] [--jobs auto] [--time-limit 3m] [--seeds 0]
 *        [--agent dqn] [--calibration entropy] [--eval-samples 128] [--out bench/out/search-rounds] [-- extra search args]
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    proposals: { type: 'string', default: '1,4' },
    jobs: { type: 'string', default: 'auto' },
    'time-limit': { type: 'string', default: '3m' },
    seeds: { type: 'string', default: '0' },
    agent: { type: 'string', default: 'dqn' },
    calibration: { type: 'string', default: 'entropy' },
    'eval-samples': { type: 'string', default: '128' },
    out: { type: 'string', default: 'bench/out/search-rounds' },
  },
});

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
mkdirSync(args.out!, { recursive: true });
interface Run { proposals: number; seed: number; workers: string; reward: number | null; score: number | null; latencyMs: number | null; evaluations: number; screeningRuns: number; seconds: number }
const runs: Run[] = [];
process.stderr.write(`machine: ${cpus().length} logical CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
for (const seed of list(args.seeds!).map(Number)) {
  for (const proposals of list(args.proposals!).map(Number)) {
    const out = join(args.out!, `k${proposals}-seed${seed}`);
    rmSync(out, { recursive: true, force: true });
    const cli = [
      '--import', 'tsx', 'bin/trtmix.js', 'search', '--json', '--quiet', '--agent', args.agent!, '--calibration', args.calibration!,
      '--eval-samples', args['eval-samples']!, '--time-limit', args['time-limit']!, '--episodes', '100000', '--seed', String(seed),
      '--proposals', String(proposals), ...(args.jobs === 'auto' ? [] : ['--jobs', args.jobs!]), '--out', out, ...positionals,
    ];
    const started = performance.now();
    const r = spawnSync(process.execPath, cli, { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`search failed (K=${proposals}, seed ${seed}): ${r.stderr.trim().split('\n').at(-1)}`);
    const doc = JSON.parse(r.stdout);
    const run: Run = {
      proposals, seed, workers: doc.workers, reward: doc.reward, score: doc.score, latencyMs: doc.latencyMs,
      evaluations: doc.evaluations, screeningRuns: doc.subsetEvaluations, seconds: (performance.now() - started) / 1000,
    };
    runs.push(run);
    process.stderr.write(`K=${proposals} seed ${seed} on ${run.workers}: reward ${run.reward?.toFixed(4) ?? '-'} after ${run.evaluations} evaluations (+${run.screeningRuns} screening runs), ${run.seconds.toFixed(0)} s\n`);
    writeFileSync(join(args.out!, 'search-rounds.json'), `${JSON.stringify(runs, null, 2)}\n`);
  }
}
const f = (v: number | null, d: number) => (v === null ? '—' : v.toFixed(d));
const md = [
  `| K (--proposals) | seed | workers | best reward | score | latency ms | evaluations (+ screening runs) | wall s (search limit ${args['time-limit']}) |`,
  '|---|---|---|---|---|---|---|---|',
  ...runs.map((r) => `| ${r.proposals} | ${r.seed} | ${r.workers} | ${f(r.reward, 4)} | ${f(r.score, 4)} | ${f(r.latencyMs, 3)} | ${r.evaluations} (+${r.screeningRuns}) | ${r.seconds.toFixed(0)} |`),
].join('\n');
writeFileSync(join(args.out!, 'search-rounds.md'), `${md}\n`);
process.stdout.write(`${md}\n`);
