"""Procedural data for the coverage suite (NumPy only, so it runs here and on the device machine alike).

Images: one or more filled shapes (circle, square, triangle, cross), each at a random size, position, rotation and
colour on a plain background. Class = shape; the segmentation mask labels each pixel with its shape (0 = background);
the box is the tight box of the shape's pixels. Tokens: a tiny vocabulary whose sentences are positive when they hold
more "positive" than "negative" words, so that the model must aggregate over the whole (variable-length) sequence.
"""
import numpy as np

CLASSES = ('circle', 'square', 'triangle', 'cross')

PAD, CLS, SEP = 0, 1, 2
VOCAB = 64
POSITIVE = range(3, 13)
NEGATIVE = range(13, 23)


def shape_masks(kind, cx, cy, r, angle, height, width):
    """Boolean masks [n, height, width] of n shapes; every argument but the sizes is an array of length n."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dx = x[None] - cx[:, None, None]
    dy = y[None] - cy[:, None, None]
    c = np.cos(angle)[:, None, None]
    s = np.sin(angle)[:, None, None]
    u = c * dx + s * dy
    v = -s * dx + c * dy
    rr = r[:, None, None]
    circle = u * u + v * v <= rr * rr
    square = (np.abs(u) <= 0.75 * rr) & (np.abs(v) <= 0.75 * rr)
    # Equilateral triangle of circumradius r: inside all three edges, each at the inradius r/2 from the centre.
    triangle = np.ones_like(circle)
    for k in range(3):
        a = np.pi / 2 + k * 2 * np.pi / 3 + np.pi
        triangle &= np.cos(a) * u + np.sin(a) * v <= 0.5 * rr
    arm = 0.3 * rr
    cross = ((np.abs(u) <= arm) & (np.abs(v) <= rr)) | ((np.abs(v) <= arm) & (np.abs(u) <= rr))
    k = kind[:, None, None]
    return np.where(k == 0, circle, np.where(k == 1, square, np.where(k == 2, triangle, cross)))


def _colours(rng, n):
    """Background and foreground colours (k/255) that differ clearly in at least one channel."""
    bg = rng.integers(0, 256, size=(n, 3))
    fg = rng.integers(0, 256, size=(n, 3))
    weak = np.abs(fg - bg).max(axis=1) < 96
    fg[weak] = (bg[weak] + 128) % 256
    return bg.astype(np.float32) / 255, fg.astype(np.float32) / 255


def _tight_boxes(masks):
    """[n, 4] boxes x1, y1, x2, y2 (pixel edges) of each mask's pixels."""
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for i in range(masks.shape[0]):
        ys = np.flatnonzero(rows[i])
        xs = np.flatnonzero(cols[i])
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def objects(rng, n, size=64, r_range=(9, 22)):
    """n images [n, 3, size, size] float32 in [0, 1] of one shape each, with classes [n] and boxes [n, 4]."""
    kind = rng.integers(0, len(CLASSES), size=n)
    r = rng.uniform(*r_range, size=n).astype(np.float32)
    cx = rng.uniform(r, size - r).astype(np.float32)
    cy = rng.uniform(r, size - r).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, size=n).astype(np.float32)
    masks = shape_masks(kind, cx, cy, r, angle, size, size)
    bg, fg = _colours(rng, n)
    m = masks[:, None].astype(np.float32)
    images = bg[:, :, None, None] * (1 - m) + fg[:, :, None, None] * m
    return images.astype(np.float32), kind.astype(np.int64), _tight_boxes(masks)


def scenes(rng, n, height=64, width=96, max_shapes=3, r_range=(7, 18)):
    """n images [n, 3, H, W] of 1..max_shapes shapes, later shapes painted over earlier ones, and masks [n, H, W]
    (uint8, 0 = background, 1 + class)."""
    images = np.zeros((n, 3, height, width), dtype=np.float32)
    labels = np.zeros((n, height, width), dtype=np.uint8)
    bg, _ = _colours(rng, n)
    images[:] = bg[:, :, None, None]
    count = rng.integers(1, max_shapes + 1, size=n)
    for j in range(max_shapes):
        kind = rng.integers(0, len(CLASSES), size=n)
        r = rng.uniform(*r_range, size=n).astype(np.float32)
        cx = rng.uniform(r, width - r).astype(np.float32)
        cy = rng.uniform(r, height - r).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi, size=n).astype(np.float32)
        masks = shape_masks(kind, cx, cy, r, angle, height, width) & (j < count)[:, None, None]
        _, fg = _colours(rng, n)
        fg = np.where(np.abs(fg - bg).max(axis=1, keepdims=True) < 0.35, 1 - bg, fg)
        m = masks[:, None]
        images = np.where(m, fg[:, :, None, None], images)
        labels = np.where(masks, (kind + 1).astype(np.uint8)[:, None, None], labels)
    return images.astype(np.float32), labels


def sentences(rng, n, max_len=32, min_words=4):
    """Token ids and attention masks [n, max_len] int64 ([CLS] words [SEP] then padding) and labels [n]:
    1 when the sentence has more positive than negative words. Ties are redrawn."""
    ids = np.full((n, max_len), PAD, dtype=np.int64)
    mask = np.zeros((n, max_len), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    pos, neg = np.array(POSITIVE), np.array(NEGATIVE)
    for i in range(n):
        while True:
            words = rng.integers(3, VOCAB, size=int(rng.integers(min_words, max_len - 1)))
            p = np.isin(words, pos).sum()
            q = np.isin(words, neg).sum()
            if p != q:
                break
        seq = np.concatenate([[CLS], words, [SEP]])
        ids[i, :len(seq)] = seq
        mask[i, :len(seq)] = 1
        labels[i] = int(p > q)
    return ids, mask, labels
