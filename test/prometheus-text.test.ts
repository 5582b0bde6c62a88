import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpositionError, parseExposition, parseValue } from './prometheus-text.ts';

const GOOD = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400",} 3 1395066363000
# A plain comment
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
# HELP request_seconds A histogram.
# TYPE request_seconds histogram
request_seconds_bucket{le="0.05"} 24054
request_seconds_bucket{le="0.1"} 33444
request_seconds_bucket{le="+Inf"} 144320
request_seconds_sum 53423
request_seconds_count 144320
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 4773
rpc_seconds{quantile="1"} +Inf
rpc_seconds_sum 1.7560473e+07
rpc_seconds_count 2693
# TYPE odd gauge
odd NaN
odd{x="1"} -Inf
`;

test('the format\'s own example parses: families, types, HELP, escaped label values, timestamps, histogram and summary series', () => {
  const f = parseExposition(GOOD);
  assert.deepEqual([...f.keys()], ['http_requests_total', 'msdos_file_access_time_seconds', 'request_seconds', 'rpc_seconds', 'odd']);
  assert.equal(f.get('http_requests_total')!.type, 'counter');
  assert.equal(f.get('http_requests_total')!.help, 'The total number of HTTP requests.');
  assert.deepEqual(f.get('http_requests_total')!.samples[1], { name: 'http_requests_total', labels: { method: 'post', code: '400' }, value: 3, timestampMs: 1395066363000 });
  assert.deepEqual(f.get('msdos_file_access_time_seconds')!.samples[0].labels, { path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' });
  assert.equal(f.get('msdos_file_access_time_seconds')!.type, 'untyped');
  assert.deepEqual(f.get('request_seconds')!.samples.map((s) => s.name), ['request_seconds_bucket', 'request_seconds_bucket', 'request_seconds_bucket', 'request_seconds_sum', 'request_seconds_count']);
  assert.equal(f.get('rpc_seconds')!.samples[1].value, Infinity);
  assert.ok(Number.isNaN(f.get('odd')!.samples[0].value));
  assert.equal(f.get('odd')!.samples[1].value, -Infinity);
  assert.equal(parseValue('1e-9'), 1e-9);
  assert.ok(Number.isNaN(parseValue('Nan')), 'Go\'s ParseFloat reads NaN in any case');
});

const BAD: Array<[string, string, RegExp]> = [
  ['no newline at the end', 'a 1', /newline/],
  ['a bad metric name', 'a-b 1\n', /bad metric name/],
  ['a bad label name', 'a{1x="v"} 1\n', /bad label name/],
  ['a reserved label name', 'a{__x="v"} 1\n', /reserved/],
  ['a label twice', 'a{x="1",x="2"} 1\n', /given twice/],
  ['an unquoted label value', 'a{x=1} 1\n', /needs ="value"/],
  ['an unknown escape in a label value', 'a{x="\\t"} 1\n', /escapes only/],
  ['an unterminated label value', 'a{x="v} 1\n', /unterminated/],
  ['no value', 'a{x="v"}\n', /expected: name/],
  ['a value that is no number', 'a 1,5\n', /not a number/],
  ['a fractional timestamp', 'a 1 2.5\n', /timestamp/],
  ['too many fields', 'a 1 2 3\n', /expected: name/],
  ['a second HELP', '# HELP a x\n# HELP a y\na 1\n', /second HELP/],
  ['a second TYPE', '# TYPE a gauge\n# TYPE a gauge\na 1\n', /second TYPE/],
  ['TYPE after the samples', 'a 1\n# TYPE a gauge\n', /after its samples/],
  ['an unknown type', '# TYPE a meter\na 1\n', /unknown type/],
  ['a bad escape in HELP', '# HELP a x\\ty\na 1\n', /HELP text escapes/],
  ['a family in two groups', 'a{x="1"} 1\nb 2\na{x="2"} 3\n', /not in one group/],
  ['the same series twice', 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n', /given twice/],
  ['a negative counter', '# TYPE c counter\nc -1\n', /never negative/],
  ['a bucket without le', '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n', /needs an le/],
  ['buckets without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
  ['buckets that fall', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /cumulative/],
  ['a +Inf bucket other than the count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /equal h_count/],
  ['a histogram without _count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\n', /needs h_sum and h_count/],
  ['a summary quantile outside [0, 1]', '# TYPE s summary\ns{quantile="2"} 1\ns_sum 1\ns_count 1\n', /quantile label/],
];

for (const [what, text, message] of BAD) {
  test(`refused: ${what}`, () => {
    assert.throws(() => parseExposition(text), (e: unknown) => e instanceof ExpositionError && message.test((e as Error).message));
  });
}
