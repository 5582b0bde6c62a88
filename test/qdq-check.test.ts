/**
 * bench/qdq-check.py, the device-side check of every model.qdq.onnx (onnx.checker full check + an onnxruntime run).
 * onnx and onnxruntime for Python cannot be installed here (no PyPI); these stand-ins implement only the calls the
 * script makes — the checker raising on a model marked bad, a session reporting its inputs and running — so the
 * script's own logic (walking folders, feeds for dynamic and integer inputs, one line per file, exit status) runs
 * for real. The lead runs it with the real packages on the device machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FAKE_ONNX = `
import json
__version__ = "stand-in"
class TensorProto:
    FLOAT, FLOAT16 = 1, 10
class _Obj:
    def __init__(self, **kw): self.__dict__.update(kw)
def load(path, load_external_data=True):
    d = json.load(open(path))
    return _Obj(graph=_Obj(node=[_Obj(op_type=o) for o in d["ops"]], initializer=[_Obj(data_type=t) for t in d.get("inits", [])]),
                opset_import=[_Obj(domain="", version=d.get("opset", 13))])
class checker:
    @staticmethod
    def check_model(path, full_check=False):
        assert full_check, "the script must ask for the full check"
        d = json.load(open(path))
        if d.get("invalid"):
            raise ValueError("[ShapeInferenceError] " + d["invalid"] + "\\nsecond line")
`;
const FAKE_ORT = `
import json
import numpy as np
__version__ = "stand-in"
class SessionOptions:
    log_severity_level = 2
class _Arg:
    def __init__(self, name, type, shape): self.name, self.type, self.shape = name, type, shape
class InferenceSession:
    def __init__(self, path, options, providers):
        self.d = json.load(open(path))
    def get_inputs(self): return [_Arg(i["name"], i["type"], i["shape"]) for i in self.d["inputs"]]
    def get_outputs(self): return [_Arg("y", "tensor(float)", [])]
    def run(self, names, feeds):
        for i in self.d["inputs"]:
            x = feeds[i["name"]]
            assert all(s == (d if isinstance(d, int) and d > 0 else 3) for s, d in zip(x.shape, i["shape"])), x.shape
            if i["type"] == "tensor(int64)": assert x.dtype == np.int64 and (x == 1).all()
        return [np.array([np.nan if self.d.get("nan") else 1.0], np.float32)]
`;

test('qdq-check.py: one line per model.qdq.onnx found, FAIL with the first line of the error, exit status = failures', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-qdq-check-'));
  mkdirSync(join(dir, 'fake', 'onnx'), { recursive: true });
  mkdirSync(join(dir, 'fake', 'onnxruntime'), { recursive: true });
  writeFileSync(join(dir, 'fake', 'onnx', '__init__.py'), FAKE_ONNX);
  writeFileSync(join(dir, 'fake', 'onnxruntime', '__init__.py'), FAKE_ORT);
  const model = (sub: string, d: object) => {
    mkdirSync(join(dir, 'runs', sub), { recursive: true });
    writeFileSync(join(dir, 'runs', sub, 'model.qdq.onnx'), JSON.stringify(d));
  };
  const inputs = [{ name: 'pixels', type: 'tensor(float)', shape: ['N', 3, 8, 8] }, { name: 'ids', type: 'tensor(int64)', shape: ['N', 5] }];
  model('a', { ops: ['QuantizeLinear', 'DequantizeLinear', 'Conv', 'Cast'], inits: [10, 1], inputs });
  model('b/deeper', { ops: ['Conv'], invalid: 'Inferred type float16 differs from float', inputs });
  model('c', { ops: ['Conv'], nan: true, inputs });
  writeFileSync(join(dir, 'runs', 'a', 'model.onnx'), '{}');
  const run = spawnSync('python3', ['bench/qdq-check.py', join(dir, 'runs'), '--batch', '3'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(dir, 'fake') } });
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 4, run.stdout + run.stderr);
  assert.match(lines[0], /^OK {3}.*runs\/a\/model\.qdq\.onnx: checker \(full\), onnxruntime stand-in ran it \(batch 3\); opset 13, 4 nodes, 1 Q\/DQ pairs, 1 Casts, 1 float16 initializers/);
  assert.match(lines[1], /^FAIL .*runs\/b\/deeper\/model\.qdq\.onnx: ValueError: \[ShapeInferenceError\] Inferred type float16 differs from float$/);
  assert.match(lines[2], /^FAIL .*runs\/c\/model\.qdq\.onnx: ValueError: onnxruntime ran it, but outputs y are not finite/);
  assert.equal(lines[3], '3 file(s), 2 failed (onnx stand-in)');
  assert.equal(run.status, 2);
  const none = spawnSync('python3', ['bench/qdq-check.py', join(dir, 'fake')], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(dir, 'fake') } });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no model\.qdq\.onnx under/);
});
