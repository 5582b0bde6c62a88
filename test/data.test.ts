import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/errors.ts';
import {
  batches, encodeNpy, encodeNpz, loadDataset, loadLabels, parseLabelText, parseNpy, parseNpz, sliceBatch,
  splitDataset, takeSamples, writeNpy, writeNpz, type Dataset, type NpyArray,
} from '../src/data/index.ts';

/** Files written by NumPy 2.4 (np.save, format.write_array with version=(2,0)/(3,0), np.savez, np.savez_compressed). */
const NUMPY: Record<string, string> = {
  f4_v1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  f4_v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  f4_v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPgAAAD8AAEA/AACAPwAAoD8=',
  i8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoDAAAAAAAAAP//////////BwAAAAAAAAA=',
  i4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAgAAAA==',
  u1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoA/w==',
  f8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAADgPwAAAAAAAPg/',
  u5: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPFU1JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAphAAAAYgAAAAAAAAAAAAAAAAAAAGgAAADpAAAAbAAAAGwAAABvAAAAh2UAAFdbAAAAAAAAAAAAAAAAAAA=',
  be: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAPoAAAD8AAAA/QAAAP4AAAD+gAAA=',
  fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAPwAAgD4AAIA/AAAAPwAAoD8=',
  scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAACBA',
  npz_stored: 'UEsDBC0AAAAAAAAAIQAKnACk//////////8FABQAeC5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAzKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAgD4AAAA/AABAPwAAgD8AAKA/UEsDBC0AAAAAAAAAIQCayqvn//////////8FABQAeS5ucHkBABAAiAAAAAAAAACIAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAACAPwAAAEBQSwECLQMtAAAAAAAAACEACpwApJgAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAeC5ucHlQSwECLQMtAAAAAAAAACEAmsqr54gAAACIAAAABQAAAAAAAAAAAAAAgAHPAAAAeS5ucHlQSwUGAAAAAAIAAgBmAAAAjgEAAAAA',
  npz_deflated: 'UEsDBC0AAAAIAAAAIQAKnACk//////////8FABQAeC5ucHkBABAAmAAAAAAAAABWAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgYwaLADEvYMDA5A3ADEC+wBUEsDBC0AAAAIAAAAIQCayqvn//////////8FABQAeS5ucHkBABAAiAAAAAAAAABMAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6mjoKtQoUAC4GhgZ7BgYGBwBQSwECLQMtAAAACAAAACEACpwApFYAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAeC5ucHlQSwECLQMtAAAACAAAACEAmsqr50wAAACIAAAABQAAAAAAAAAAAAAAgAGNAAAAeS5ucHlQSwUGAAAAAAIAAgBmAAAAEAEAAAAA',
};
const b64 = (k: string) => new Uint8Array(Buffer.from(NUMPY[k], 'base64'));
const A = [0, 0.25, 0.5, 0.75, 1, 1.25];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'trtmix-data-'));
}

/** The call throws a UserError whose single-line message matches every pattern. */
function assertUserError(fn: () => unknown, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof UserError, `expected a UserError, got ${String(caught)}`);
  assert.ok(!caught.message.includes('\n'), `message must be one line: ${caught.message}`);
  for (const p of patterns) assert.match(caught.message, p);
}

const f32 = (shape: number[], fill: (i: number) => number = (i) => i): NpyArray => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
};

test('npy: reads float32 written by numpy in header versions 1, 2 and 3', () => {
  for (const k of ['f4_v1', 'f4_v2', 'f4_v3']) {
    const a = parseNpy(b64(k), `${k}.npy`);
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.shape, [2, 3]);
    assert.deepEqual(Array.from(a.data as Float32Array), A);
  }
});

test('npy: reads label dtypes (int64, int32, uint8, float64, unicode) and 0-d arrays', () => {
  assert.deepEqual(Array.from(parseNpy(b64('i8'), 'i8.npy').data as BigInt64Array), [3n, -1n, 7n]);
  assert.deepEqual(Array.from(parseNpy(b64('i4'), 'i4.npy').data as Int32Array), [1, 2]);
  assert.deepEqual(Array.from(parseNpy(b64('u1'), 'u1.npy').data as Uint8Array), [0, 255]);
  assert.deepEqual(Array.from(parseNpy(b64('f8'), 'f8.npy').data as Float64Array), [0.5, 1.5]);
  const u = parseNpy(b64('u5'), 'u5.npy');
  assert.equal(u.dtype, 'unicode');
  assert.deepEqual(u.data, ['ab', 'héllo', '文字']);
  const s = parseNpy(b64('scalar'), 's.npy');
  assert.deepEqual(s.shape, []);
  assert.deepEqual(Array.from(s.data as Float32Array), [2.5]);
});

test('npy: encodeNpy writes the same bytes as np.save and round-trips every numeric dtype', () => {
  assert.deepEqual(encodeNpy(f32([2, 3], (i) => A[i])), b64('f4_v1'));
  assert.deepEqual(encodeNpy({ dtype: 'int64', shape: [3], data: BigInt64Array.from([3n, -1n, 7n]) }), b64('i8'));
  const cases: NpyArray[] = [
    { dtype: 'int32', shape: [2, 2], data: Int32Array.from([1, -2, 3, -4]) },
    { dtype: 'uint8', shape: [3], data: Uint8Array.from([0, 7, 255]) },
    { dtype: 'float64', shape: [1, 2], data: Float64Array.from([Math.PI, -1e300]) },
  ];
  for (const c of cases) {
    const back = parseNpy(encodeNpy(c), 'c.npy');
    assert.equal(back.dtype, c.dtype);
    assert.deepEqual(back.shape, c.shape);
    assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(c.data as ArrayLike<number>));
  }
  // A header past 64 KiB needs format 2.0.
  const wide: NpyArray = f32(Array.from({ length: 25000 }, () => 1));
  const big = encodeNpy(wide);
  assert.equal(big[6], 2);
  assert.deepEqual(parseNpy(big, 'wide.npy').shape.length, 25000);
});

test('npy: big-endian, Fortran order, truncated and non-npy bytes are user errors', () => {
  assertUserError(() => parseNpy(b64('be'), 'be.npy'), /be\.npy/, /big-endian/, /newbyteorder/);
  assertUserError(() => parseNpy(b64('fortran'), 'f.npy'), /Fortran order/, /ascontiguousarray/);
  const whole = b64('f4_v1');
  assertUserError(() => parseNpy(whole.subarray(0, whole.length - 5), 't.npy'), /truncated/, /\[2,3\]/);
  assertUserError(() => parseNpy(new TextEncoder().encode('hello world, not numpy'), 'x.npy'), /not a \.npy file/, /np\.save/);
});

test('npz: reads np.savez (stored, zip64) and np.savez_compressed (deflated) archives', () => {
  for (const k of ['npz_stored', 'npz_deflated']) {
    const arrays = parseNpz(b64(k), `${k}.npz`);
    assert.deepEqual([...arrays.keys()].sort(), ['x', 'y']);
    assert.deepEqual(Array.from(arrays.get('x')!.data as Float32Array), A);
    assert.deepEqual(arrays.get('y')!.shape, [2]);
  }
});

test('npz: encodeNpz round-trips, stored or deflated, byte-identical across runs', () => {
  const arrays = { images: f32([4, 2, 2]), scale: f32([4, 1], (i) => i / 8) };
  for (const compress of [false, true]) {
    const bytes = encodeNpz(arrays, { compress });
    assert.deepEqual(encodeNpz(arrays, { compress }), bytes);
    const back = parseNpz(bytes, 'a.npz');
    assert.deepEqual(Array.from(back.get('images')!.data as Float32Array), Array.from(arrays.images.data as Float32Array));
    assert.deepEqual(back.get('scale')!.shape, [4, 1]);
  }
  const zeros = { z: f32([64, 64], () => 0) };
  assert.ok(encodeNpz(zeros, { compress: true }).length < encodeNpz(zeros).length / 10);
  assertUserError(() => parseNpz(b64('f4_v1'), 'd.npz'), /d\.npz is not a \.npz file/);
  const broken = b64('npz_deflated').slice();
  broken.fill(0x55, 60, 120);
  assertUserError(() => parseNpz(broken, 'broken.npz'), /broken\.npz/);
});

test('labels: .txt keeps strings (CRLF, trailing newline), .json arrays, .npy numbers and rows', () => {
  const dir = tmp();
  assert.deepEqual(parseLabelText('a b\r\n  7\n\nlast\n'), ['a b', '  7', '', 'last']);
  assert.deepEqual(parseLabelText('x\ny'), ['x', 'y']);
  writeFileSync(join(dir, 'l.txt'), '\ufeffhello\n42\n');
  assert.deepEqual(loadLabels(join(dir, 'l.txt')), ['hello', '42']);
  writeFileSync(join(dir, 'l.json'), JSON.stringify([1, 'two', [3]]));
  assert.deepEqual(loadLabels(join(dir, 'l.json')), [1, 'two', [3]]);
  writeFileSync(join(dir, 'l.npy'), b64('i8'));
  assert.deepEqual(loadLabels(join(dir, 'l.npy')), [3, -1, 7]);
  writeNpy(join(dir, 'rows.npy'), f32([2, 3], (i) => A[i]));
  assert.deepEqual(loadLabels(join(dir, 'rows.npy')), [[0, 0.25, 0.5], [0.75, 1, 1.25]]);
  writeFileSync(join(dir, 'obj.json'), '{"labels": [1]}');
  assertUserError(() => loadLabels(join(dir, 'obj.json')), /JSON array/);
  writeFileSync(join(dir, 'bad.json'), '[1,');
  assertUserError(() => loadLabels(join(dir, 'bad.json')), /not valid JSON/);
  assertUserError(() => loadLabels(join(dir, 'l.csv')), /\.txt.*\.json.*\.npy/);
  assertUserError(() => loadLabels(join(dir, 'missing.txt')), /does not exist/);
});

const REC_INPUT = [{ name: 'x', dims: ['batch', 3, 4, 'width'] }];

test('loadDataset: a .npy for a single-input model, with labels', () => {
  const dir = tmp();
  writeNpy(join(dir, 'd.npy'), f32([5, 3, 4, 6], (i) => i / 100));
  writeFileSync(join(dir, 'l.txt'), 'a\nb\nc\nd\ne\n');
  const ds = loadDataset({ dataPath: join(dir, 'd.npy'), labelsPath: join(dir, 'l.txt'), inputs: REC_INPUT });
  assert.equal(ds.count, 5);
  assert.deepEqual(ds.inputs.x.dims, [5, 3, 4, 6]);
  assert.ok(ds.inputs.x.data instanceof Float32Array);
  assert.ok(Math.abs(ds.inputs.x.data[7] - 0.07) < 1e-7);
  assert.deepEqual(ds.labels, ['a', 'b', 'c', 'd', 'e']);
  // -1 and null mark dynamic dimensions too.
  const dyn = loadDataset({ dataPath: join(dir, 'd.npy'), inputs: [{ name: 'x', dims: [-1, 3, null, -1] }] });
  assert.equal(dyn.labels, undefined);
  assert.equal(dyn.count, 5);
});

test('loadDataset: a .npz with one array per input; extra arrays are ignored', () => {
  const dir = tmp();
  writeNpz(join(dir, 'd.npz'), { image: f32([3, 2, 2]), meta: f32([3, 4]), unused: f32([1]) }, { compress: true });
  const ds = loadDataset({
    dataPath: join(dir, 'd.npz'),
    inputs: [{ name: 'image', dims: [1, 2, 2] }, { name: 'meta', dims: ['n', 4] }],
  });
  assert.equal(ds.count, 3);
  assert.deepEqual(Object.keys(ds.inputs).sort(), ['image', 'meta']);
  assert.deepEqual(ds.inputs.meta.dims, [3, 4]);
});

test('loadDataset: every bad input is a one-line UserError that says how to fix it', () => {
  const dir = tmp();
  const p = (f: string) => join(dir, f);
  writeNpy(p('ok.npy'), f32([4, 3, 4, 6]));
  assertUserError(() => loadDataset({ dataPath: p('nope.npy'), inputs: REC_INPUT }), /nope\.npy does not exist/);
  writeFileSync(p('img.png'), Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  assertUserError(() => loadDataset({ dataPath: p('img.png'), inputs: REC_INPUT }), /img\.png must be a \.npy/, /\.npz/);
  writeFileSync(p('corrupt.npy'), Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]));
  assertUserError(() => loadDataset({ dataPath: p('corrupt.npy'), inputs: REC_INPUT }), /corrupt\.npy is not a \.npy file/, /np\.save/);
  writeFileSync(p('corrupt.npz'), 'PK\x03\x04garbage-garbage-garbage');
  assertUserError(() => loadDataset({ dataPath: p('corrupt.npz'), inputs: REC_INPUT }), /corrupt\.npz/, /np\.savez/);
  writeNpy(p('f64.npy'), { dtype: 'float64', shape: [4, 3, 4, 6], data: new Float64Array(288) });
  assertUserError(() => loadDataset({ dataPath: p('f64.npy'), inputs: REC_INPUT }), /f64\.npy is float64, but model input 'x' takes float32/, /x\.astype\(np\.float32\)/);
  writeNpy(p('shape.npy'), f32([4, 3, 5, 6]));
  assertUserError(
    () => loadDataset({ dataPath: p('shape.npy'), inputs: REC_INPUT }),
    /shape\.npy has shape \[4,3,5,6\]/, /input 'x' expects \[N,3,4,\?\]/,
  );
  writeNpy(p('nobatch.npy'), f32([3, 4, 6]));
  assertUserError(() => loadDataset({ dataPath: p('nobatch.npy'), inputs: REC_INPUT }), /\[3,4,6\]/, /sample axis is missing/);
  writeNpy(p('nan.npy'), f32([4, 3, 4, 6], (i) => (i === 2 * 72 + 5 || i === 3 * 72 ? NaN : 0)));
  assertUserError(() => loadDataset({ dataPath: p('nan.npy'), inputs: REC_INPUT }), /NaN in sample 2/, /2 samples/);
  writeNpy(p('inf.npy'), f32([4, 3, 4, 6], (i) => (i === 71 ? -Infinity : 0)));
  assertUserError(() => loadDataset({ dataPath: p('inf.npy'), inputs: REC_INPUT }), /-Inf in sample 0/);
  writeFileSync(p('three.txt'), 'a\nb\nc\n');
  assertUserError(
    () => loadDataset({ dataPath: p('ok.npy'), labelsPath: p('three.txt'), inputs: REC_INPUT }),
    /three\.txt has 3 labels but ok\.npy has 4 samples/,
  );
  writeNpz(p('two.npz'), { a: f32([4, 2]) });
  const twoInputs = [{ name: 'a', dims: ['n', 2] }, { name: 'input.1', dims: ['n', 2] }];
  assertUserError(
    () => loadDataset({ dataPath: p('two.npz'), inputs: twoInputs }),
    /no array for model input 'input\.1'/, /arrays found: 'a'/, /\*\*\{'input\.1': x\}/,
  );
  assertUserError(() => loadDataset({ dataPath: p('ok.npy'), inputs: twoInputs }), /one array but the model has 2 inputs/, /np\.savez/);
  writeNpz(p('uneven.npz'), { a: f32([4, 2]), 'input.1': f32([3, 2]) });
  assertUserError(() => loadDataset({ dataPath: p('uneven.npz'), inputs: twoInputs }), /3 samples but 'a' has 4/);
  writeNpy(p('empty.npy'), f32([0, 3, 4, 6]));
  assertUserError(() => loadDataset({ dataPath: p('empty.npy'), inputs: REC_INPUT }), /0 samples/);
  // No temp files left behind by the atomic writes.
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

function numbered(n: number): Dataset {
  return {
    count: n,
    inputs: { x: { data: Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2)), dims: [n, 2] } },
    labels: Array.from({ length: n }, (_, i) => `s${i}`),
  };
}

test('splitDataset: disjoint when the data suffices, same seed same split', () => {
  const ds = numbered(1000);
  const a = splitDataset(ds, { calibSamples: 200, evalSamples: 300, seed: 7 });
  const b = splitDataset(ds, { calibSamples: 200, evalSamples: 300, seed: 7 });
  const c = splitDataset(ds, { calibSamples: 200, evalSamples: 300, seed: 8 });
  assert.deepEqual(a.calibIndices, b.calibIndices);
  assert.deepEqual(a.evalIndices, b.evalIndices);
  assert.notDeepEqual(a.evalIndices, c.evalIndices);
  assert.equal(a.overlap, 0);
  assert.equal(a.calib.count, 200);
  assert.equal(a.eval.count, 300);
  const ev = new Set(a.evalIndices);
  assert.ok(a.calibIndices.every((i) => !ev.has(i)));
  assert.deepEqual(a.evalIndices, [...a.evalIndices].sort((x, y) => x - y));
  // The copied data and labels follow the indices.
  a.evalIndices.forEach((s, k) => {
    assert.equal(a.eval.inputs.x.data[2 * k + 1], s);
    assert.equal(a.eval.labels![k], `s${s}`);
  });
  // Not just the first samples: the shuffle reaches the whole set.
  assert.ok(Math.max(...a.calibIndices) > 900 && Math.min(...a.calibIndices) < 100);
});

test('splitDataset: a small set gives both parts their full size with the least overlap', () => {
  const s = splitDataset(numbered(300), { calibSamples: 128, evalSamples: 256, seed: 0 });
  assert.equal(s.calib.count, 128);
  assert.equal(s.eval.count, 256);
  assert.equal(s.overlap, 84);
  const ev = new Set(s.evalIndices);
  assert.equal(s.calibIndices.filter((i) => ev.has(i)).length, 84);
  assert.equal(new Set([...s.calibIndices, ...s.evalIndices]).size, 300);
  const tiny = splitDataset(numbered(10), { calibSamples: 500, evalSamples: 500, seed: 0 });
  assert.equal(tiny.calib.count, 10);
  assert.equal(tiny.eval.count, 10);
  assertUserError(
    () => splitDataset(numbered(300), { calibSamples: 128, evalSamples: 256, seed: 0, allowOverlap: false }),
    /300 samples/, /fewer/,
  );
  assertUserError(() => splitDataset(numbered(3), { calibSamples: 0, evalSamples: 1, seed: 0 }), /calibSamples/);
});

test('sliceBatch and batches: contiguous views with the batch dimension first', () => {
  const ds = numbered(7);
  const b = sliceBatch(ds, 2, 5);
  assert.deepEqual(b.x.dims, [3, 2]);
  assert.deepEqual(Array.from(b.x.data as Float32Array), [2, 2, 3, 3, 4, 4]);
  const all = [...batches(ds, 3)];
  assert.deepEqual(all.map((x) => [x.start, x.end, x.inputs.x.dims[0]]), [[0, 3, 3], [3, 6, 3], [6, 7, 1]]);
  assert.throws(() => sliceBatch(ds, 5, 9), RangeError);
  const picked = takeSamples(ds, [6, 0]);
  assert.deepEqual(Array.from(picked.inputs.x.data as Float32Array), [6, 6, 0, 0]);
  assert.deepEqual(picked.labels, ['s6', 's0']);
});
