/**
 * Renders the built-in PP-OCR example sets, reproducibly from a seed, and commits them compactly:
 *
 *   node --import tsx experiments/ppocr/render.ts [--count 512] [--seed 20240611] [--out experiments/ppocr/data]
 *   node --import tsx experiments/ppocr/render.ts --export-npy DIR   # the committed set as --data/--labels files
 *
 * Each line is drawn with skia (@napi-rs/canvas) in one of several TTF fonts (DejaVu, Roboto, PT Serif
 * from npm packages) at several sizes, near-black text on a light, slightly graded background with
 * mild sensor noise, then taken through the uint8 stage of PaddleOCR's resize_norm_img:
 *   rec.npz   pixels uint8 [N,48,320], widths int32 [N]    + rec.labels.txt (the text of each line)
 *   cls.npz   pixels uint8 [N,48,192], widths int32 [N], labels uint8 [N] (1 = rotated 180 degrees)
 *   det.npz   pixels uint8 [P,H,W] pages of several lines   + det.boxes.json (line boxes per page)
 *   meta.json the seed, the generator settings and each line's font and size
 * dataset.ts turns these into float32 model inputs on load.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { writeNpz } from '../../src/data/npz.ts';
import { exportExamplesAsNpy } from './dataset.ts';
import { resizeForRec, type GrayImage } from './preprocess.ts';
import { TextLineGenerator } from './text-lines.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const args = yargs(hideBin(process.argv))
  .option('count', { type: 'number', default: 512, describe: 'text lines to render' })
  .option('seed', { type: 'number', default: 20240611 })
  .option('out', { type: 'string', default: join(HERE, 'data') })
  .option('pages', { type: 'number', default: 4, describe: 'detector pages to render' })
  .option('export-npy', { type: 'string', describe: 'write the committed set as .npy + labels into this folder and exit' })
  .strict()
  .parseSync();

if (args.exportNpy !== undefined) {
  for (const f of exportExamplesAsNpy(args.exportNpy)) console.log(f);
  process.exit(0);
}

// Imported here so that --export-npy works without the rendering devDependencies.
const { createCanvas, GlobalFonts } = await import('@napi-rs/canvas');

// ---- fonts: TTF files shipped in npm packages, registered under explicit aliases
const FONTS: Record<string, string> = {
  'DejaVu Sans': 'dejavu-fonts-ttf/ttf/DejaVuSans.ttf',
  'DejaVu Sans Bold': 'dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf',
  'DejaVu Sans Condensed': 'dejavu-fonts-ttf/ttf/DejaVuSansCondensed.ttf',
  'DejaVu Sans Mono': 'dejavu-fonts-ttf/ttf/DejaVuSansMono.ttf',
  'DejaVu Serif': 'dejavu-fonts-ttf/ttf/DejaVuSerif.ttf',
  'Roboto': '@expo-google-fonts/roboto/400Regular/Roboto_400Regular.ttf',
  'Roboto Medium': '@expo-google-fonts/roboto/500Medium/Roboto_500Medium.ttf',
  'Roboto Bold': '@expo-google-fonts/roboto/700Bold/Roboto_700Bold.ttf',
  'PT Serif': '@expo-google-fonts/pt-serif/400Regular/PTSerif_400Regular.ttf',
  'PT Serif Bold': '@expo-google-fonts/pt-serif/700Bold/PTSerif_700Bold.ttf',
};
const nodeModules = dirname(dirname(require.resolve('seedrandom/package.json')));
for (const [alias, file] of Object.entries(FONTS)) {
  if (!GlobalFonts.registerFromPath(join(nodeModules, file), alias)) throw new Error(`cannot load font ${file}`);
}
const fontNames = Object.keys(FONTS);

// ---- seeding: one stream for the text, one for the look, so changing the look keeps the texts
const textRng = seedrandom(`${args.seed}:text`);
const lookRng = seedrandom(`${args.seed}:look`);
const uniform = (lo: number, hi: number) => lo + (hi - lo) * lookRng();
const gaussian = () => Math.sqrt(-2 * Math.log(1 - lookRng())) * Math.cos(2 * Math.PI * lookRng());

interface LineStyle {
  font: string;
  fontPx: number;
  ink: number;
  paper: number;
  noise: number;
  /** Gaussian blur radius in px (out of focus), 0 for none. */
  blur: number;
}

function drawLine(text: string, style: LineStyle): GrayImage {
  const font = `${style.fontPx}px "${style.font}"`;
  const probe = createCanvas(8, 8).getContext('2d');
  probe.font = font;
  const textWidth = Math.ceil(probe.measureText(text).width);
  // Detector crops keep a little margin around the text; vary it like they do.
  const padLeft = Math.round(style.fontPx * uniform(0.1, 0.5));
  const padRight = Math.round(style.fontPx * uniform(0.1, 0.5));
  const width = textWidth + padLeft + padRight;
  const height = Math.round(style.fontPx * uniform(1.2, 1.6));
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  const tilt = uniform(-12, 12);
  const gradient = ctx.createLinearGradient(0, 0, width, height);
  gradient.addColorStop(0, grey(style.paper));
  gradient.addColorStop(1, grey(Math.min(255, style.paper + tilt)));
  ctx.fillStyle = gradient;
  ctx.fillRect(0, 0, width, height);
  ctx.font = font;
  ctx.fillStyle = grey(style.ink);
  ctx.textBaseline = 'middle';
  if (style.blur > 0) ctx.filter = `blur(${style.blur.toFixed(2)}px)`;
  ctx.fillText(text, padLeft, height / 2 + uniform(-0.05, 0.05) * height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const pixels = new Uint8Array(width * height);
  for (let i = 0; i < pixels.length; i++) {
    const v = (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3 + style.noise * gaussian();
    pixels[i] = Math.min(255, Math.max(0, Math.round(v)));
  }
  return { width, height, pixels };
}

function grey(v: number): string {
  const c = Math.round(v);
  return `rgb(${c},${c},${c})`;
}

/** A JSON array with one element per line (rows given as objects, or as already-encoded JSON text). */
function jsonRows(rows: unknown[], indent: string): string {
  const encoded = rows.map((r) => indent + (typeof r === 'string' ? r.trimStart() : JSON.stringify(r)));
  return `[\n${encoded.join(',\n')}\n${indent.slice(1)}]`;
}

function rotate180(img: GrayImage): GrayImage {
  return { ...img, pixels: img.pixels.slice().reverse() };
}

/** Packs resized lines into [N, H, maxWidth] uint8 with widths; columns right of a line stay 0. */
function pack(lines: GrayImage[], height: number, maxWidth: number): { pixels: Uint8Array; widths: Int32Array } {
  const pixels = new Uint8Array(lines.length * height * maxWidth);
  const widths = Int32Array.from(lines, (l) => l.width);
  lines.forEach((l, s) => {
    for (let y = 0; y < height; y++) {
      pixels.set(l.pixels.subarray(y * l.width, (y + 1) * l.width), (s * height + y) * maxWidth);
    }
  });
  return { pixels, widths };
}

// ---- the text lines
const started = performance.now();
const generator = new TextLineGenerator(textRng);
const texts = Array.from({ length: args.count }, () => generator.next());
const styles: LineStyle[] = texts.map(() => ({
  font: fontNames[Math.floor(lookRng() * fontNames.length)],
  // Log-uniform sizes: small crops get upscaled to 48 px high and come out soft, as camera crops do.
  fontPx: Math.round(Math.exp(uniform(Math.log(13), Math.log(56)))),
  ink: uniform(0, 100),
  paper: uniform(165, 250),
  noise: uniform(0, 6),
  blur: lookRng() < 0.3 ? uniform(0.4, 1.2) : 0,
}));
const images = texts.map((t, i) => drawLine(t, styles[i]));

// ---- recognition set
const rec = pack(images.map((img) => resizeForRec(img, 48, 320)), 48, 320);
mkdirSync(args.out, { recursive: true });
writeNpz(join(args.out, 'rec.npz'), {
  pixels: { dtype: 'uint8', shape: [args.count, 48, 320], data: rec.pixels },
  widths: { dtype: 'int32', shape: [args.count], data: rec.widths },
}, { compress: true });
writeFileSync(join(args.out, 'rec.labels.txt'), texts.join('\n') + '\n');

// ---- direction classifier set: exactly half the lines turned upside down, chosen by the seed
const order = texts.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(lookRng() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const clsLabels = new Uint8Array(args.count);
for (const i of order.slice(0, Math.floor(args.count / 2))) clsLabels[i] = 1;
const cls = pack(images.map((img, i) => resizeForRec(clsLabels[i] ? rotate180(img) : img, 48, 192)), 48, 192);
writeNpz(join(args.out, 'cls.npz'), {
  pixels: { dtype: 'uint8', shape: [args.count, 48, 192], data: cls.pixels },
  widths: { dtype: 'int32', shape: [args.count], data: cls.widths },
  labels: { dtype: 'uint8', shape: [args.count], data: clsLabels },
}, { compress: true });

// ---- detector pages: lines set on one page canvas whose sides are multiples of 32
const PAGE_W = 640;
const PAGE_H = 480;
const pages = new Uint8Array(args.pages * PAGE_H * PAGE_W);
const pageBoxes: { text: string; box: [number, number, number, number] }[][] = [];
let nextFont = 0;
for (let p = 0; p < args.pages; p++) {
  const canvas = createCanvas(PAGE_W, PAGE_H);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = grey(uniform(215, 250));
  ctx.fillRect(0, 0, PAGE_W, PAGE_H);
  ctx.textBaseline = 'top';
  const boxes: { text: string; box: [number, number, number, number] }[] = [];
  let y = Math.round(uniform(16, 40));
  for (;;) {
    const text = generator.next();
    const fontPx = Math.round(uniform(20, 34));
    ctx.font = `${fontPx}px "${fontNames[nextFont++ % fontNames.length]}"`;
    const m = ctx.measureText(text);
    const w = Math.ceil(m.width);
    const h = Math.ceil(fontPx * 1.2);
    if (y + h > PAGE_H - 16) break;
    if (w > PAGE_W - 32) continue;
    const x = Math.round(uniform(16, PAGE_W - 16 - w));
    ctx.fillStyle = grey(uniform(0, 60));
    ctx.fillText(text, x, y);
    // The ink's bounding box (what a text detector outlines), not the line's advance box.
    const box: [number, number, number, number] = [
      Math.floor(x - m.actualBoundingBoxLeft), Math.floor(y - m.actualBoundingBoxAscent),
      Math.ceil(x + m.actualBoundingBoxRight), Math.ceil(y + m.actualBoundingBoxDescent),
    ];
    boxes.push({ text, box });
    y += h + Math.round(uniform(8, 28));
  }
  const rgba = ctx.getImageData(0, 0, PAGE_W, PAGE_H).data;
  const page = pages.subarray(p * PAGE_H * PAGE_W, (p + 1) * PAGE_H * PAGE_W);
  for (let i = 0; i < page.length; i++) {
    const v = (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3 + 2 * gaussian();
    page[i] = Math.min(255, Math.max(0, Math.round(v)));
  }
  pageBoxes.push(boxes);
}
writeNpz(join(args.out, 'det.npz'), {
  pixels: { dtype: 'uint8', shape: [args.pages, PAGE_H, PAGE_W], data: pages },
}, { compress: true });
writeFileSync(join(args.out, 'det.boxes.json'), jsonRows(pageBoxes.map((page) => jsonRows(page, '  ')), ' '));

const lengths = texts.map((t) => [...t].length);
writeFileSync(
  join(args.out, 'meta.json'),
  JSON.stringify(
    {
      seed: args.seed,
      count: args.count,
      lengths: { min: Math.min(...lengths), max: Math.max(...lengths), mean: lengths.reduce((a, b) => a + b, 0) / lengths.length },
      squeezed: images.filter((img) => Math.ceil((48 * img.width) / img.height) > 320).length,
    },
    null,
    1,
  ).replace(/\n}$/, `,\n "lines": ${jsonRows(texts.map((text, i) => ({ text, font: styles[i].font, fontPx: styles[i].fontPx, width: images[i].width, height: images[i].height })), '  ')}\n}\n`),
);
console.log(`rendered ${args.count} lines and ${args.pages} pages into ${args.out} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
