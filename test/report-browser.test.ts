import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, assertRendered, inspectInBrowser } from '../scripts/check-report.ts';
import { renderSearchReport } from '../src/report/index.ts';
import { awkwardLayers, builtInExampleInput, expectedMarks, syntheticSearch } from './report-fixture.ts';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium)`;

test('headless Chromium shows the four plots of the built-in example report', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-browser-'));
  try {
    const input = await builtInExampleInput(300);
    assert.ok(input.layers.length > 40, 'PP-OCRv4 rec has its ~50 quantizable layers');
    const files = await renderSearchReport(input, dir, { png: false });
    const check = await inspectInBrowser(files.html, join(dir, 'screenshot.png'));
    assert.deepEqual(assertRendered(check, expectedMarks(input)), []);
    assert.equal(check.plots.length, 4);
    assert.ok(statSync(check.screenshot).size > 50_000, 'a screenshot of four plots is not a tiny blank PNG');
    assert.ok(check.ink > 0.05, `screenshot ink ${check.ink}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in the browser, layer names stay text: no script runs, hover titles read back exactly', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-browser-'));
  try {
    const input = syntheticSearch(awkwardLayers(), { evaluations: 60 });
    const files = await renderSearchReport(input, dir, { png: false });
    const check = await inspectInBrowser(files.html, join(dir, 'screenshot.png'), 1280, 1200);
    assert.deepEqual(assertRendered(check, expectedMarks(input)), []);
    assert.equal(check.scripts, 0);
    const hostile = awkwardLayers()[1].name;
    assert.ok(check.titles.some((t) => t.startsWith(`2. ${hostile} (Conv)`)), 'the precision bar of the layer shows its exact name on hover');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
