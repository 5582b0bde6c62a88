"""FP32 scores of the coverage models, in NumPy, exactly as the metric plugins beside this file compute them in trtmix
(metrics/*.mjs) and as trtmix's built-in top1 does, so that the score measured in PyTorch on the device machine, the
score of the exported ONNX model in onnxruntime there, and trtmix's FP32 score here can be compared."""
import numpy as np


def top1(logits, labels):
    """Share of samples whose arg-max class is the label; logits [N, C]."""
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())


def mean_iou(logits, masks, classes):
    """Mean over classes of the dataset-wide IoU of the per-pixel arg-max (logits [N, C, H, W], masks [N, H*W]);
    classes absent from both prediction and labels are left out."""
    pred = np.asarray(logits).argmax(axis=1).reshape(len(logits), -1)
    masks = np.asarray(masks).reshape(len(masks), -1)
    ious = []
    for c in range(classes):
        inter = np.logical_and(pred == c, masks == c).sum()
        union = np.logical_or(pred == c, masks == c).sum()
        if union > 0:
            ious.append(inter / union)
    return float(np.mean(ious))


def box_iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def top1_detection(boxes, scores, labels, truth, iou=0.5):
    """Share of images whose highest-scoring detection has the right label and IoU >= iou with the one true box.
    boxes[i] [K, 4], scores[i] [K], labels[i] [K] per image (K may be 0); truth[i] = {"box": [...], "label": k}."""
    hits = 0
    for b, s, l, t in zip(boxes, scores, labels, truth):
        s = np.asarray(s).reshape(-1)
        if s.size == 0:
            continue
        k = int(s.argmax())
        if int(np.asarray(l).reshape(-1)[k]) == t['label'] and box_iou(np.asarray(b).reshape(-1, 4)[k], t['box']) >= iou:
            hits += 1
    return hits / len(truth)
