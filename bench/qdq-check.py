#!/usr/bin/env python3
"""Checks every model.qdq.onnx under a folder: onnx.checker (full check: types and shapes inferred through the
whole graph, the strongly typed form TensorRT 11 builds) and an onnxruntime session that runs it once.

    python3 bench/qdq-check.py DIR [DIR ...] [--name model.qdq.onnx] [--batch 1] [--no-run]

One line per file: OK or FAIL, then what was checked or what failed; the exit status is the number of failures
(capped at 100). Needs python3 with onnx and onnxruntime only (numpy comes with them).
"""
import argparse
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def find_models(roots, name):
    for root in roots:
        if os.path.isfile(root):
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if f == name:
                    yield os.path.join(folder, f)


def feeds_for(session, batch):
    """Zeros for every input (ones for integer inputs such as token ids and masks), dynamic dims set to `batch`."""
    feeds = {}
    for i in session.get_inputs():
        dtype = NUMPY_TYPES.get(i.type)
        if dtype is None:
            raise ValueError("input %s has type %s, which this check cannot feed" % (i.name, i.type))
        shape = [d if isinstance(d, int) and d > 0 else batch for d in i.shape]
        feeds[i.name] = np.ones(shape, dtype) if np.issubdtype(dtype, np.integer) else np.zeros(shape, dtype)
    return feeds


def summary(model):
    ops = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    half = sum(1 for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return "opset %d, %d nodes, %d Q/DQ pairs, %d Casts, %d float16 initializers" % (
        opset, len(model.graph.node), ops.get("QuantizeLinear", 0), ops.get("Cast", 0), half)


def check(path, batch, run):
    t0 = time.time()
    # The path, not the loaded proto: the checker then also follows external data files beside the model (> 2 GB).
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    what = "checker (full)"
    if run:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        outputs = session.run(None, feeds_for(session, batch))
        bad = [o.name for o, v in zip(session.get_outputs(), outputs) if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))]
        if bad:
            raise ValueError("onnxruntime ran it, but outputs %s are not finite" % ", ".join(bad))
        what += ", onnxruntime %s ran it (batch %d)" % (ort.__version__, batch)
    return "%s; %s; %.1f s" % (what, summary(model), time.time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+", help="folders (searched recursively) or model files")
    ap.add_argument("--name", default="model.qdq.onnx", help="file name to look for (default model.qdq.onnx)")
    ap.add_argument("--batch", type=int, default=1, help="size of dynamic dims when running (default 1)")
    ap.add_argument("--no-run", action="store_true", help="checker only, no onnxruntime session")
    args = ap.parse_args(argv)
    failures = 0
    count = 0
    for path in find_models(args.roots, args.name):
        count += 1
        try:
            print("OK   %s: %s" % (path, check(path, args.batch, not args.no_run)), flush=True)
        except Exception as e:  # one line per file, whatever broke
            failures += 1
            print("FAIL %s: %s: %s" % (path, type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""), flush=True)
    print("%d file(s), %d failed (onnx %s)" % (count, failures, onnx.__version__), flush=True)
    if count == 0:
        print("no %s under %s" % (args.name, ", ".join(args.roots)), file=sys.stderr)
        return 1
    return min(failures, 100)


if __name__ == "__main__":
    sys.exit(main())
