/**
 * Prometheus text exposition format (version 0.0.4), written by hand: a metric family is one `# HELP` line, one
 * `# TYPE` line, then all of its samples together; label values escape backslash, double quote and newline;
 * HELP text escapes backslash and newline; values are Go floats (NaN, +Inf, -Inf spelled out); every line ends
 * with a newline. Names that break the format are a bug in the caller and throw.
 */

export interface PromSample {
  labels?: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'untyped';
  samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelSet(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return '';
  for (const [k] of entries) {
    if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`invalid Prometheus label name ${JSON.stringify(k)}`);
  }
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export function formatExposition(families: readonly PromFamily[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid Prometheus metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`metric family ${f.name} given twice; its samples must be together`);
    seen.add(f.name);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    const series = new Set<string>();
    for (const s of f.samples) {
      const labels = labelSet(s.labels);
      if (series.has(labels)) throw new Error(`metric ${f.name} has two samples with labels ${labels}`);
      series.add(labels);
      lines.push(`${f.name}${labels} ${formatValue(s.value)}`);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
