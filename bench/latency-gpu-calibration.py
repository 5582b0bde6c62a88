# Calibration probe for the roofline constants (run on the device machine; torch + CUDA only).
import torch, time, json
torch.backends.cudnn.benchmark = True
dev = torch.device('cuda')
out = {'device': torch.cuda.get_device_name(0)}
def timed(fn, iters=50, warm=10):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(iters): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / iters * 1e-3  # seconds
# 1. per-kernel fixed time: CUDA graph of N tiny kernels
x = torch.zeros(1024, device=dev)
N = 2000
g = torch.cuda.CUDAGraph()
s = torch.cuda.Stream()
with torch.cuda.stream(s):
    for _ in range(3): x.add_(1)
torch.cuda.synchronize()
with torch.cuda.graph(g):
    for _ in range(N): x.add_(1)
t = timed(lambda: g.replay(), iters=20, warm=3)
out['tiny_kernel_us_cudagraph'] = t / N * 1e6
# stream launches without graph
def many():
    for _ in range(N): x.add_(1)
t2 = timed(many, iters=5, warm=1)
out['tiny_kernel_us_stream'] = t2 / N * 1e6
# 2. copy bandwidth
a = torch.empty(512 * 1024 * 1024, dtype=torch.uint8, device=dev); b = torch.empty_like(a)
t = timed(lambda: b.copy_(a), iters=20)
out['copy_GBps'] = 2 * a.numel() / t / 1e9
# 3. GEMM fp16 and int8
M = 8192
A = torch.randn(M, M, device=dev, dtype=torch.half); B = torch.randn(M, M, device=dev, dtype=torch.half)
t = timed(lambda: A @ B, iters=20)
out['gemm_fp16_TFLOPS'] = 2 * M**3 / t / 1e12
Ai = torch.randint(-100, 100, (M, M), device=dev, dtype=torch.int8); Bi = torch.randint(-100, 100, (M, M), device=dev, dtype=torch.int8)
try:
    t = timed(lambda: torch._int_mm(Ai, Bi), iters=20)
    out['gemm_int8_TOPS'] = 2 * M**3 / t / 1e12
except Exception as ex:
    out['gemm_int8_error'] = str(ex)[:200]
Af = A.float(); Bf = B.float()
torch.backends.cuda.matmul.allow_tf32 = False
t = timed(lambda: Af @ Bf, iters=10)
out['gemm_fp32_TFLOPS'] = 2 * M**3 / t / 1e12
# 4. convs, fp16 channels_last: dense 3x3 64->64 @56x56 x batch, depthwise 3x3 / 5x5
res = {}
for name, cin, cout, k, groups, hw, batch in [
    ('dense3x3_64_56_b32', 64, 64, 3, 1, 56, 32), ('dense1x1_256_28_b32', 256, 256, 1, 1, 28, 32),
    ('dw3x3_256_56_b32', 256, 256, 3, 256, 56, 32), ('dw5x5_240_12x80_b32', 240, 240, 5, 240, (12, 80), 32),
    ('dense1x1_240_12x80_b1', 240, 240, 1, 1, (12, 80), 1), ('dw5x5_240_12x80_b1', 240, 240, 5, 240, (12, 80), 1)]:
    h, w = (hw, hw) if isinstance(hw, int) else hw
    for dt in (torch.half, torch.float):
        conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False).to(dev, dt).to(memory_format=torch.channels_last)
        inp = torch.randn(batch, cin, h, w, device=dev, dtype=dt).to(memory_format=torch.channels_last)
        with torch.no_grad():
            t = timed(lambda: conv(inp), iters=50)
        macs = batch * h * w * cout * (cin // groups) * k * k
        bytes_ = (batch * h * w * (cin + cout) + conv.weight.numel()) * (2 if dt == torch.half else 4)
        res[f'{name}_{"fp16" if dt == torch.half else "fp32"}'] = {'us': t * 1e6, 'TFLOPS': 2 * macs / t / 1e12, 'GBps': bytes_ / t / 1e9}
out['conv'] = res
# 5. batch-1 layers of the PP-OCRv4 recognizer, captured in a CUDA graph (no host overhead): per-layer GPU time
def graph_time(fn, reps=100):
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for _ in range(3): fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps): fn()
    return timed(lambda: g.replay(), iters=10, warm=2) / reps
small = {}
for name, cin, cout, k, groups, (h, w) in [
    ('dense1x1_240_12x80', 240, 240, 1, 1, (12, 80)), ('dw5x5_240_12x80', 240, 240, 5, 240, (12, 80)),
    ('dw3x3_64_24x160', 64, 64, 3, 64, (24, 160)), ('dense1x1_480_3x80', 480, 480, 1, 1, (3, 80)),
    ('stem3x3_3_16_48x320_s2', 3, 16, 3, 1, (48, 320))]:
    for dt in (torch.half, torch.float):
        stride = 2 if 's2' in name else 1
        conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False).to(dev, dt).to(memory_format=torch.channels_last)
        inp = torch.randn(1, cin, h, w, device=dev, dtype=dt).to(memory_format=torch.channels_last)
        with torch.no_grad():
            t = graph_time(lambda: conv(inp))
        small[f'{name}_{"fp16" if dt == torch.half else "fp32"}_us'] = t * 1e6
y = torch.randn(64 * 1024 * 1024, device=dev, dtype=torch.half)
small['relu_128MB_fp16_GBps'] = 2 * y.numel() * 2 / timed(lambda: torch.relu(y), iters=20) / 1e9
out['batch1_graph'] = small
print(json.dumps(out, indent=1))
