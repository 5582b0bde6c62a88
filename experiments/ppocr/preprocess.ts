/**
 * PP-OCR preprocessing, matched to PaddleOCR's Python code:
 * - recognition / direction classifier: `resize_norm_img` (tools/infer/predict_rec.py, predict_cls.py):
 *   keep the aspect ratio at height 48, width = min(W, ceil(48 * w / h)) (wider lines are squeezed to W),
 *   cv2.resize (bilinear) on uint8, then (x / 255 - 0.5) / 0.5 into [-1, 1], zeros on the right up to W.
 * - detector: `NormalizeImage` with ImageNet mean/std on x / 255, H and W multiples of 32.
 * Images here are single-channel grey (text is grey on grey), so BGR and RGB planes are equal.
 */

export interface GrayImage {
  width: number;
  height: number;
  /** Row-major uint8 pixels. */
  pixels: Uint8Array;
}

/** cvRound: round half to even, as the SSE conversion OpenCV uses does. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const COEF_SCALE = 2048; // INTER_RESIZE_COEF_SCALE (11 fractional bits)

/** Source index and fixed-point weights per destination index, as cv::resize computes them. */
function linearTaps(dstSize: number, srcSize: number, clampAtEdges: boolean) {
  const scale = 1 / (dstSize / srcSize);
  const index = new Int32Array(dstSize);
  const w0 = new Int32Array(dstSize);
  const w1 = new Int32Array(dstSize);
  for (let d = 0; d < dstSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    // Columns outside the image take the edge pixel with weight 1; rows are clamped when read instead.
    if (clampAtEdges && s < 0) [f, s] = [0, 0];
    if (clampAtEdges && s >= srcSize - 1) [f, s] = [0, srcSize - 1];
    index[d] = s;
    w0[d] = roundHalfEven(Math.fround(1 - f) * COEF_SCALE);
    w1[d] = roundHalfEven(f * COEF_SCALE);
  }
  return { index, w0, w1 };
}

/**
 * cv2.resize(img, (width, height)) with the default INTER_LINEAR on one uint8 channel, bit-exact
 * with OpenCV's fixed-point path: 11-bit weights, a horizontal pass into int, then the vertical
 * pass ((b0*(S0>>4))>>16) + ((b1*(S1>>4))>>16) + 2 >> 2.
 */
export function resizeBilinear(src: GrayImage, width: number, height: number): GrayImage {
  const cols = linearTaps(width, src.width, true);
  const rows = linearTaps(height, src.height, false);
  const clampRow = (r: number) => Math.min(Math.max(r, 0), src.height - 1);
  const horizontal = (r: number): Int32Array => {
    const out = new Int32Array(width);
    const base = r * src.width;
    for (let x = 0; x < width; x++) {
      const s = cols.index[x];
      const next = Math.min(s + 1, src.width - 1);
      out[x] = src.pixels[base + s] * cols.w0[x] + src.pixels[base + next] * cols.w1[x];
    }
    return out;
  };
  const cache = new Map<number, Int32Array>();
  const row = (r: number) => {
    let h = cache.get(r);
    if (!h) cache.set(r, (h = horizontal(r)));
    return h;
  };
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const s0 = row(clampRow(rows.index[y]));
    const s1 = row(clampRow(rows.index[y] + 1));
    const b0 = rows.w0[y];
    const b1 = rows.w1[y];
    for (let x = 0; x < width; x++) {
      const v = (((b0 * (s0[x] >> 4)) >> 16) + ((b1 * (s1[x] >> 4)) >> 16) + 2) >> 2;
      out[y * width + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, pixels: out };
}

/** Width a line gets in resize_norm_img at height `height` and maximum width `maxWidth`. */
export function resizedWidth(width: number, height: number, targetHeight: number, maxWidth: number): number {
  return Math.min(maxWidth, Math.ceil((targetHeight * width) / height));
}

/** The uint8 stage of resize_norm_img: the line resized to targetHeight x resizedWidth. */
export function resizeForRec(img: GrayImage, targetHeight: number, maxWidth: number): GrayImage {
  return resizeBilinear(img, resizedWidth(img.width, img.height, targetHeight, maxWidth), targetHeight);
}

/**
 * The float stage of resize_norm_img for a batch: uint8 [N, H, maxWidth] with each sample's valid
 * width -> float32 [N, 3, H, maxWidth] in [-1, 1], zeros right of the valid width.
 */
export function normalizeRecBatch(
  pixels: Uint8Array,
  widths: ArrayLike<number>,
  height: number,
  maxWidth: number,
): Float32Array {
  const n = widths.length;
  const plane = height * maxWidth;
  const out = new Float32Array(n * 3 * plane);
  // (v / 255 - 0.5) / 0.5 computed in float32 as NumPy does on a float32 array.
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (Math.fround(v / 255) - 0.5) / 0.5;
  for (let s = 0; s < n; s++) {
    const w = widths[s];
    const srcBase = s * plane;
    const dstBase = s * 3 * plane;
    for (let y = 0; y < height; y++) {
      const row = y * maxWidth;
      for (let x = 0; x < w; x++) out[dstBase + row + x] = lut[pixels[srcBase + row + x]];
    }
    out.copyWithin(dstBase + plane, dstBase, dstBase + plane);
    out.copyWithin(dstBase + 2 * plane, dstBase, dstBase + plane);
  }
  return out;
}

/** ImageNet statistics PP-OCR's detector is trained with (RGB order; PaddleOCR feeds BGR, equal for grey). */
export const DET_MEAN = [0.485, 0.456, 0.406];
export const DET_STD = [0.229, 0.224, 0.225];

/** Detector input for grey pages of equal size: uint8 [N, H, W] -> float32 [N, 3, H, W]. */
export function normalizeDetBatch(pixels: Uint8Array, n: number, height: number, width: number): Float32Array {
  const plane = height * width;
  const out = new Float32Array(n * 3 * plane);
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < 3; c++) {
      const base = (s * 3 + c) * plane;
      for (let i = 0; i < plane; i++) out[base + i] = (pixels[s * plane + i] / 255 - DET_MEAN[c]) / DET_STD[c];
    }
  }
  return out;
}
