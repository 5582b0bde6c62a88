/**
 * Faults around a run, at the command line: a policy made for another model, a latency budget no policy can meet,
 * an output folder trtmix cannot write, and a disk that fills up while writing. Each is one line, exit code 2, and
 * never a half-written file.
 *
 * How a full disk is made without privileges: a child process under `ulimit -f` (with SIGXFSZ ignored, as a shell
 * `trap '' XFSZ` passes on to exec'd programs) gets EFBIG from write(2) once a file passes the limit, the same
 * failure mid-write that ENOSPC is. Where unprivileged user namespaces are allowed, a second test mounts a real
 * 16 KiB tmpfs (`unshare -r -m`) and gets ENOSPC itself.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertUserError, collect, FAST, ROOT, BIN, trtmix, workspace, type Workspace } from './cli-helpers.ts';
import { spawn } from 'node:child_process';

let ws: Workspace;
let run: string;

before(async () => {
  ws = workspace('cli-run');
  run = join(ws.dir, 'searched');
  const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'greedy', '--max-evaluations', '2', '--out', run]);
  assert.equal(r.code, 0, r.stderr);
});

describe('a policy made for another model', { concurrency: 2 }, () => {
  test('replay refuses it by sha256, and with --force by its layer names', async () => {
    const policy = join(run, 'policy.json');
    assertUserError(
      await trtmix(['replay', policy, '--model', ws.otherModel, '--data', ws.otherData]),
      /attention\.onnx \(sha256 [0-9a-f]{12}\) is not the model the policy was searched on \(.*tiny\.onnx, sha256 [0-9a-f]{12}\); pass that model, or --force/,
    );
    assertUserError(
      await trtmix(['replay', policy, '--model', ws.otherModel, '--data', ws.otherData, '--force']),
      /the policy names 5 layer\(s\) the model does not have \(conv1, dw2, pw3, \.\.\.\); pass the model the policy was searched on/,
    );
  });
  test('latency --policy and export refuse it too', async () => {
    const policy = join(run, 'policy.json');
    assertUserError(await trtmix(['latency', '--model', ws.otherModel, '--policy', policy]), /the policy names 5 layer\(s\) the model does not have/);
    assertUserError(await trtmix(['export', policy, '--model', ws.otherModel, '--format', 'trtexec']), /is not the model the policy was searched on/);
  });
  test('search --analysis refuses an analysis.json of another model', async () => {
    assertUserError(
      await trtmix(['search', '--model', ws.otherModel, '--data', ws.otherData, ...FAST, '--agent', 'greedy', '--analysis', join(run, 'analysis.json'), '--out', join(ws.dir, 'other-run')]),
      /--analysis .*analysis\.json was made for another model \(its layers differ\); run trtmix analyze on this model/,
    );
    assert.equal(existsSync(join(ws.dir, 'other-run', 'checkpoint.json')), false, 'a refused search leaves no checkpoint that would block the next one');
  });
});

describe('latency budget', () => {
  test('a budget below what any policy reaches is infeasible, says the best, and is refused before the analysis', async () => {
    const out = join(ws.dir, 'tight');
    const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'greedy', '--budget-ms', '0.001', '--out', out]);
    assertUserError(r, /the latency budget 0\.001 ms is infeasible on t4: no policy can be faster than (\d+\.\d{3}) ms \(all-INT8 \d+\.\d{3} ms, all-FP16 \d+\.\d{3} ms\); use --budget-ms \1 or more \(--budget \d\.\d\d\)/);
    assert.doesNotMatch(r.stderr, /sensitivity analysis/);
    assert.equal(existsSync(out), false, 'a refused search leaves no empty run folder');
    const fastest = /no policy can be faster than (\d+\.\d{3}) ms/.exec(r.stderr)![1];
    const fraction = /--budget (\d\.\d\d)\)/.exec(r.stderr)![1];
    const fp16 = Number(/all-FP16 (\d+\.\d{3}) ms/.exec(r.stderr)![1]);
    assert.ok(Number(fastest) < fp16, 'some policy beats all-FP16 on this model');
    // The suggested budgets are accepted: the search runs (whether it then meets the floor is another matter).
    for (const budget of [['--budget-ms', fastest], ['--budget', fraction]]) {
      const ok = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'int8', ...budget, '--out', join(ws.dir, `ok${budget[0]}`), '--json']);
      assert.notEqual(ok.code, 2, ok.stderr);
      assert.equal(JSON.parse(ok.stdout).status, 'done');
    }
    // A fraction of all-FP16 is checked the same way.
    assertUserError(await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--budget', '0.1', '--out', out]), /the latency budget \d+\.\d{3} ms is infeasible on t4/);
    assertUserError(await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--budget', '0.9', '--budget-ms', '1', '--out', out]), /give either --budget-ms .* or --budget .*, not both/);
  });
});

describe('output folder', { concurrency: 2 }, () => {
  test('a folder trtmix may not write is refused before any work', async (t) => {
    if (process.platform === 'win32') return t.skip('POSIX permissions');
    const target = unwritableFolder(ws.dir);
    if (!target) return t.skip('running as root, and neither another user nor a folder root cannot write is available here');
    const { dir: locked, as } = target;
    const inside = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--out', locked], as);
    assertUserError(inside, new RegExp(`cannot write into the output folder ${locked.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\((EACCES|EPERM|EROFS)\\); choose a writable --out`));
    assert.equal(inside.stderr.trim().split('\n').length, 1, 'refused before calibration');
    const below = await trtmix(['analyze', '--model', ws.model, '--data', ws.data, ...FAST.slice(0, 4), '--out', join(locked, 'analysis')], as);
    assertUserError(below, /cannot (write|create) .*analysis.*(permission denied|EACCES|EPERM|EROFS)/);
  });
  test('a file where the folder should be', async () => {
    const r = await trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--out', join(ws.data, 'run')]);
    assertUserError(r, /cannot create the output folder .*x\.npy\/run \(ENOTDIR\); choose a writable --out/);
    const e = await trtmix(['export', join(run, 'policy.json'), '--format', 'json', '--out', join(ws.data, 'precision.json')]);
    assertUserError(e, /cannot write .*x\.npy\/precision\.json: a parent path is a file, not a folder/);
  });
});

/**
 * An existing folder this run of trtmix cannot write into, and how to run trtmix there. Not root: a folder made
 * read-only. Root ignores permissions: the same folder for `nobody`, where nobody can read the checkout (not in a
 * clone under /root or a mktemp -d folder), else a folder even root cannot write (sysfs, a read-only mount).
 */
function unwritableFolder(base: string): { dir: string; as: { uid?: number; gid?: number } } | undefined {
  const locked = join(base, 'locked');
  if (!existsSync(locked)) mkdirSync(locked, { mode: 0o555 });
  if (process.getuid?.() !== 0) return { dir: locked, as: {} };
  const nobody = { uid: 65534, gid: 65534 };
  const readable = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)}); require('fs').accessSync(${JSON.stringify(ws.model)})`], nobody);
  if (!readable.error && readable.status === 0) return { dir: locked, as: nobody };
  for (const dir of ['/sys', '/proc/sys']) {
    if (!existsSync(dir)) continue;
    try {
      writeFileSync(join(dir, `.trtmix-write-test.${process.pid}`), '');
    } catch {
      return { dir, as: {} };
    }
  }
  return undefined;
}

/** Runs a snippet with src/fs.ts in a child under a 1 KiB file size limit. */
function underFileSizeLimit(script: string) {
  const code = `import { writeFileAtomic } from ${JSON.stringify(join(ROOT, 'src', 'fs.ts'))};\n${script}`;
  return spawnSync('sh', ['-c', `trap '' XFSZ; ulimit -f 2; exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, code], { encoding: 'utf8', cwd: ROOT });
}

function tmpFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
}

describe('a disk that fills up while writing', () => {
  test('writeFileAtomic: the previous policy.json stays whole, no temp file is left, the error is the user\'s', () => {
    const dir = join(ws.dir, 'fsize');
    mkdirSync(dir);
    const previous = `${JSON.stringify({ version: 1, layers: [] })}\n`;
    writeFileSync(join(dir, 'policy.json'), previous);
    const r = underFileSizeLimit(`
      const big = JSON.stringify({ version: 1, layers: Array.from({ length: 200 }, (_, i) => ({ name: 'layer' + i, precision: 'int8' })) });
      try { writeFileAtomic(${JSON.stringify(join(dir, 'policy.json'))}, big); console.log('written'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`);
    assert.equal(r.status, 0, r.stderr);
    const thrown = JSON.parse(r.stdout);
    assert.equal(thrown.name, 'UserError');
    assert.match(thrown.message, /cannot write .*policy\.json: the file size limit \(ulimit -f\) was reached; raise it and run again \(nothing was overwritten\)/);
    assert.equal(readFileSync(join(dir, 'policy.json'), 'utf8'), previous);
    assert.deepEqual(readdirSync(dir), ['policy.json']);
  });

  test('trtmix search: one line, exit 2, and every file it left parses', async () => {
    const out = join(ws.dir, 'limited');
    const child = spawn('sh', ['-c', `trap '' XFSZ; ulimit -f 4; exec "$0" "$@"`, process.execPath, BIN, 'search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'int8', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await collect(child);
    assertUserError(r, /cannot write .*limited\/.*: the file size limit \(ulimit -f\) was reached; raise it and run again/);
    assert.deepEqual(tmpFiles(out), []);
    for (const f of ['checkpoint.json', 'policy.json']) if (existsSync(join(out, f))) JSON.parse(readFileSync(join(out, f), 'utf8'));
  });

  test('a real full disk (16 KiB tmpfs): ENOSPC is "the disk is full", and the run folder holds no half-written file', async (t) => {
    if (spawnSync('unshare', ['-r', '-m', 'true']).status !== 0) return t.skip('unprivileged user namespaces are not available here (the ulimit test above covers the same path)');
    const mnt = join(ws.dir, 'small-disk');
    mkdirSync(mnt);
    const args = ['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'int8', '--out', join(mnt, 'run')];
    // Inside the namespace the mount is private; the script copies what it left out to the test's folder before exiting.
    const keep = join(ws.dir, 'small-disk-left');
    const script = `mount -t tmpfs -o size=16k none "$1" && shift && "$@"; rc=$?; cp -r "${mnt}" "${keep}"; exit $rc`;
    const child = spawn('unshare', ['-r', '-m', 'sh', '-c', script, 'sh', mnt, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await collect(child);
    assertUserError(r, /cannot write .*small-disk\/run\/.*: the disk is full; free space and run again/);
    const left = join(keep, 'run');
    assert.deepEqual(tmpFiles(left), []);
    for (const f of readdirSync(left).filter((n) => n.endsWith('.json'))) JSON.parse(readFileSync(join(left, f), 'utf8'));
    assert.ok(existsSync(join(left, 'policy.json')), 'the best policy was saved before the disk filled');
  });
});
