/** `--config FILE`: options from a JSON file, the command line wins, and a bad file is the user's error (exit 2). */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertUserError, trtmix, workspace, type Workspace } from './cli-helpers.ts';

let ws: Workspace;
const config = (name: string, content: string) => {
  const path = join(ws.dir, name);
  writeFileSync(path, content);
  return path;
};

before(() => {
  ws = workspace('cli-config');
});

describe('--config', { concurrency: 2 }, () => {
  test('options come from the file; the command line overrides them', async () => {
    const path = config('info.json', JSON.stringify({ model: ws.model, 'input-shape': ['x:2x3x8x8'], json: true }));
    const fromFile = await trtmix(['info', '--config', path]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const doc = JSON.parse(fromFile.stdout);
    assert.equal(doc.model, ws.model);
    assert.deepEqual(doc.inputShapes, { x: [2, 3, 8, 8] });
    const overridden = await trtmix(['info', `--config=${path}`, '--input-shape', 'x:5x3x8x8']);
    assert.equal(overridden.code, 0, overridden.stderr);
    assert.deepEqual(JSON.parse(overridden.stdout).inputShapes, { x: [5, 3, 8, 8] });
  });

  test('a search takes its long option set from the file, and --seed from the command line', async () => {
    const path = config('search.json', JSON.stringify({
      model: ws.model, data: ws.data, 'calib-samples': 16, 'eval-samples': 16, 'screen-samples': 0, agent: 'int8', seed: 3, out: join(ws.dir, 'from-config'),
    }));
    const r = await trtmix(['search', '--config', path, '--seed', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).agent, 'int8');
    const policy = JSON.parse(readFileSync(join(ws.dir, 'from-config', 'policy.json'), 'utf8'));
    assert.equal(policy.search.seed, 4);
    assert.equal(policy.search.data.calibSamples, 16);
    assert.equal(policy.search.data.evalIndices.length, 16);
  });

  test('a missing file, a file that is not JSON, and JSON that is not an object are one-line errors', async () => {
    assertUserError(await trtmix(['info', '--config', join(ws.dir, 'missing.json')]), /config file .*missing\.json does not exist; check the --config path/);
    assertUserError(await trtmix(['info', '--config', config('broken.json', '{"model": ')]), /config file .*broken\.json is not JSON \(.*\); write options as \{"model": "m\.onnx"/);
    assertUserError(await trtmix(['info', '--config', config('list.json', '["--model", "m.onnx"]')]), /config file .*list\.json must hold one JSON object of options/);
  });

  test('an option the command does not know is refused, from the file as from the command line', async () => {
    assertUserError(await trtmix(['info', '--config', config('typo.json', JSON.stringify({ modle: ws.model }))]), /Unknown argument: modle; trtmix info --help shows the options/);
    assertUserError(await trtmix(['info', '--modle', ws.model]), /Unknown argument: modle/);
  });
});
