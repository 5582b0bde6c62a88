/**
 * grafana-dashboard.json: a Grafana dashboard (the classic JSON model, importable as is through Dashboards > Import,
 * the HTTP API or file provisioning) over the metrics a running trtmix serves at --metrics-port. The Prometheus
 * data source is a variable, so the file names no data source of anyone's; job, instance and agent variables pick
 * the run when several are scraped.
 *
 * Panels: progress and the best policy so far; score and latency trends (best so far, latest, references);
 * evaluation rate and time; per-layer quantization error and sensitivity as heatmaps (one row per layer); the best
 * policy's precision per layer.
 */
import type { Dashboard, Panel, VariableModel } from '@grafana/schema';
import { LAYER_GAUGES } from '../analysis/files.ts';
import { METRIC } from './metrics.ts';

/** Grafana 10.3+ reads it as is; later versions migrate it on import. */
export const DASHBOARD_SCHEMA_VERSION = 39;
export const DASHBOARD_UID = 'trtmix-monitor';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const RUN = 'job=~"$job",instance=~"$instance"';
const AGENT = `${RUN},agent=~"$agent"`;
const layerGauge = (field: (typeof LAYER_GAUGES)[number]['field']) => LAYER_GAUGES.find((g) => g.field === field)!.name;

interface Query {
  expr: string;
  legend?: string;
  /** A table of the latest values instead of a time series. */
  instant?: boolean;
}

type Box = { x: number; y: number; w: number; h: number };

function panel(id: number, type: string, title: string, gridPos: Box, queries: Query[], extra: Partial<Panel> = {}): Panel {
  return {
    id,
    type,
    title,
    gridPos,
    datasource: DATASOURCE,
    targets: queries.map((q, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DATASOURCE,
      editorMode: 'code',
      expr: q.expr,
      legendFormat: q.legend ?? '__auto',
      range: !q.instant,
      instant: q.instant === true,
      ...(q.instant ? { format: 'table' } : {}),
    })),
    ...extra,
  };
}

const unit = (u: string, extra: Record<string, unknown> = {}) => ({ fieldConfig: { defaults: { unit: u, ...extra }, overrides: [] } });

function heatmap(id: number, title: string, gridPos: Box, metric: string, description: string): Panel {
  return panel(id, 'heatmap', title, gridPos, [{ expr: `${metric}{${RUN}}`, legend: '{{index}} {{layer}}' }], {
    description,
    options: {
      // Each series (layer) is a row as it comes: no bucketing of values into a histogram.
      calculate: false,
      cellGap: 1,
      color: { mode: 'scheme', scheme: 'Oranges', steps: 64, exponent: 0.5, fill: 'dark-orange', reverse: false },
      exemplars: { color: 'rgba(255,0,255,0.7)' },
      legend: { show: true },
      rowsFrame: { layout: 'auto' },
      tooltip: { mode: 'single', yHistogram: false, showColorScale: true },
      yAxis: { axisPlacement: 'left', reverse: true },
    },
  });
}

function queryVariable(name: string, label: string, query: string, all: boolean): VariableModel {
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: `${name}-variable` },
    definition: query,
    refresh: 2,
    sort: 1,
    includeAll: all,
    multi: all,
    ...(all ? { allValue: '.*' } : {}),
    current: all ? { text: 'All', value: '$__all' } : { text: '', value: '' },
  } as VariableModel;
}

export function grafanaDashboard(): Dashboard {
  const panels: Panel[] = [
    panel(1, 'bargauge', 'Progress', { x: 0, y: 0, w: 8, h: 6 }, [{ expr: `${METRIC.progressRatio}{${RUN}}`, legend: '{{phase}}' }], {
      ...unit('percentunit', { min: 0, max: 1 }),
      options: { orientation: 'horizontal', displayMode: 'gradient', reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, showUnfilled: true },
    }),
    panel(2, 'stat', 'Best score so far', { x: 8, y: 0, w: 4, h: 6 }, [{ expr: `${METRIC.bestScore}{${AGENT}}`, legend: '{{agent}}' }], {
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode: 'value_and_name' },
    }),
    panel(3, 'stat', 'Best latency so far', { x: 12, y: 0, w: 4, h: 6 }, [{ expr: `${METRIC.bestLatency}{${AGENT}}`, legend: '{{agent}}' }], {
      ...unit('ms'),
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode: 'value_and_name' },
    }),
    panel(4, 'stat', 'Evaluations', { x: 16, y: 0, w: 4, h: 6 }, [
      { expr: `sum by (agent) (${METRIC.evaluations}{${AGENT},kind="full"})`, legend: '{{agent}} full' },
      { expr: `sum by (agent) (${METRIC.feasible}{${AGENT}})`, legend: '{{agent}} feasible' },
    ], { options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'none', graphMode: 'none', textMode: 'value_and_name' } }),
    panel(5, 'stat', 'Time left', { x: 20, y: 0, w: 4, h: 6 }, [{ expr: `${METRIC.progressEta}{${RUN}}`, legend: '{{phase}}' }], {
      ...unit('s'),
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'none', graphMode: 'none', textMode: 'value_and_name' },
    }),
    panel(6, 'timeseries', 'Score: best so far and latest', { x: 0, y: 6, w: 12, h: 8 }, [
      { expr: `${METRIC.bestScore}{${AGENT}}`, legend: 'best {{agent}}' },
      { expr: `${METRIC.lastScore}{${AGENT}}`, legend: 'latest {{agent}}' },
      { expr: `${METRIC.fp32Score}{${RUN}}`, legend: 'FP32' },
    ], { description: 'Scores on the evaluation samples; latest = the policy most recently scored on all of them.' }),
    panel(7, 'timeseries', 'Latency: best so far and latest', { x: 12, y: 6, w: 12, h: 8 }, [
      { expr: `${METRIC.bestLatency}{${AGENT}}`, legend: 'best {{agent}}' },
      { expr: `${METRIC.lastLatency}{${AGENT}}`, legend: 'latest {{agent}}' },
      { expr: `${METRIC.fp16Latency}{${RUN}}`, legend: 'all-FP16' },
      { expr: `${METRIC.int8Latency}{${RUN}}`, legend: 'all-INT8' },
    ], unit('ms')),
    panel(8, 'timeseries', 'Evaluation rate', { x: 0, y: 14, w: 12, h: 8 }, [
      { expr: `sum by (agent, kind) (rate(${METRIC.evaluations}{${AGENT}}[$__rate_interval]))`, legend: '{{agent}} {{kind}}' },
      { expr: `sum by (agent) (rate(${METRIC.cacheHits}{${AGENT}}[$__rate_interval]))`, legend: '{{agent}} cache hits' },
    ], { ...unit('ops'), description: 'Policies scored per second (full data and screening subset), and cache hits.' }),
    panel(9, 'timeseries', 'Time per evaluation', { x: 12, y: 14, w: 12, h: 8 }, [
      { expr: `histogram_quantile(0.5, sum by (le, agent) (rate(${METRIC.evaluationSeconds}_bucket{${AGENT}}[$__rate_interval])))`, legend: 'median {{agent}}' },
      { expr: `histogram_quantile(0.9, sum by (le, agent) (rate(${METRIC.evaluationSeconds}_bucket{${AGENT}}[$__rate_interval])))`, legend: 'p90 {{agent}}' },
      { expr: `sum by (agent) (rate(${METRIC.evaluationSeconds}_sum{${AGENT}}[$__rate_interval])) / sum by (agent) (rate(${METRIC.evaluationSeconds}_count{${AGENT}}[$__rate_interval]))`, legend: 'mean {{agent}}' },
    ], unit('s')),
    heatmap(10, 'Per-layer quantization error (MSE of the output, layer alone in INT8)', { x: 0, y: 22, w: 12, h: 12 }, layerGauge('mse'),
      'One row per quantizable layer (its index and name); filled in as the sensitivity analysis measures the layers.'),
    heatmap(11, 'Per-layer sensitivity (metric drop, layer alone in INT8)', { x: 12, y: 22, w: 12, h: 12 }, layerGauge('int8Drop'),
      'Relative drop of the metric with only this layer in INT8; hot rows are the layers to keep in FP16.'),
    panel(12, 'timeseries', 'Best policy: layers per precision', { x: 0, y: 34, w: 8, h: 10 }, [
      { expr: `sum by (agent, precision) (${METRIC.bestLayerPrecision}{${AGENT}})`, legend: '{{agent}} {{precision}}' },
    ], { fieldConfig: { defaults: { custom: { stacking: { mode: 'normal', group: 'A' }, fillOpacity: 60, drawStyle: 'bars' } }, overrides: [] } }),
    panel(13, 'table', 'Best policy: precision of each layer', { x: 8, y: 34, w: 16, h: 10 }, [
      { expr: `${METRIC.bestLayerPrecision}{${AGENT}} == 1`, instant: true },
    ], {
      transformations: [{
        id: 'organize',
        options: { excludeByName: { Time: true, Value: true, __name__: true, job: true, instance: true }, indexByName: { agent: 0, index: 1, layer: 2, op: 3, precision: 4 }, renameByName: {} },
      }],
      options: { showHeader: true, sortBy: [{ displayName: 'index', desc: false }] },
    }),
  ];
  const datasource: VariableModel = { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1 } as VariableModel;
  return {
    id: null,
    uid: DASHBOARD_UID,
    title: 'trtmix: precision search',
    description: 'Live metrics of trtmix search / analyze / compare with --metrics-port (http://127.0.0.1:PORT/metrics).',
    tags: ['trtmix', 'tensorrt', 'quantization'],
    schemaVersion: DASHBOARD_SCHEMA_VERSION,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '5s',
    time: { from: 'now-30m', to: 'now' },
    timezone: 'browser',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        datasource,
        queryVariable('job', 'job', `label_values(${METRIC.runInfo}, job)`, true),
        queryVariable('instance', 'instance', `label_values(${METRIC.runInfo}{job=~"$job"}, instance)`, true),
        queryVariable('agent', 'agent', `label_values(${METRIC.bestScore}{job=~"$job",instance=~"$instance"}, agent)`, true),
      ],
    },
    panels,
  };
}

export function grafanaDashboardJson(): string {
  return `${JSON.stringify(grafanaDashboard(), null, 2)}\n`;
}
