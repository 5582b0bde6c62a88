/** Running trtmix with --metrics-port and scraping it while it runs, for the monitoring tests. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExposition, type Family } from './prometheus-text.ts';
import { collect, start } from './cli-helpers.ts';

/** The quantizable layers of test/pareto-fixture.ts's model. */
export const LAYERS = ['conv0', 'conv1', 'conv2', 'fc'];

/**
 * A cosine metric whose score takes `delayMs` per call, so that a command on a tiny model runs long enough to be
 * scraped. Its per-sample statistics are immediate: the intervals resample those, not the slow score (a slow
 * whole-set score would be called 1000 times per interval).
 */
export function slowMetric(dir: string, delayMs: number): string {
  const path = join(dir, 'slow-cosine.mjs');
  writeFileSync(path, `const cosines = (outputs, reference) => outputs.map((o, i) => {
  const a = o.logits.data, b = reference[i].logits.data;
  let ab = 0, aa = 0, bb = 0;
  for (let k = 0; k < a.length; k++) { ab += a[k] * b[k]; aa += a[k] * a[k]; bb += b[k] * b[k]; }
  return ab / (Math.sqrt(aa * bb) || 1);
});
export default {
  name: 'slow-cosine',
  higherIsBetter: true,
  async score({ outputs, reference }) {
    await new Promise((resolve) => setTimeout(resolve, ${delayMs}));
    return cosines(outputs, reference).reduce((a, b) => a + b, 0) / outputs.length;
  },
  statistics({ outputs, reference }) {
    return cosines(outputs, reference).map((c) => [c]);
  },
  fromStatistics([sum], n) {
    return sum / n;
  },
};
`);
  return path;
}

interface Scrape {
  families: Map<string, Family>;
  contentType: string | null;
}

/** Runs trtmix with --metrics-port 0, scraping the URL it prints every 100 ms until it exits; every body must parse. */
export async function scrapeWhileRunning(args: string[]) {
  const child = start([...args, '--metrics-port', '0']);
  const done = collect(child);
  let url: string | undefined;
  child.stderr!.on('data', (d: string) => { url ??= /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(d)?.[1]; });
  let exited = false;
  void done.then(() => { exited = true; });
  const scrapes: Scrape[] = [];
  while (!exited) {
    await new Promise((r) => setTimeout(r, 100));
    if (!url || exited) continue;
    try {
      const res = await fetch(url);
      const body = await res.text();
      assert.equal(res.status, 200);
      scrapes.push({ families: parseExposition(body), contentType: res.headers.get('content-type') });
    } catch (e) {
      if (e instanceof assert.AssertionError || (e as Error).name === 'ExpositionError') throw e;
      // the command ended between the check and the request
    }
  }
  return { result: await done, url, scrapes };
}

export const value = (f: Family | undefined, labels: Record<string, string> = {}) =>
  f?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

