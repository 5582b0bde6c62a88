/**
 * The three splits (calibration, search, test): disjoint by sample index in every mode, seeded, sized by the rules
 * the README states, with one line for the user where a default had to give way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../src/errors.ts';
import { MIN_TEST_SAMPLES, splitDataset, splitSizes, type Dataset, type DatasetSplit, type SplitOptions } from '../src/data/dataset.ts';

/** Sample s holds the value s in both of its elements and the label `s<s>`, so copied data can be traced back. */
function numbered(n: number): Dataset {
  return {
    count: n,
    inputs: { x: { data: Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2)), dims: [n, 2] } },
    labels: Array.from({ length: n }, (_, i) => `s${i}`),
  };
}

function assertUserError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

/** No index in two splits, no index twice, every index in range, and each split's data is its indices' samples. */
function assertDisjoint(ds: Dataset, s: DatasetSplit): void {
  const parts: Array<[string, number[], Dataset | undefined]> = [['calib', s.calibIndices, s.calib], ['search', s.evalIndices, s.eval], ['test', s.testIndices, s.test]];
  const seen = new Map<number, string>();
  for (const [name, indices, part] of parts) {
    for (const i of indices) {
      assert.ok(Number.isInteger(i) && i >= 0 && i < ds.count, `${name}: index ${i} out of range`);
      assert.equal(seen.get(i), undefined, `sample ${i} is in ${seen.get(i)} and ${name}`);
      seen.set(i, name);
    }
    assert.equal(part?.count ?? 0, indices.length, `${name}: data and indices differ in size`);
    indices.forEach((i, k) => {
      assert.equal(part!.inputs.x.data[2 * k + 1], i);
      assert.equal(part!.labels![k], `s${i}`);
    });
  }
}

const MODES: Array<[string, number, Omit<SplitOptions, 'seed'>, [number, number, number]]> = [
  ['defaults on ample data: the test split takes the rest', 1000, {}, [128, 256, 616]],
  ['defaults on the built-in example\'s 512 lines', 512, {}, [128, 256, 128]],
  ['defaults on small data shrink, keeping 20 % for test', 300, {}, [80, 160, 60]],
  ['explicit calibration and search sizes, the rest is test', 48, { calibSamples: 16, evalSamples: 16 }, [16, 16, 16]],
  ['explicit --test-samples', 1000, { testSamples: 100 }, [128, 256, 100]],
  ['explicit --test-samples with shrinking defaults', 200, { testSamples: 80 }, [40, 80, 80]],
  ['--test-samples 0: no test split', 400, { testSamples: 0 }, [128, 256, 0]],
  ['--test-data: this data holds calibration and search only', 1000, { separateTest: true, testSamples: 50 }, [128, 256, 0]],
  ['all three explicit', 100, { calibSamples: 30, evalSamples: 40, testSamples: 30 }, [30, 40, 30]],
];

for (const [what, n, options, [calib, search, testCount]] of MODES) {
  test(`splitDataset, ${what}: disjoint by sample index, sizes ${calib}/${search}/${testCount}`, () => {
    const ds = numbered(n);
    const a = splitDataset(ds, { ...options, seed: 7 });
    assertDisjoint(ds, a);
    assert.deepEqual([a.calibIndices.length, a.evalIndices.length, a.testIndices.length], [calib, search, testCount]);
    assert.equal(a.test === undefined, testCount === 0);
    // Same seed, same split; another seed, another one.
    const b = splitDataset(ds, { ...options, seed: 7 });
    assert.deepEqual([b.calibIndices, b.evalIndices, b.testIndices], [a.calibIndices, a.evalIndices, a.testIndices]);
    assert.notDeepEqual(splitDataset(ds, { ...options, seed: 8 }).evalIndices, a.evalIndices);
  });
}

test('splitDataset: the search split is in shuffled order, so screening on its first samples sees a random subset', () => {
  const s = splitDataset(numbered(1000), { seed: 0 });
  const screen = s.evalIndices.slice(0, 64);
  assert.notDeepEqual(s.evalIndices, [...s.evalIndices].sort((x, y) => x - y));
  assert.ok(Math.min(...screen) < 100 && Math.max(...screen) > 900, `screening subset spans ${Math.min(...screen)}..${Math.max(...screen)}`);
  // Calibration and test are kept ascending (their order changes nothing).
  assert.deepEqual(s.calibIndices, [...s.calibIndices].sort((x, y) => x - y));
  assert.deepEqual(s.testIndices, [...s.testIndices].sort((x, y) => x - y));
  // The shuffle reaches the whole set in every split.
  for (const part of [s.calibIndices, s.testIndices]) assert.ok(Math.min(...part) < 100 && Math.max(...part) > 900);
});

test('splitSizes: one note when a default shrinks or the test split cannot be kept, none otherwise', () => {
  assert.deepEqual(splitSizes(512, {}).notes, []);
  assert.deepEqual(splitSizes(48, { calibSamples: 16, evalSamples: 16 }).notes, []);
  const shrunk = splitSizes(300, {});
  assert.equal(shrunk.notes.length, 1);
  assert.match(shrunk.notes[0], /300 samples: calibration 80, search 160, test 60/);
  // 16 + 16 of 40 leave 8 for test: fewer than the minimum, so no test split (and no silent reuse).
  const few = splitSizes(40, { calibSamples: 16, evalSamples: 16 });
  assert.equal(few.test, 0);
  assert.equal(few.notes.length, 1);
  assert.match(few.notes[0], new RegExp(`would hold 8, fewer than ${MIN_TEST_SAMPLES}.*no test score`));
  // With defaults on small data the samples a too-small test split would have held go back to the other two.
  const tiny = splitSizes(30, {});
  assert.equal(tiny.test, 0);
  assert.equal(tiny.calib + tiny.eval, 30);
  assert.match(splitSizes(400, { testSamples: 0 }).notes[0], /--test-samples 0: no test split/);
  // An explicit test size below the minimum is the user's choice and kept.
  assert.equal(splitSizes(100, { testSamples: 5 }).test, 5);
});

test('splitSizes: explicit sizes that do not fit are refused in one line; nothing is shared to make them fit', () => {
  assertUserError(() => splitSizes(300, { calibSamples: 128, evalSamples: 256 }), /300 samples/, /128 calibration \+ 256 search/, /never share/);
  assertUserError(() => splitSizes(100, { calibSamples: 50, testSamples: 60 }), /50 calibration \+ 60 test/);
  assertUserError(() => splitSizes(1, {}), /too few/);
  assertUserError(() => splitSizes(10, { calibSamples: 0 }), /--calib-samples must be a whole number >= 1/);
  assertUserError(() => splitSizes(10, { testSamples: -1 }), /--test-samples must be a whole number >= 0/);
  assertUserError(() => splitSizes(10, { evalSamples: 2.5 }), /--eval-samples/);
});
