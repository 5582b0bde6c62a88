"""Writes the coverage suite's evaluation data as trtmix reads it (NumPy only; the training data is drawn on the
device machine by export_models.py from the same generators with other seeds).

    python3 bench/coverage/make_data.py [--out bench/coverage/data]

shapes.npz          image float32 [400, 3, 64, 64]      one shape per image (classifiers, fixed batches, detectors)
shapes.classes.txt  the class index of each image (0 circle, 1 square, 2 triangle, 3 cross)
shapes.boxes.json   [{"box": [x1, y1, x2, y2], "label": 1 + class}] in pixels (detectors)
scenes.npz          image float32 [300, 3, 64, 96]      1-3 shapes (segmentation; not the training size)
scenes.masks.npy    uint8 [300, 64 * 96]                 per-pixel label, 0 background, 1 + class, row-major
tokens.npz          input_ids, attention_mask int64 [400, 32]   (BERT)
tokens.labels.txt   1 when the sentence holds more positive than negative words
tokens16.npz        the same task at sequence length 16 (the same model, another dynamic length)
"""
import argparse
import json
import os

import numpy as np

import shapes

EVAL_SEED = 11  # training draws use other seeds (export_models.py)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data'))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(EVAL_SEED)

    images, classes, boxes = shapes.objects(rng, 400)
    np.savez_compressed(os.path.join(args.out, 'shapes.npz'), image=images)
    with open(os.path.join(args.out, 'shapes.classes.txt'), 'w') as f:
        f.writelines(f'{c}\n' for c in classes)
    with open(os.path.join(args.out, 'shapes.boxes.json'), 'w') as f:
        json.dump([{'box': [float(v) for v in b], 'label': int(c) + 1} for b, c in zip(boxes, classes)], f)

    images, masks = shapes.scenes(rng, 300)
    np.savez_compressed(os.path.join(args.out, 'scenes.npz'), image=images)
    np.save(os.path.join(args.out, 'scenes.masks.npy'), masks.reshape(len(masks), -1))

    ids, mask, labels = shapes.sentences(rng, 400)
    np.savez_compressed(os.path.join(args.out, 'tokens.npz'), input_ids=ids, attention_mask=mask)
    with open(os.path.join(args.out, 'tokens.labels.txt'), 'w') as f:
        f.writelines(f'{c}\n' for c in labels)
    ids, mask, labels = shapes.sentences(rng, 200, max_len=16, min_words=3)
    np.savez_compressed(os.path.join(args.out, 'tokens16.npz'), input_ids=ids, attention_mask=mask)
    with open(os.path.join(args.out, 'tokens16.labels.txt'), 'w') as f:
        f.writelines(f'{c}\n' for c in labels)

    for name in sorted(os.listdir(args.out)):
        print(f'{name}: {os.path.getsize(os.path.join(args.out, name)) / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
