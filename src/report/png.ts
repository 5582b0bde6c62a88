/**
 * SVG -> PNG through @napi-rs/canvas (skia; its prebuilt binary ships inside the npm package, and the project
 * already uses it to render the PP-OCR example). It is optional at run time: without it the report is written
 * with SVG plots only, and the caller is told why.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

export type Rasterise = (svg: string, scale?: number) => Promise<Uint8Array>;

let cached: Promise<Rasterise | string> | undefined;

/** A rasteriser, or the reason there is none (a sentence for the log). */
export function loadRasteriser(): Promise<Rasterise | string> {
  cached ??= rasteriserFrom(() => import('@napi-rs/canvas'));
  return cached;
}

/** Builds the rasteriser from an importer of @napi-rs/canvas (a parameter so the missing-package path is testable). */
export async function rasteriserFrom(importCanvas: () => Promise<typeof import('@napi-rs/canvas')>): Promise<Rasterise | string> {
  let canvas: typeof import('@napi-rs/canvas');
  try {
    canvas = await importCanvas();
  } catch (e) {
    return `PNG plots skipped: @napi-rs/canvas is not installed (${(e as Error).message.split('\n')[0]}); the SVG plots are complete`;
  }
  const { createCanvas, Image, GlobalFonts } = canvas;
  // A machine without system fonts would draw every label as nothing; the DejaVu package fills that gap.
  if (GlobalFonts.families.length === 0) {
    try {
      const pkg = createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json');
      const dir = join(dirname(pkg), 'ttf');
      if (existsSync(dir)) GlobalFonts.loadFontsFromDir(dir);
    } catch {
      // No fonts to add: shapes still render, text may not.
    }
  }
  return async (svg: string, scale = 2) => {
    const image = new Image();
    image.src = Buffer.from(svg);
    if (!image.width || !image.height) throw new Error('the SVG could not be decoded for PNG output');
    const surface = createCanvas(Math.ceil(image.width * scale), Math.ceil(image.height * scale));
    const ctx = surface.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, surface.width, surface.height);
    ctx.scale(scale, scale);
    ctx.drawImage(image, 0, 0);
    return surface.encode('png');
  };
}
