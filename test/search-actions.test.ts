import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCalibrationChoice, parseLayerCalibration, searchActions, DEFAULT_LAYER_CALIBRATION } from '../src/search/options.ts';
import { actionLabel } from '../envs/types.ts';
import { UserError } from '../src/errors.ts';

const p9999 = { method: 'percentile' as const, percentile: 99.99 };

test('--layer-calibration entries parse to calibration choices', () => {
  assert.deepEqual(parseCalibrationChoice('mse'), { method: 'mse' });
  assert.deepEqual(parseCalibrationChoice('max'), { method: 'max' });
  assert.deepEqual(parseCalibrationChoice('entropy'), { method: 'entropy' });
  assert.deepEqual(parseCalibrationChoice('percentile:99.999'), { method: 'percentile', percentile: 99.999 });
  assert.deepEqual(parseCalibrationChoice('percentile-99.9'), { method: 'percentile', percentile: 99.9 });
  assert.deepEqual(parseCalibrationChoice('percentile'), p9999);
  for (const bad of ['kl', 'mse:3', 'percentile:20', 'percentile:101', '']) {
    assert.throws(() => parseCalibrationChoice(bad), (e: unknown) => e instanceof UserError && /--layer-calibration .*(not a calibration|percentile must be)/.test(e.message), bad);
  }
  assert.deepEqual(parseLayerCalibration(['mse,max', 'percentile:99.999']), [{ method: 'mse' }, { method: 'max' }, { method: 'percentile', percentile: 99.999 }]);
  assert.deepEqual(parseLayerCalibration(['none']), []);
  assert.deepEqual(parseLayerCalibration(undefined), DEFAULT_LAYER_CALIBRATION.map(parseCalibrationChoice));
  assert.throws(() => parseLayerCalibration(['none', 'mse']), UserError, 'none cannot be combined');
});

test('the search action set: INT8 under the default calibration first, then other calibrations, mixed, FP16', () => {
  const labels = (c: Parameters<typeof searchActions>[0], d: Parameters<typeof searchActions>[1] = p9999) => searchActions(c, d).map(actionLabel);
  assert.deepEqual(labels([]), ['int8', 'mixed', 'fp16']);
  assert.deepEqual(labels([{ method: 'mse' }, { method: 'max' }]), ['int8', 'int8@mse', 'int8@max', 'mixed', 'fp16']);
  // The default calibration and repeats are not separate actions: they would be the same policy under two keys.
  assert.deepEqual(labels([p9999, { method: 'mse' }, { method: 'mse' }]), ['int8', 'int8@mse', 'mixed', 'fp16']);
  assert.deepEqual(labels([{ method: 'mse' }, { method: 'percentile', percentile: 99.99 }], { method: 'mse' }), ['int8', 'int8@percentile99.99', 'mixed', 'fp16']);
});
