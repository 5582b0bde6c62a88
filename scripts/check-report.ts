/**
 * Opens report.html in Debian's headless Chromium and checks that a person would see four plots.
 *
 *   node --import tsx scripts/check-report.ts [--out DIR] [--evaluations N] [--html existing/report.html]
 *
 * Without --html it renders a report for the built-in example's model first: the real layers of PP-OCRv4 rec
 * (names, ops, MACs from layer discovery) with a seeded, simulated search history (test/report-fixture.ts).
 * The browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe), so no extra package
 * and no port: the page's own CSP still forbids any fetch, and the checks read the live DOM and layout.
 * Checks: four <svg data-plot> laid out with a real size, every named mark group drawn with the expected
 * count, and in a full-page screenshot each plot's box has ink and colour (not blank, not all grey).
 * Exit 0 when all hold, 1 otherwise; the screenshot is written either way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../src/fs.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** Chromium flags for a quiet, isolated, offline run. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--no-default-browser-check',
  '--hide-scrollbars',
  '--mute-audio',
  '--remote-debugging-pipe',
];

/** A minimal DevTools-protocol client over Chromium's pipe transport (fd 3 in, fd 4 out, NUL-delimited JSON). */
class DevTools {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private listeners: Array<(msg: any) => void> = [];
  private buffer = '';

  constructor(private readonly child: ChildProcess) {
    const out = child.stdio[4] as NodeJS.ReadableStream;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 1);
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id)!;
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
          else p.resolve(msg.result);
        } else {
          for (const l of this.listeners) l(msg);
        }
      }
    });
  }

  send(method: string, params: object = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    const input = this.child.stdio[3] as NodeJS.WritableStream;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  waitFor(method: string, sessionId: string, timeoutMs: number): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), timeoutMs);
      const listener = (msg: any) => {
        if (msg.method === method && msg.sessionId === sessionId) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== listener);
          resolve(msg.params);
        }
      };
      this.listeners.push(listener);
    });
  }
}

export interface PlotCheck {
  id: string;
  box: { x: number; y: number; width: number; height: number };
  /** Marks drawn per named vega mark group, from the live DOM. */
  marks: Record<string, number>;
  /** Share of the plot's pixels that are not near-white. */
  ink: number;
  /** Pixels with clear colour (not grey): data marks, not just axes. */
  coloured: number;
}

export interface BrowserCheck {
  plots: PlotCheck[];
  pageHeight: number;
  /** <script> elements in the live DOM: a report has none, so any would come from an unescaped name. */
  scripts: number;
  /** Hover texts of every mark, as the browser decoded them. */
  titles: string[];
  screenshot: string;
  /** Share of non-white pixels in the whole screenshot. */
  ink: number;
}

/** What runs in the page: each plot's box and its marks per named group. */
const INSPECT = `(() => ({ scripts: document.scripts.length, titles: [...document.querySelectorAll('svg[data-plot] title')].map((t) => t.textContent), plots: [...document.querySelectorAll('svg[data-plot]')].map((svg) => {
  const r = svg.getBoundingClientRect();
  const marks = {};
  for (const g of svg.querySelectorAll('g.role-mark')) {
    const name = [...g.classList].find((c) => c.endsWith('_marks'));
    if (name) marks[name.slice(0, -6)] = g.querySelectorAll(':scope > [role="graphics-symbol"]').length;
  }
  return { id: svg.dataset.plot, box: { x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height }, marks };
}) }))()`;

/** Loads the page in headless Chromium, inspects it, and writes a full-page PNG screenshot. */
export async function inspectInBrowser(htmlPath: string, screenshotPath: string, width = 1280, height = 2400): Promise<BrowserCheck> {
  const profile = mkdtempSync(join(tmpdir(), 'trtmix-chromium-'));
  const child = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, `--window-size=${width},${height}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const spawnError = new Promise<never>((_, reject) => child.on('error', (e) => reject(new Error(`cannot start ${CHROMIUM}: ${e.message}`))));
  try {
    const cdp = new DevTools(child);
    const call = <T>(p: Promise<T>) => Promise.race([p, spawnError]);
    const { targetId } = await call(cdp.send('Target.createTarget', { url: 'about:blank' }));
    const { sessionId } = await call(cdp.send('Target.attachToTarget', { targetId, flatten: true }));
    await cdp.send('Page.enable', {}, sessionId);
    await cdp.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    const loaded = cdp.waitFor('Page.loadEventFired', sessionId, 60_000);
    const nav = await cdp.send('Page.navigate', { url: pathToFileURL(resolve(htmlPath)).href }, sessionId);
    if (nav.errorText) throw new Error(`Chromium could not open ${htmlPath}: ${nav.errorText}`);
    await loaded;
    const evaluated = await cdp.send('Runtime.evaluate', { expression: INSPECT, returnByValue: true }, sessionId);
    if (evaluated.exceptionDetails) throw new Error(`page inspection failed: ${evaluated.exceptionDetails.text}`);
    const { plots, scripts, titles } = evaluated.result.value as { plots: Array<Omit<PlotCheck, 'ink' | 'coloured'>>; scripts: number; titles: string[] };
    const metrics = await cdp.send('Page.getLayoutMetrics', {}, sessionId);
    const pageHeight = Math.ceil(metrics.cssContentSize?.height ?? metrics.contentSize.height);
    const shot = await cdp.send(
      'Page.captureScreenshot',
      { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width, height: pageHeight, scale: 1 } },
      sessionId,
    );
    const png = Buffer.from(shot.data, 'base64');
    writeFileAtomic(screenshotPath, png);
    await cdp.send('Browser.close').catch(() => undefined);
    const pixels = await decodePng(png);
    return {
      plots: plots.map((p) => ({ ...p, ...inkIn(pixels, p.box) })),
      pageHeight,
      scripts,
      titles,
      screenshot: screenshotPath,
      ink: inkIn(pixels, { x: 0, y: 0, width: pixels.width, height: pixels.height }).ink,
    };
  } catch (e) {
    throw new Error(`${(e as Error).message}${stderr ? `\nchromium stderr:\n${stderr.slice(-2000)}` : ''}`);
  } finally {
    if (child.exitCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }
    rmSync(profile, { recursive: true, force: true });
  }
}

interface Pixels {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

async function decodePng(png: Buffer): Promise<Pixels> {
  const { createCanvas, loadImage } = await import('@napi-rs/canvas');
  const image = await loadImage(png);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const { data } = ctx.getImageData(0, 0, image.width, image.height);
  return { width: image.width, height: image.height, data };
}

function inkIn(px: Pixels, box: PlotCheck['box']): { ink: number; coloured: number } {
  const x0 = Math.max(0, Math.floor(box.x));
  const y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(px.width, Math.ceil(box.x + box.width));
  const y1 = Math.min(px.height, Math.ceil(box.y + box.height));
  let ink = 0;
  let coloured = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * px.width + x) * 4;
      const r = px.data[i];
      const g = px.data[i + 1];
      const b = px.data[i + 2];
      if (Math.min(r, g, b) < 235) ink++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
    }
  }
  const area = Math.max(1, (x1 - x0) * (y1 - y0));
  return { ink: ink / area, coloured };
}

/** What the page must show; the first failure reads as one sentence. */
export function assertRendered(check: BrowserCheck, expected: Record<string, Record<string, number>>): string[] {
  const problems: string[] = [];
  if (check.scripts > 0) problems.push(`the page has ${check.scripts} <script> elements: some text was not escaped`);
  const ids = check.plots.map((p) => p.id).sort();
  const want = Object.keys(expected).sort();
  if (ids.join() !== want.join()) problems.push(`plots on the page: [${ids.join(', ')}], expected [${want.join(', ')}]`);
  for (const plot of check.plots) {
    const { box } = plot;
    if (box.width < 200 || box.height < 80) problems.push(`${plot.id}: laid out at ${box.width}x${box.height} px, too small to read`);
    if (box.y + box.height > check.pageHeight + 1) problems.push(`${plot.id}: extends below the page`);
    if (plot.ink < 0.01) problems.push(`${plot.id}: blank in the screenshot (ink ${(plot.ink * 100).toFixed(2)} %)`);
    if (Object.values(plot.marks).every((n) => n === 0)) problems.push(`${plot.id}: no data marks in the DOM`);
    if (plot.coloured < 150) problems.push(`${plot.id}: only ${plot.coloured} coloured pixels: its data marks did not render`);
    for (const [group, count] of Object.entries(expected[plot.id] ?? {})) {
      if (plot.marks[group] !== count) problems.push(`${plot.id}: ${plot.marks[group] ?? 'no'} ${group} marks, expected ${count}`);
    }
  }
  return problems;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = resolve(arg('--out') ?? 'runs/check-report');
  const evaluations = Number(arg('--evaluations') ?? 600);
  if (!existsSync(CHROMIUM)) {
    console.error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) and run again`);
    return 2;
  }
  mkdirSync(out, { recursive: true });
  let htmlPath = arg('--html');
  let expected: Record<string, Record<string, number>> = {
    'learning-curve': {},
    'score-latency': {},
    'precision-strip': {},
    sensitivity: {},
  };
  if (!htmlPath) {
    const { builtInExampleInput, expectedMarks } = await import('../test/report-fixture.ts');
    const input = await builtInExampleInput(evaluations);
    const { renderSearchReport } = await import('../src/report/index.ts');
    const t0 = performance.now();
    const files = await renderSearchReport(input, out);
    console.error(`rendered ${files.html} (${input.history.length} evaluations, ${input.layers.length} layers) in ${(performance.now() - t0).toFixed(0)} ms${files.pngSkipped ? `; ${files.pngSkipped}` : ''}`);
    htmlPath = files.html;
    expected = expectedMarks(input);
  } else {
    if (!existsSync(htmlPath)) {
      console.error(`${htmlPath} does not exist: give the report.html of a run`);
      return 2;
    }
    const html = readFileSync(htmlPath, 'utf8');
    expected = Object.fromEntries([...html.matchAll(/<svg data-plot="([^"]+)"/g)].map((m) => [m[1], {}]));
    if (Object.keys(expected).length === 1 && expected.sensitivity) expected = { sensitivity: {} };
    else expected = { 'learning-curve': {}, 'score-latency': {}, 'precision-strip': {}, sensitivity: {} };
  }
  const t1 = performance.now();
  const check = await inspectInBrowser(htmlPath, join(out, 'report-screenshot.png'));
  console.error(`chromium: page ${check.pageHeight} px tall, screenshot ${check.screenshot} in ${(performance.now() - t1).toFixed(0)} ms`);
  for (const p of check.plots) {
    const marks = Object.entries(p.marks).map(([k, v]) => `${k}=${v}`).join(' ');
    console.error(`  ${p.id}: ${Math.round(p.box.width)}x${Math.round(p.box.height)} at y=${Math.round(p.box.y)}, ink ${(p.ink * 100).toFixed(1)} %, ${p.coloured} coloured px; ${marks}`);
  }
  const problems = assertRendered(check, expected);
  for (const p of problems) console.error(`FAIL ${p}`);
  if (problems.length === 0) console.error(`OK: ${check.plots.length} plots rendered`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
