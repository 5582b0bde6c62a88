import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ladderFixture } from './pareto-fixture.ts';
import { LAYERS, scrapeWhileRunning, slowMetric, value } from './monitor-helpers.ts';

test('analyze --metrics-port fills the per-layer error and sensitivity in as the layers are measured; compare labels each agent', async () => {
  const f = ladderFixture('trtmix-monitor-');
  const metric = slowMetric(f.dir, 120);
  const analysis = await scrapeWhileRunning(['analyze', '--model', f.model, '--data', f.data, '--metric', metric, '--calib-samples', '16', '--eval-samples', '16', '--analysis-samples', '8', '--out', join(f.dir, 'a'), '--no-png']);
  assert.equal(analysis.result.code, 0, analysis.result.stderr);
  const partial = analysis.scrapes.find((s) => {
    const n = s.families.get('trtmix_quantization_error')?.samples.length ?? 0;
    return n > 0 && n < LAYERS.length;
  });
  assert.ok(partial, `a scrape while only some layers were measured (${analysis.scrapes.length} scrapes)`);
  assert.ok(value(partial.families.get('trtmix_progress_ratio'), { phase: 'analyze' })! < 1);
  assert.equal(partial.families.get('trtmix_run_info')!.samples[0].labels.command, 'analyze');

  const compare = await scrapeWhileRunning(['compare', '--model', f.model, '--data', f.data, '--metric', metric, '--agents', 'int8', 'fp16', 'random', '--evaluations', '2', '--calib-samples', '16', '--eval-samples', '16', '--screen-samples', '0', '--analysis-samples', '4', '--out', join(f.dir, 'c')]);
  assert.equal(compare.result.code, 0, compare.result.stderr);
  // The last agent may end between two scrapes; the ones before it are on the record by then.
  const agents = new Set(compare.scrapes.flatMap((s) => s.families.get('trtmix_best_score')?.samples.map((x) => x.labels.agent) ?? []));
  for (const agent of ['int8', 'fp16']) assert.ok(agents.has(agent), `best score of ${agent}: ${[...agents].join(', ')}`);
  assert.ok(compare.scrapes.some((s) => s.families.get('trtmix_run_info')?.samples[0].labels.command === 'compare'));
});

