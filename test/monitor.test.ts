import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDashboard } from '@grafana/schema';
import { RunMetrics } from '../src/monitor/metrics.ts';
import { checkMetricsPort, startMetricsServer } from '../src/monitor/server.ts';
import { monitored } from '../src/monitor/cli.ts';
import { runSearch, type HistoryLine } from '../src/search/run.ts';
import { isUserError } from '../src/errors.ts';
import type { PolicyFile } from '../src/policy.ts';
import { parseExposition } from './prometheus-text.ts';
import { ladderFixture } from './pareto-fixture.ts';
import { assertUserError, trtmix } from './cli-helpers.ts';
import { LAYERS, scrapeWhileRunning, slowMetric, value } from './monitor-helpers.ts';

test('the metrics server: /metrics on 127.0.0.1 in the text format, 404 and 405 elsewhere, a busy or bad port refused in one line, gone once closed', async () => {
  const metrics = new RunMetrics('search');
  const server = await startMetricsServer(metrics, 0);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const res = await fetch(server.url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const families = parseExposition(await res.text());
  assert.deepEqual(families.get('trtmix_run_info')!.samples.map((s) => s.labels.command), ['search']);
  assert.ok(families.has('process_resident_memory_bytes'), 'the process\'s own metrics come along');
  assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
  assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
  await assert.rejects(startMetricsServer(metrics, server.port), (e: Error) => isUserError(e) && /--metrics-port \d+: the port is already in use on 127\.0\.0\.1; choose another port, or 0 for any free one/.test(e.message));
  await server.close();
  await assert.rejects(fetch(server.url), 'nothing listens once closed');
  for (const bad of [-1, 65536, 1.5, Number.NaN]) assert.throws(() => checkMetricsPort(bad), /--metrics-port must be a port number from 1 to 65535/);
});

test('a scrape is answered while the command\'s own thread is busy: with the metrics as of the last moment it was free', async () => {
  const metrics = new RunMetrics('analyze');
  metrics.describeRun({ model: 'before.onnx', metric: 'top1' });
  const server = await startMetricsServer(metrics, 0);
  assert.equal(parseExposition(await (await fetch(server.url)).text()).get('trtmix_run_info')!.samples[0].labels.model, 'before.onnx');
  metrics.describeRun({ model: 'after.onnx', metric: 'top1' });
  // Another process scrapes while this thread is blocked for 4 s (as by a long synchronous step of a search).
  const child = spawn(process.execPath, ['-e', `fetch(${JSON.stringify(server.url)}).then((r) => r.text()).then((t) => console.log(JSON.stringify({ at: Date.now(), body: t })))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise((r) => child.on('close', r));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
  const unblocked = Date.now();
  await exited;
  const answer = JSON.parse(out) as { at: number; body: string };
  assert.ok(answer.at < unblocked, `answered ${answer.at - unblocked} ms after the thread was free again`);
  const model = parseExposition(answer.body).get('trtmix_run_info')!.samples[0].labels.model;
  assert.ok(['before.onnx', 'after.onnx'].includes(model), 'the last metrics the thread gave');
  assert.equal(parseExposition(await (await fetch(server.url)).text()).get('trtmix_run_info')!.samples[0].labels.model, 'after.onnx', 'fresh again once the thread is free');
  await server.close();
});

test('a search serves progress, best policy, evaluations and per-layer metrics at --metrics-port while it runs, and stops serving when it ends', async () => {
  const f = ladderFixture('trtmix-monitor-');
  const out = join(f.dir, 'run');
  const { result, url, scrapes } = await scrapeWhileRunning([
    'search', '--model', f.model, '--data', f.data, '--metric', slowMetric(f.dir, 30), '--agent', 'dqn', '--episodes', '20', '--max-drop', '0.05',
    '--calib-samples', '16', '--eval-samples', '32', '--screen-samples', '0', '--analysis-samples', '8', '--out', out,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(url, `the URL is printed:\n${result.stderr}`);
  await assert.rejects(fetch(url!), 'the server is gone with the command');
  const history = readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
  const full = history.filter((h) => h.confirmed).length;
  const during = scrapes.filter((s) => {
    const evaluations = value(s.families.get('trtmix_search_evaluations_total'), { kind: 'full' }) ?? 0;
    return evaluations >= 1 && evaluations < full && value(s.families.get('trtmix_progress_ratio'), { phase: 'search (dqn)' })! < 1;
  });
  assert.ok(during.length > 0, `scraped in the middle of the search (${scrapes.length} scrapes, ${full} evaluations)`);
  const m = during.at(-1)!.families;
  assert.equal(m.get('trtmix_search_evaluations_total')!.type, 'counter');
  assert.equal(m.get('trtmix_evaluation_seconds')!.type, 'histogram');
  assert.deepEqual(new Set(m.get('trtmix_evaluation_seconds')!.samples.map((s) => s.name)), new Set(['trtmix_evaluation_seconds_bucket', 'trtmix_evaluation_seconds_sum', 'trtmix_evaluation_seconds_count']));
  assert.deepEqual(m.get('trtmix_run_info')!.samples[0].labels, { command: 'search', model: f.model, metric: 'slow-cosine', target: 't4' });
  for (const phase of ['calibration', 'sensitivity analysis']) assert.equal(value(m.get('trtmix_progress_ratio'), { phase }), 1, `${phase} done`);
  const scores = new Set(history.filter((h) => h.confirmed && h.feasible).map((h) => h.score));
  assert.ok(scores.has(value(m.get('trtmix_best_score'), { agent: 'dqn' })!), 'the best score so far is one the search measured');
  assert.ok(value(m.get('trtmix_best_latency_ms'), { agent: 'dqn' })! > 0);
  for (const name of ['trtmix_quantization_error', 'trtmix_layer_int8_drop', 'trtmix_layer_leave_one_out_drop', 'trtmix_layer_sensitivity_rank']) {
    assert.deepEqual(m.get(name)!.samples.map((s) => s.labels.layer).sort(), LAYERS, `${name}: one sample per layer`);
  }
  const precision = m.get('trtmix_best_layer_precision')!.samples;
  for (const layer of LAYERS) {
    const on = precision.filter((s) => s.labels.layer === layer && s.value === 1);
    assert.equal(on.length, 1, `${layer} has exactly one precision in the best policy`);
  }
  assert.ok(scrapes.every((s) => /^text\/plain; version=0\.0\.4/.test(s.contentType ?? '')));
  // What the last scrape says of the finished run matches policy.json.
  const policy = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')) as PolicyFile;
  const last = scrapes.at(-1)!.families;
  if (value(last.get('trtmix_progress_ratio'), { phase: 'search (dqn)' }) === 1) {
    assert.equal(value(last.get('trtmix_best_score'), { agent: 'dqn' }), policy.metrics.score);
  }
});

test('a busy --metrics-port stops the command before any work: one line, exit 2', async () => {
  const f = ladderFixture('trtmix-monitor-');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = await trtmix(['search', '--model', f.model, '--data', f.data, '--metrics-port', String(port), '--out', join(f.dir, 'run')]);
    assertUserError(r, new RegExp(`^trtmix: --metrics-port ${port}: the port is already in use`));
    assert.doesNotMatch(r.stderr, /calibration/, 'refused before calibration');
  } finally {
    blocker.close();
  }
});

/** Metric names a PromQL expression reads: identifiers outside strings, label matchers, ranges and function calls. */
function promqlMetricNames(expr: string): string[] {
  const stripped = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  // Whole identifiers only (a number such as 0.5 is no identifier); one followed by ( is a function or aggregation.
  const words = [...stripped.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)].filter((m) => !/^\s*\(/.test(stripped.slice(m.index! + m[0].length))).map((m) => m[0]);
  return words.filter((w) => !/^(and|or|unless|bool|offset)$/.test(w));
}

test('grafana-dashboard.json in the run folder is a Grafana dashboard model whose every query reads metrics that /metrics serves', async () => {
  const f = ladderFixture('trtmix-monitor-');
  const out = join(f.dir, 'run');
  let url = '';
  let body = '';
  await monitored('search', { 'metrics-port': 0 }, (line) => { url = /http:\S+/.exec(line)?.[0] ?? url; }, async (monitor) => {
    await runSearch({ model: f.model, data: f.data, out, agent: 'greedy', seed: 0, 'calib-samples': 16, 'eval-samples': 16, 'screen-samples': 0, 'analysis-samples': 8, metric: 'cosine', 'max-drop': 0.05 }, { quiet: true, log: () => {}, monitor });
    body = await (await fetch(url)).text();
  });
  const served = parseExposition(body);
  const sampleNames = new Set([...served.values()].flatMap((fam) => fam.samples.map((s) => s.name)));
  const d = JSON.parse(readFileSync(join(out, 'grafana-dashboard.json'), 'utf8'));

  assert.ok(Number.isInteger(d.schemaVersion) && d.schemaVersion >= 36 && d.schemaVersion <= defaultDashboard.schemaVersion!, `schemaVersion ${d.schemaVersion}: Grafana 9+ (new heatmap) up to what @grafana/schema knows (${defaultDashboard.schemaVersion})`);
  assert.equal(d.id, null, 'no instance id: Grafana assigns one on import');
  assert.match(d.uid, /^[a-zA-Z0-9_-]{8,40}$/);
  assert.equal(typeof d.title, 'string');
  const variables = new Map<string, { type: string; query: unknown }>(d.templating.list.map((v: { name: string; type: string; query: unknown }) => [v.name, v]));
  assert.equal(variables.get('datasource')?.type, 'datasource');
  assert.equal(variables.get('datasource')?.query, 'prometheus');
  const ids = new Set<number>();
  const cells = new Set<string>();
  const types = new Set<string>();
  for (const p of d.panels) {
    assert.ok(Number.isInteger(p.id) && !ids.has(p.id), `panel ids are unique integers: ${p.id}`);
    ids.add(p.id);
    assert.ok(['timeseries', 'stat', 'heatmap', 'table', 'bargauge'].includes(p.type), `a core panel type: ${p.type}`);
    types.add(p.type);
    const g = p.gridPos;
    assert.ok([g.x, g.y, g.w, g.h].every(Number.isInteger) && g.x >= 0 && g.y >= 0 && g.w >= 1 && g.h >= 1 && g.x + g.w <= 24, `${p.title}: gridPos inside the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
      assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
      cells.add(`${x},${y}`);
    }
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' });
    assert.ok(p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) {
      assert.match(t.refId, /^[A-Z]$/);
      for (const v of t.expr.matchAll(/\$(\w+)/g)) assert.ok(v[1].startsWith('__') || variables.has(v[1]), `${p.title}: $${v[1]} is a dashboard variable`);
      const names = promqlMetricNames(t.expr);
      assert.ok(names.length > 0, `${p.title}: ${t.expr} reads a metric`);
      for (const name of names) assert.ok(sampleNames.has(name), `${p.title}: ${name} (in ${t.expr}) is served at /metrics`);
    }
  }
  for (const type of ['heatmap', 'timeseries']) assert.ok(types.has(type), `a ${type} panel`);
  const heatmaps = d.panels.filter((p: { type: string }) => p.type === 'heatmap');
  assert.ok(heatmaps.some((p: { targets: Array<{ expr: string }> }) => p.targets[0].expr.startsWith('trtmix_quantization_error')), 'the per-layer error heatmap');
  assert.ok(d.panels.some((p: { targets: Array<{ expr: string }> }) => p.targets.some((t) => /rate\(trtmix_search_evaluations_total/.test(t.expr))), 'the evaluation rate');
  assert.deepEqual(promqlMetricNames('histogram_quantile(0.5, sum by (le, agent) (rate(trtmix_evaluation_seconds_bucket{job=~"$job"}[$__rate_interval])))'), ['trtmix_evaluation_seconds_bucket'], 'the name extraction itself');
});
