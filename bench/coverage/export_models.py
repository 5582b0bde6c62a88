"""The coverage suite's models: real architectures, trained briefly on procedural data (shapes.py) and exported to
ONNX exactly as users export them with PyTorch 2.11 — `torch.onnx.export(model, args, "model.onnx", dynamo=True)`
(the default exporter; weights in model.onnx.data, the default) and, for two of them, the legacy TorchScript
exporter (`dynamo=False`). Runs on the device machine (PyTorch 2.11, torchvision 0.26, transformers 5, onnx,
onnxruntime); nothing is downloaded.

    python3 bench/coverage/export_models.py --out /tmp/coverage [--budget 420] [--only resnet18_quarter,bert_tiny]

For each small model: <out>/models/<name>/model.onnx (+ model.onnx.data) and meta.json (architecture, exporter,
opset, training, FP32 score in PyTorch and of the exported model in onnxruntime on the committed evaluation data in
bench/coverage/data). For each large model (ViT-B/16, BERT-base, random weights): <out>/large/<name>/model.onnx.gz,
the graph without its (hundreds of MB of) external data, and external.json: every external tensor's name, dtype, dims,
offset, length and the mean / std of the exported values, from which bench/coverage/large-model.ts writes a
model.onnx.data of the same layout with seeded random values.

Every model is exported in its own try block: a failure is logged and recorded in <out>/summary.json, the others
go on. --budget (seconds) stops starting new models when it is spent.
"""
import argparse
import base64
import json
import math
import os
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scoring  # noqa: E402
import shapes  # noqa: E402

T0 = time.time()


def log(msg):
    print(f'[{time.time() - T0:6.1f}s] {msg}', flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Models (torch is imported in main(), so that --help and the NumPy parts run without it)

def build_models(torch, nn, F, torchvision):
    from torchvision.models.resnet import BasicBlock

    class SmallResNet(nn.Module):
        """ResNet-18's topology (torchvision BasicBlock, 7x7 stem, max-pool, four stages of two blocks) at a quarter
        of its width, for 64x64 inputs."""

        def __init__(self, num_classes, widths=(16, 32, 64, 128), blocks=(2, 2, 2, 2)):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            layers, inplanes = [], widths[0]
            for i, (w, n) in enumerate(zip(widths, blocks)):
                for j in range(n):
                    stride = 2 if (i > 0 and j == 0) else 1
                    down = None
                    if stride != 1 or inplanes != w:
                        down = nn.Sequential(nn.Conv2d(inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
                    layers.append(BasicBlock(inplanes, w, stride, down))
                    inplanes = w
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(inplanes, num_classes)

        def forward(self, x):
            x = self.layers(self.stem(x))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    class SegmentationOutput(nn.Module):
        """torchvision segmentation nets return {"out": ...}; exported as the bare tensor, as users do."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return self.net(image)['out']

    class DetectorForExport(nn.Module):
        """torchvision detectors take a list of images and return a list of dicts; exported for a batch of one
        image, with the detections of that image as boxes [1, K, 4], scores [1, K], labels [1, K]."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            out = self.net(list(image))[0]
            return out['boxes'][None], out['scores'][None], out['labels'][None]

    class GridDetector(nn.Module):
        """A small single-stage (YOLO-style, 8x8 grid) detector. Its post-processing keeps the top-k cells and
        refines their boxes with a linear head only when something was found: torch.cond, exported as an ONNX If
        whose then-branch holds a MatMul."""

        def __init__(self, num_classes=4, k=5, stride=8, grid=8):
            super().__init__()

            def block(i, o, s):
                return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

            self.features = nn.Sequential(*block(3, 16, 2), *block(16, 32, 2), *block(32, 64, 2), *block(64, 64, 1))
            self.head = nn.Conv2d(64, 5 + num_classes, 1)
            self.refine = nn.Linear(64, 4)
            self.k, self.stride = k, stride
            gy, gx = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing='ij')
            self.register_buffer('gx', gx.reshape(-1).float(), persistent=False)
            self.register_buffer('gy', gy.reshape(-1).float(), persistent=False)

        def decode(self, image):
            f = self.features(image)
            h = self.head(f).flatten(2).transpose(1, 2)
            f = f.flatten(2).transpose(1, 2)
            t = h[..., 1:5]
            cx = (self.gx + torch.sigmoid(t[..., 0])) * self.stride
            cy = (self.gy + torch.sigmoid(t[..., 1])) * self.stride
            w = torch.exp(t[..., 2].clamp(max=4.0)) * 2 * self.stride
            hh = torch.exp(t[..., 3].clamp(max=4.0)) * 2 * self.stride
            boxes = torch.stack([cx - w / 2, cy - hh / 2, cx + w / 2, cy + hh / 2], dim=-1)
            return h[..., 0], h[..., 5:], boxes, f

        def refined(self, boxes, feats):
            return boxes + 4.0 * torch.tanh(self.refine(feats))

        def unchanged(self, boxes, feats):
            return boxes.clone()

        def forward(self, image):
            obj, cls, boxes, f = self.decode(image)
            cls_score, cls_idx = torch.softmax(cls, dim=-1).max(dim=-1)
            scores, idx = (torch.sigmoid(obj) * cls_score).topk(self.k, dim=1)
            boxes = torch.gather(boxes, 1, idx.unsqueeze(-1).expand(-1, -1, 4))
            feats = torch.gather(f, 1, idx.unsqueeze(-1).expand(-1, -1, f.shape[-1]))
            labels = torch.gather(cls_idx, 1, idx) + 1
            boxes = torch.cond(scores.max() > 0.25, self.refined, self.unchanged, (boxes, feats))
            return boxes, scores, labels

    return SmallResNet, SegmentationOutput, DetectorForExport, GridDetector


# ---------------------------------------------------------------------------------------------------------------

def pack(src, dest, limit=15 * 2**20, max_files=6):
    """Packs every model folder of src (models/*, large/*) whole into coverage-<k>.tar.gz files of at most `limit`
    bytes (the device machine returns at most 8 files of 16 MiB), plus summary.json beside them."""
    import shutil
    import tarfile
    os.makedirs(dest, exist_ok=True)
    folders = []
    for group in ('models', 'large'):
        root = os.path.join(src, group)
        for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            path = os.path.join(root, name)
            size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
            folders.append((size, os.path.join(group, name)))
    bins = []
    for size, rel in sorted(folders, reverse=True):
        if size > limit:
            log(f'{rel}: {size} B does not fit in one file; left out')
            continue
        for b in bins:
            if b[0] + size <= limit:
                b[0] += size
                b[1].append(rel)
                break
        else:
            bins.append([size, [rel]])
    for k, (_, rels) in enumerate(bins[:max_files]):
        with tarfile.open(os.path.join(dest, f'coverage-{k}.tar.gz'), 'w:gz') as tar:
            for rel in rels:
                tar.add(os.path.join(src, rel), arcname=rel)
    for rels in bins[max_files:]:
        log(f'no file left for {rels[1]}')
    if os.path.exists(os.path.join(src, 'summary.json')):
        shutil.copy(os.path.join(src, 'summary.json'), os.path.join(dest, 'summary.json'))
    log(f'packed {sum(len(b[1]) for b in bins[:max_files])} folders into {min(len(bins), max_files)} files')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--budget', type=float, default=420, help='seconds; no new model is started after this')
    p.add_argument('--train-scale', type=float, default=1.0, help='multiplies every training time limit')
    p.add_argument('--only', default='', help='comma-separated model names')
    p.add_argument('--pack', metavar='DEST', help='only pack --out into tar files of at most 15 MiB under DEST')
    args = p.parse_args()
    if args.pack:
        pack(args.out, args.pack)
        return

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    import onnx
    import onnxruntime as ort
    from torch.export import Dim

    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    # No autotuning: every model here trains for seconds, and cuDNN's search per new shape costs more than it saves.
    torch.backends.cudnn.benchmark = False
    log(f'torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}, '
        f'onnxruntime {ort.__version__}, device {dev}')
    SmallResNet, SegmentationOutput, DetectorForExport, GridDetector = build_models(torch, nn, F, torchvision)
    only = set(filter(None, args.only.split(',')))
    summary = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'onnx': onnx.__version__,
               'onnxruntime': ort.__version__, 'models': {}, 'failures': {}}
    try:
        import transformers
        summary['transformers'] = transformers.__version__
    except ImportError:
        summary['transformers'] = None

    # --- data: the committed evaluation sets, and training pools drawn with other seeds -------------------------
    data_dir = os.path.join(HERE, 'data')
    ev_img = np.load(os.path.join(data_dir, 'shapes.npz'))['image']
    ev_cls = np.array([int(x) for x in open(os.path.join(data_dir, 'shapes.classes.txt')).read().split()])
    ev_boxes = json.load(open(os.path.join(data_dir, 'shapes.boxes.json')))
    ev_scene = np.load(os.path.join(data_dir, 'scenes.npz'))['image']
    ev_masks = np.load(os.path.join(data_dir, 'scenes.masks.npy'))
    tok = np.load(os.path.join(data_dir, 'tokens.npz'))
    ev_ids, ev_att = tok['input_ids'], tok['attention_mask']
    ev_tok_labels = np.array([int(x) for x in open(os.path.join(data_dir, 'tokens.labels.txt')).read().split()])

    def needs(*names):
        return not only or bool(only.intersection(names))

    rng = np.random.default_rng(2026)
    tr_img = tr_cls = tr_box = tr_scene = tr_mask = tr_ids = tr_att = tr_lab = None
    if needs('mobilenet_v3_small', 'resnet18_quarter', 'ssdlite320_mobilenet_v3', 'convnext_nano', 'vit_tiny_patch8',
             'grid_detector_cond', 'efficientnet_b0_half', 'swin_nano'):
        chunks = [shapes.objects(rng, 2000) for _ in range(6)]
        tr_img = torch.from_numpy(np.concatenate([c[0] for c in chunks])).to(dev)
        tr_cls = torch.from_numpy(np.concatenate([c[1] for c in chunks])).to(dev)
        tr_box = torch.from_numpy(np.concatenate([c[2] for c in chunks])).to(dev)
    if needs('lraspp_mobilenet_v3'):
        sc = [shapes.scenes(rng, 1000) for _ in range(4)]
        tr_scene = torch.from_numpy(np.concatenate([c[0] for c in sc])).to(dev)
        tr_mask = torch.from_numpy(np.concatenate([c[1] for c in sc]).astype(np.int64)).to(dev)
    if needs('bert_tiny'):
        ids, att, lab = shapes.sentences(rng, 16000)
        tr_ids, tr_att, tr_lab = (torch.from_numpy(a).to(dev) for a in (ids, att, lab))
    log('training pools drawn')

    def batch_of(n, *pools):
        idx = torch.randint(0, len(pools[0]), (n,), device=dev)
        return [p[idx] for p in pools]

    def train(model, step_loss, seconds, max_steps, lr, wd=0.05):
        seconds *= args.train_scale
        model.to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        begin, step, last = time.time(), 0, float('nan')
        start = begin
        while step < max_steps:
            if step == 3:
                start = time.time()  # the first steps load kernels: not training time
            progress = max(step / max_steps, (time.time() - start) / seconds if step >= 3 else 0.0)
            if progress >= 1:
                break
            warm = min(1.0, (step + 1) / 50)
            for g in opt.param_groups:
                g['lr'] = lr * warm * 0.5 * (1 + math.cos(math.pi * progress))
            loss = step_loss(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if step % 25 == 0:
                last = float(loss.detach())
            step += 1
        recalibrate_batch_norm(model, step_loss)
        model.eval()
        return {'steps': step, 'seconds': round(time.time() - begin, 1), 'last_logged_loss': round(last, 4)}

    @torch.no_grad()
    def recalibrate_batch_norm(model, step_loss, batches=40):
        """BatchNorm running statistics recomputed with the final weights (a cumulative average over `batches`
        training batches). After a few hundred steps the running averages lag the weights — torchvision's
        MobileNetV3 uses momentum 0.01 — and the eval-mode model scores at chance while its training loss is low."""
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for _ in range(batches):
            step_loss(model)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

    @torch.no_grad()
    def torch_outputs(model, arrays, batch=100):
        """The model's outputs on the given input arrays (positional, samples first), in batches."""
        n = len(arrays[0])
        outs = []
        for s in range(0, n, batch):
            o = model(*[torch.from_numpy(v[s:s + batch]).to(dev) for v in arrays])
            o = o if isinstance(o, (tuple, list)) else (o,)
            outs.append([x.float().cpu().numpy() for x in o])
        return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]

    def ort_outputs(path, feeds, fixed_batch=None, batch=100):
        """The exported model in onnxruntime (CPU), created from its path so external data resolves; samples in
        groups of the model's fixed batch when it has one, the last group padded and the padding dropped."""
        sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        n = len(next(iter(feeds.values())))
        step = fixed_batch or batch
        outs = []
        for s in range(0, n, step):
            part = {k: v[s:s + step] for k, v in feeds.items()}
            m = len(next(iter(part.values())))
            if fixed_batch and m < fixed_batch:
                part = {k: np.concatenate([v, np.repeat(v[-1:], fixed_batch - m, axis=0)]) for k, v in part.items()}
            res = sess.run(None, part)
            outs.append([r[:m] for r in res])
        return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]

    def per_image_outputs(run_one, images):
        """Detectors of batch one: each image alone, outputs without the batch axis."""
        res = [run_one(images[i:i + 1]) for i in range(len(images))]
        return [[r[j][0] for r in res] for j in range(3)]

    def auto_dims(spec):
        """The same dynamic_shapes with every named Dim replaced by Dim.AUTO (torch.export then keeps what it can)."""
        if isinstance(spec, dict):
            return {k: auto_dims(v) for k, v in spec.items()}
        if isinstance(spec, (tuple, list)):
            return type(spec)(auto_dims(v) for v in spec)
        return spec if spec is None or isinstance(spec, int) else Dim.AUTO

    def export(model, example, path, exporter, input_names, output_names, dynamic_shapes=None, dynamic_axes=None,
               kwargs=None, notes=None):
        """torch.onnx.export as a user calls it. dynamo=True: with named dynamic dims first, then Dim.AUTO if
        torch.export cannot keep them; every failed attempt is logged and noted."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model = model.cpu().eval()
        if exporter == 'dynamo=False':
            torch.onnx.export(model, example, path, dynamo=False, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, opset_version=17)
            return
        attempts = [dynamic_shapes]
        if dynamic_shapes is not None:
            attempts.append(auto_dims(dynamic_shapes))
        for i, ds in enumerate(attempts):
            try:
                torch.onnx.export(model, example, path, kwargs=kwargs, dynamo=True, input_names=input_names,
                                  output_names=output_names, dynamic_shapes=ds)
                return
            except Exception as e:  # noqa: BLE001 - the next attempt, or the caller, reports it
                if i == len(attempts) - 1:
                    raise
                msg = f'export with dynamic_shapes={ds} failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}'
                log('  ' + msg)
                if notes is not None:
                    notes.append(msg + '; retried with Dim.AUTO')

    def describe(path):
        m = onnx.load(path, load_external_data=False)
        opset = next((o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')), None)
        ops = sorted({n.op_type for n in m.graph.node})
        sub = sum(1 for n in m.graph.node for a in n.attribute if a.type in (onnx.AttributeProto.GRAPH,
                                                                             onnx.AttributeProto.GRAPHS))

        def dims(vi):
            return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                    for d in vi.type.tensor_type.shape.dim]

        def io(vis):
            return [{'name': v.name, 'dtype': onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                     'dims': dims(v)} for v in vis]

        data = path + '.data'
        try:
            onnx.checker.check_model(path, full_check=True)
            checker = 'ok'
        except Exception as e:  # noqa: BLE001
            checker = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
        return {'opset': opset, 'ir_version': m.ir_version, 'producer': f'{m.producer_name} {m.producer_version}',
                'inputs': io(m.graph.input), 'outputs': io(m.graph.output), 'ops': ops,
                'nodes_with_subgraphs': sub, 'onnx_bytes': os.path.getsize(path),
                'external_data_bytes': os.path.getsize(data) if os.path.exists(data) else 0,
                'onnx_checker': checker}

    def record(name, meta):
        folder = os.path.join(args.out, 'models', name)
        os.makedirs(folder, exist_ok=True)
        meta = {'name': name, **meta, **describe(os.path.join(folder, 'model.onnx'))}
        with open(os.path.join(folder, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        summary['models'][name] = meta
        log(f'  {name}: {meta["exporter"]}, opset {meta["opset"]}, {meta["onnx_bytes"] + meta["external_data_bytes"]} B,'
            f' FP32 {meta["metric"]} torch {meta["fp32_torch"]:.4f} / onnxruntime {meta["fp32_onnxruntime"]:.4f}')

    def model_path(name):
        return os.path.join(args.out, 'models', name, 'model.onnx')

    def n_params(model):
        return int(sum(p.numel() for p in model.parameters()))

    def ce_step(pool_x, pool_y, batch=128):
        def step(model):
            x, y = batch_of(batch, pool_x, pool_y)
            return F.cross_entropy(model(x), y)
        return step

    BATCH = Dim('batch')
    shapes_data = {'data': 'data/shapes.npz', 'labels': 'data/shapes.classes.txt', 'metric': 'top1'}

    def classifier(name, arch, make, seconds, steps, lr, fixed=()):
        torch.manual_seed(0)
        model = make()
        tr = train(model, ce_step(tr_img, tr_cls), seconds, steps, lr)
        fp32_torch = scoring.top1(torch_outputs(model, [ev_img])[0], ev_cls)
        notes = []
        export(model, (torch.from_numpy(ev_img[:4]),), model_path(name), 'dynamo=True', ['image'], ['logits'],
               dynamic_shapes=({0: BATCH},), notes=notes)
        fp32_ort = scoring.top1(ort_outputs(model_path(name), {'image': ev_img})[0], ev_cls)
        base = {'arch': arch, 'task': 'classification (4 shapes)', 'params': n_params(model), 'training': tr,
                **shapes_data, 'fp32_torch': fp32_torch, 'fp32_onnxruntime': fp32_ort, 'notes': notes}
        record(name, {**base, 'exporter': 'dynamo=True', 'batch': 'dynamic'})
        for b, exporter in fixed:
            fname = f'{name}_b{b}'
            export(model, (torch.from_numpy(ev_img[:b]),), model_path(fname), exporter, ['image'], ['logits'])
            s = scoring.top1(ort_outputs(model_path(fname), {'image': ev_img}, fixed_batch=b)[0], ev_cls)
            record(fname, {**base, 'exporter': exporter, 'batch': b, 'fp32_onnxruntime': s, 'notes': []})

    # --- the models, most important first ------------------------------------------------------------------------
    def m_mobilenet():
        classifier('mobilenet_v3_small', 'torchvision mobilenet_v3_small(width_mult=0.5, num_classes=4)',
                   lambda: torchvision.models.mobilenet_v3_small(weights=None, num_classes=4, width_mult=0.5),
                   14, 1500, 3e-3, fixed=((2, 'dynamo=True'), (8, 'dynamo=False'), (32, 'dynamo=True')))

    def m_resnet():
        classifier('resnet18_quarter', 'ResNet-18 topology (torchvision BasicBlock), widths 16-128, num_classes=4',
                   lambda: SmallResNet(4), 12, 1500, 2e-3)

    def m_bert():
        from transformers import BertConfig, BertForSequenceClassification
        torch.manual_seed(0)
        config = BertConfig(vocab_size=shapes.VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=64, num_labels=2)
        model = BertForSequenceClassification(config)

        def step(m):
            i, a, y = batch_of(128, tr_ids, tr_att, tr_lab)
            return F.cross_entropy(m(input_ids=i, attention_mask=a).logits, y)

        tr = train(model, step, 18, 3000, 1e-3, wd=0.01)
        feeds = {'input_ids': ev_ids, 'attention_mask': ev_att}

        class Logits(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

        fp32_torch = scoring.top1(torch_outputs(Logits(model), [ev_ids, ev_att])[0], ev_tok_labels)
        seq = Dim('sequence', max=config.max_position_embeddings)
        ex = {'input_ids': torch.from_numpy(ev_ids[:4]), 'attention_mask': torch.from_numpy(ev_att[:4])}
        ds = {'input_ids': {0: BATCH, 1: seq}, 'attention_mask': {0: BATCH, 1: seq}}
        notes = []
        try:
            export(model, (), model_path('bert_tiny'), 'dynamo=True', ['input_ids', 'attention_mask'], ['logits'],
                   dynamic_shapes=ds, kwargs=ex, notes=notes)
        except Exception as e:  # noqa: BLE001
            notes.append(f'direct export failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); '
                         'exported through a wrapper returning .logits')
            log('  ' + notes[-1])
            export(Logits(model), (), model_path('bert_tiny'), 'dynamo=True', ['input_ids', 'attention_mask'],
                   ['logits'], dynamic_shapes=ds, kwargs=ex, notes=notes)
        outs = ort_outputs(model_path('bert_tiny'), feeds)
        record('bert_tiny', {
            'arch': 'transformers BertForSequenceClassification (2 layers, hidden 64, 4 heads, vocab 64)',
            'task': 'token classification: more positive than negative words', 'params': n_params(model),
            'training': tr, 'data': 'data/tokens.npz', 'labels': 'data/tokens.labels.txt', 'metric': 'top1',
            'also': {'data': 'data/tokens16.npz', 'labels': 'data/tokens16.labels.txt'},
            'fp32_torch': fp32_torch, 'fp32_onnxruntime': scoring.top1(outs[0], ev_tok_labels),
            'exporter': 'dynamo=True', 'batch': 'dynamic', 'notes': notes})

    def m_segmentation():
        from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3
        torch.manual_seed(0)
        backbone = torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.5, dilated=True)
        model = SegmentationOutput(_lraspp_mobilenetv3(backbone, num_classes=5))
        tr = train(model, ce_step(tr_scene, tr_mask, batch=64), 16, 2000, 3e-3)
        classes = len(shapes.CLASSES) + 1
        fp32_torch = scoring.mean_iou(torch_outputs(model, [ev_scene])[0], ev_masks, classes)
        notes = []
        hw = ({0: BATCH, 2: Dim('height'), 3: Dim('width')},)
        export(model, (torch.from_numpy(ev_scene[:4]),), model_path('lraspp_mobilenet_v3'), 'dynamo=True',
               ['image'], ['out'], dynamic_shapes=hw, notes=notes)
        s = scoring.mean_iou(ort_outputs(model_path('lraspp_mobilenet_v3'), {'image': ev_scene})[0], ev_masks, classes)
        record('lraspp_mobilenet_v3', {
            'arch': 'torchvision LRASPP head on mobilenet_v3_small(width_mult=0.5, dilated=True), 5 classes',
            'task': 'segmentation (shapes, background)', 'params': n_params(model), 'training': tr,
            'data': 'data/scenes.npz', 'labels': 'data/scenes.masks.npy', 'metric': 'metrics/seg-miou.mjs',
            'fp32_torch': fp32_torch, 'fp32_onnxruntime': s, 'exporter': 'dynamo=True',
            'batch': 'dynamic (and height, width)', 'notes': notes})

    def m_ssd():
        from torchvision.models.detection import ssdlite320_mobilenet_v3_large
        torch.manual_seed(0)
        notes = []
        try:
            net = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5, width_mult=0.5)
            arch = 'torchvision ssdlite320_mobilenet_v3_large(num_classes=5, width_mult=0.5)'
        except TypeError as e:
            notes.append(f'width_mult refused ({e}); full width')
            net = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5)
            arch = 'torchvision ssdlite320_mobilenet_v3_large(num_classes=5)'

        def step(m):
            x, c, b = batch_of(32, tr_img, tr_cls, tr_box)
            targets = [{'boxes': b[i:i + 1], 'labels': c[i:i + 1] + 1} for i in range(len(x))]
            losses = m(list(x), targets)
            return sum(losses.values())

        tr = train(net, step, 30, 4000, 2e-3, wd=1e-4)
        wrapped = DetectorForExport(net).eval()
        with torch.no_grad():
            pt = per_image_outputs(lambda x: [o.float().cpu().numpy() for o in wrapped(torch.from_numpy(x).to(dev))],
                                   ev_img)
        fp32_torch = scoring.top1_detection(*pt, ev_boxes)
        export(wrapped, (torch.from_numpy(ev_img[:1]),), model_path('ssdlite320_mobilenet_v3'), 'dynamo=False',
               ['image'], ['boxes', 'scores', 'labels'])
        sess = ort.InferenceSession(model_path('ssdlite320_mobilenet_v3'), providers=['CPUExecutionProvider'])
        po = per_image_outputs(lambda x: sess.run(None, {'image': x}), ev_img)
        s = scoring.top1_detection(*po, ev_boxes)
        record('ssdlite320_mobilenet_v3', {
            'arch': arch, 'task': 'detection with post-processing (NMS), one shape per image',
            'params': n_params(net), 'training': tr, 'data': 'data/shapes.npz', 'labels': 'data/shapes.boxes.json',
            'metric': 'metrics/det-top1.mjs', 'fp32_torch': fp32_torch, 'fp32_onnxruntime': s,
            'exporter': 'dynamo=False', 'batch': 1, 'notes': notes})

    def m_grid_detector():
        torch.manual_seed(0)
        model = GridDetector()

        def step(m):
            x, c, b = batch_of(128, tr_img, tr_cls, tr_box)
            obj, cls, boxes, f = m.decode(x)
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            cell = ((cy // m.stride).clamp(0, 7) * 8 + (cx // m.stride).clamp(0, 7)).long()
            target = torch.zeros_like(obj)
            target[torch.arange(len(x)), cell] = 1
            rows = torch.arange(len(x), device=x.device)
            pb, pf = boxes[rows, cell], f[rows, cell]
            return (F.binary_cross_entropy_with_logits(obj, target, pos_weight=torch.tensor(8.0, device=x.device))
                    + F.cross_entropy(cls[rows, cell], c)
                    + F.smooth_l1_loss(pb / 8, b / 8)
                    + F.smooth_l1_loss(m.refined(pb.detach(), pf) / 8, b / 8))

        tr = train(model, step, 12, 2000, 3e-3)
        fp32_torch = scoring.top1_detection(*torch_outputs(model, [ev_img]), ev_boxes)
        notes = []
        export(model, (torch.from_numpy(ev_img[:4]),), model_path('grid_detector_cond'), 'dynamo=True', ['image'],
               ['boxes', 'scores', 'labels'], dynamic_shapes=({0: BATCH},), notes=notes)
        s = scoring.top1_detection(*ort_outputs(model_path('grid_detector_cond'), {'image': ev_img}), ev_boxes)
        record('grid_detector_cond', {
            'arch': 'single-stage grid detector (4 convs, 8x8 grid) with top-k and torch.cond box refinement',
            'task': 'detection with post-processing (If subgraph holding a MatMul), one shape per image',
            'params': n_params(model), 'training': tr, 'data': 'data/shapes.npz', 'labels': 'data/shapes.boxes.json',
            'metric': 'metrics/det-top1.mjs', 'fp32_torch': fp32_torch, 'fp32_onnxruntime': s,
            'exporter': 'dynamo=True', 'batch': 'dynamic', 'notes': notes})

    def m_convnext():
        from torchvision.models.convnext import CNBlockConfig, ConvNeXt
        cfg = [CNBlockConfig(24, 48, 1), CNBlockConfig(48, 96, 1), CNBlockConfig(96, 192, 2), CNBlockConfig(192, None, 1)]
        classifier('convnext_nano', 'torchvision ConvNeXt, widths 24-192, depths 1-1-2-1, num_classes=4',
                   lambda: ConvNeXt(cfg, stochastic_depth_prob=0.0, num_classes=4), 14, 1500, 5e-4)

    def m_vit():
        from torchvision.models.vision_transformer import VisionTransformer
        classifier('vit_tiny_patch8', 'torchvision VisionTransformer(image 64, patch 8, 4 layers, 4 heads, dim 96)',
                   lambda: VisionTransformer(image_size=64, patch_size=8, num_layers=4, num_heads=4, hidden_dim=96,
                                             mlp_dim=192, num_classes=4), 16, 2500, 1e-3)

    def m_efficientnet():
        from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
        setting, last = _efficientnet_conf('efficientnet_b0', width_mult=0.5, depth_mult=0.5)
        classifier('efficientnet_b0_half', 'torchvision EfficientNet-B0 config at width 0.5, depth 0.5, num_classes=4',
                   lambda: EfficientNet(setting, 0.2, num_classes=4, last_channel=last), 12, 1500, 3e-3)

    def m_swin():
        from torchvision.models.swin_transformer import SwinTransformer
        classifier('swin_nano', 'torchvision SwinTransformer(patch 4, dim 32, depths 2-2, heads 2-4, window 4)',
                   lambda: SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                                           window_size=[4, 4], num_classes=4), 14, 2000, 1e-3)

    def large(name, model, example, kwargs, input_names, dynamic_shapes):
        folder = os.path.join(args.out, 'large', name)
        work = os.path.join('/tmp', 'coverage-large', name)
        os.makedirs(folder, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        path = os.path.join(work, 'model.onnx')
        torch.onnx.export(model.eval(), example, path, kwargs=kwargs, dynamo=True, input_names=input_names,
                          output_names=['logits'], dynamic_shapes=dynamic_shapes)
        m = onnx.load(path, load_external_data=False)
        data_path = path + '.data'
        blob = np.memmap(data_path, dtype=np.uint8, mode='r') if os.path.exists(data_path) else None
        tensors = []
        for t in m.graph.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            off, length = int(info.get('offset', 0)), int(info['length'])
            np_dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
            values = np.frombuffer(blob[off:off + length].tobytes(), dtype=np_dtype) if blob is not None else None
            stats = {'mean': float(values.mean()), 'std': float(values.std())} if values is not None and \
                np.issubdtype(np_dtype, np.floating) else {}
            entry = {'name': t.name, 'dtype': np_dtype.name, 'dims': list(t.dims), 'location': info['location'],
                     'offset': off, 'length': length, **stats}
            # Small tensors and integer ones (indices, shapes) are kept exactly: random values would change meaning.
            if values is not None and (length <= 4096 or not np.issubdtype(np_dtype, np.floating)) and length <= 2**20:
                entry['values_b64'] = base64.b64encode(values.tobytes()).decode()
            tensors.append(entry)
        import gzip
        with open(path, 'rb') as src, gzip.open(os.path.join(folder, 'model.onnx.gz'), 'wb', compresslevel=9) as dst:
            dst.write(src.read())  # the exporter's per-node metadata compresses 20x
        meta = {'name': name, 'params': n_params(model), 'external_data_bytes': os.path.getsize(data_path),
                'tensors': tensors, **describe(path)}
        with open(os.path.join(folder, 'external.json'), 'w') as f:
            json.dump(meta, f)
        summary['models'][name] = {k: v for k, v in meta.items() if k != 'tensors'}
        log(f'  {name}: {meta["params"]} parameters, graph {meta["onnx_bytes"]} B, external data '
            f'{meta["external_data_bytes"]} B in {len(tensors)} tensors, opset {meta["opset"]}')

    def m_vit_b16():
        torch.manual_seed(0)
        model = torchvision.models.vit_b_16(weights=None)
        large('vit_b_16', model, (torch.randn(2, 3, 224, 224),), None, ['image'], ({0: BATCH},))

    def m_bert_base():
        from transformers import BertConfig, BertForSequenceClassification
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(num_labels=2))
        seq = Dim('sequence', max=512)
        ex = {'input_ids': torch.randint(0, 30522, (2, 32)), 'attention_mask': torch.ones(2, 32, dtype=torch.int64)}
        large('bert_base', model, (), ex, ['input_ids', 'attention_mask'],
              {'input_ids': {0: BATCH, 1: seq}, 'attention_mask': {0: BATCH, 1: seq}})

    jobs = [('mobilenet_v3_small', m_mobilenet), ('resnet18_quarter', m_resnet), ('bert_tiny', m_bert),
            ('lraspp_mobilenet_v3', m_segmentation), ('ssdlite320_mobilenet_v3', m_ssd),
            ('convnext_nano', m_convnext), ('vit_tiny_patch8', m_vit), ('vit_b_16', m_vit_b16),
            ('grid_detector_cond', m_grid_detector), ('efficientnet_b0_half', m_efficientnet),
            ('bert_base', m_bert_base), ('swin_nano', m_swin)]
    for name, job in jobs:
        if only and name not in only:
            continue
        if time.time() - T0 > args.budget:
            summary['failures'][name] = 'skipped: time budget spent'
            log(f'{name}: skipped, budget spent')
            continue
        log(f'{name} ...')
        try:
            job()
        except Exception as e:  # noqa: BLE001 - recorded, the next model goes on
            traceback.print_exc()
            summary['failures'][name] = f'{type(e).__name__}: {str(e).splitlines()[0][:400] if str(e) else ""}'
        with open(os.path.join(args.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
    log(f'done: {len(summary["models"])} models, {len(summary["failures"])} failures')


if __name__ == '__main__':
    main()
