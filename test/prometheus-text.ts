/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests of what trtmix serves: it
 * throws, naming the line, on anything the format does not allow, where Prometheus's own parser is lenient.
 *
 * Rules checked (prometheus.io/docs/instrumenting/exposition_formats): every line ends with a newline; `# HELP name
 * text` at most once per name (text escapes only \\ and \n); `# TYPE name counter|gauge|histogram|summary|untyped`
 * at most once and before the family's first sample; metric and label names by their grammar, no label name starting
 * with __; label values in double quotes escaping only \\, \" and \n; each label once per sample; values as Go floats
 * (NaN, +Inf, -Inf), an optional integer timestamp; a family's lines in one group; no series twice. Histograms:
 * name_bucket with an `le` label ending at le="+Inf", cumulative counts, name_sum and name_count, +Inf bucket equal to
 * the count. Summaries: `quantile` labels in [0, 1], name_sum and name_count. Counters never negative.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (with _bucket, _sum, _count where the family has them). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface Family {
  name: string;
  help?: string;
  type: MetricType;
  samples: Sample[];
}

export class ExpositionError extends Error {}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)$/i;

/** A Go ParseFloat number as the format allows it: decimal, or NaN / Inf spelled out (any case, Inf with a sign). */
export function parseValue(text: string): number {
  if (/^nan$/i.test(text)) return NaN;
  if (!FLOAT.test(text)) throw new ExpositionError(`not a number: ${JSON.stringify(text)}`);
  if (/inf/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return Number(text);
}

function unescapeHelp(text: string, fail: (m: string) => never): string {
  return text.replace(/\\(.?)/g, (_, c: string) => (c === '\\' ? '\\' : c === 'n' ? '\n' : fail(`HELP text escapes only \\\\ and \\n, not \\${c}`)));
}

/** The label set of `{...}` starting at text[start] (the brace); returns the labels and the index after `}`. */
function readLabels(text: string, start: number, fail: (m: string) => never): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const name = /^[^=}\s]*/.exec(text.slice(i))![0];
    if (!LABEL_NAME.test(name)) fail(`bad label name ${JSON.stringify(name)}`);
    if (name.startsWith('__')) fail(`label name ${name} is reserved (starts with __)`);
    if (name in labels) fail(`label ${name} given twice`);
    i += name.length;
    if (text.slice(i, i + 2) !== '="') fail(`label ${name} needs ="value"`);
    i += 2;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') fail(`label ${name}: unterminated value`);
      if (c === '"') break;
      if (c === '\\') {
        const e = text[i + 1];
        if (e === '\\' || e === '"') value += e;
        else if (e === 'n') value += '\n';
        else fail(`label ${name}: a value escapes only \\\\, \\" and \\n, not \\${e ?? ''}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail(`after label ${name}: expected , or }`);
  }
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

/** The family a sample belongs to: its own name, or a histogram/summary whose name it extends. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix !== '_bucket'))) return base.name;
  }
  return name;
}

export function parseExposition(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new ExpositionError('the last line does not end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const lines = text.split('\n').slice(0, -1);
  const enter = (name: string, fail: (m: string) => never): Family => {
    if (current !== name) {
      if (closed.has(name)) fail(`the lines of ${name} are not in one group`);
      if (current !== undefined) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) { f = { name, type: 'untyped', samples: [] }; families.set(name, f); }
    return f;
  };
  const typed = new Set<string>();
  lines.forEach((line, n) => {
    const fail = (m: string): never => { throw new ExpositionError(`line ${n + 1}: ${m}: ${JSON.stringify(line)}`); };
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name)) fail(`bad metric name ${JSON.stringify(name)}`);
      const f = enter(name, fail);
      if (f.samples.length > 0) fail(`${kind} of ${name} after its samples`);
      if (kind === 'HELP') {
        if (f.help !== undefined) fail(`second HELP for ${name}`);
        f.help = unescapeHelp(rest, fail);
      } else {
        if (typed.has(name)) fail(`second TYPE for ${name}`);
        if (!TYPES.includes(rest.trim() as MetricType)) fail(`unknown type ${JSON.stringify(rest)}`);
        typed.add(name);
        f.type = rest.trim() as MetricType;
      }
      return;
    }
    const name = /^[^{\s]*/.exec(line)![0];
    if (!METRIC_NAME.test(name)) fail(`bad metric name ${JSON.stringify(name)}`);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = readLabels(line, i, fail));
    const fields = line.slice(i).trim().split(/[ \t]+/);
    if (!/^[ \t]/.test(line.slice(i)) || fields.length < 1 || fields.length > 2 || fields[0] === '') fail('expected: name{labels} value [timestamp]');
    let value = NaN;
    try { value = parseValue(fields[0]); } catch (e) { fail((e as Error).message); }
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) fail(`timestamp ${fields[1]} is not an integer of milliseconds`);
    const family = enter(familyOf(name, families), fail);
    const key = seriesKey(name, labels);
    if (series.has(key)) fail(`series ${key} given twice`);
    series.add(key);
    if (family.type === 'counter' && value < 0) fail('a counter is never negative');
    if (family.type === 'histogram' && name === `${family.name}_bucket` && labels.le === undefined) fail('a histogram bucket needs an le label');
    if (family.type === 'summary' && name === family.name) {
      const q = labels.quantile === undefined ? NaN : parseValue(labels.quantile);
      if (!(q >= 0 && q <= 1)) fail('a summary sample needs a quantile label in [0, 1]');
    }
    family.samples.push({ name, labels, value, ...(fields[1] !== undefined ? { timestampMs: Number(fields[1]) } : {}) });
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

/** Histogram and summary families: the series each needs, and cumulative, consistent buckets. */
function checkFamily(f: Family): void {
  if (f.type !== 'histogram' && f.type !== 'summary') return;
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le: _le, quantile: _q, ...rest } = s.labels;
    const key = seriesKey('', rest);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [key, samples] of groups) {
    const count = samples.find((s) => s.name === `${f.name}_count`);
    if (!count || !samples.some((s) => s.name === `${f.name}_sum`)) throw new ExpositionError(`${f.name}${key}: a ${f.type} needs ${f.name}_sum and ${f.name}_count`);
    if (f.type === 'summary') continue;
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`).map((s) => ({ le: parseValue(s.labels.le), value: s.value })).sort((a, b) => a.le - b.le);
    if (buckets.length === 0 || buckets.at(-1)!.le !== Infinity) throw new ExpositionError(`${f.name}${key}: the buckets must end with le="+Inf"`);
    if (buckets.some((b, i) => i > 0 && b.value < buckets[i - 1].value)) throw new ExpositionError(`${f.name}${key}: bucket counts must be cumulative`);
    if (buckets.at(-1)!.value !== count.value) throw new ExpositionError(`${f.name}${key}: the +Inf bucket must equal ${f.name}_count`);
  }
}
