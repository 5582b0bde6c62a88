/**
 * The trtmix command line. Each command is a yargs command module in ./commands/; this file wires them,
 * the global options, and the error contract: a UserError prints one line and exits 2 (stack only with
 * --verbose), anything else is a bug and exits 1.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import yargs from 'yargs';
import type { Argv, CommandModule } from 'yargs';
import { isUserError, UserError } from '../errors.ts';
import { commands } from './commands/index.ts';

export interface GlobalOptions {
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  config?: string;
}

export function buildParser(argv: string[]): Argv<GlobalOptions> {
  let parser = yargs(argv)
    .scriptName('trtmix')
    .usage('$0 <command> [options]\n\nFind per-layer INT8/FP16 precisions for a TensorRT engine of an ONNX model.')
    .option('verbose', { type: 'boolean', describe: 'Print stack traces and debug logs', global: true })
    .option('quiet', { type: 'boolean', describe: 'Only errors on stderr', global: true })
    .option('json', { type: 'boolean', describe: 'One JSON document on stdout; logs go to stderr', global: true })
    .config('config', 'JSON file with options, keys as on the command line ({"model": "m.onnx", "calib-samples": 64}); options given on the command line win', readConfig)
    .strict()
    .demandCommand(1, `no command given; name one of: ${commands.map((c) => String(c.command).split(' ')[0]).join(', ')}`)
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .example([
      ['$0 search', 'Run the built-in PP-OCRv4 example end to end (a few minutes)'],
      ['$0 info --model model.onnx', 'The quantizable layers of your model'],
      ['$0 search --model model.onnx --data inputs.npy --target orin-agx --max-drop 0.01 --out runs/mine', 'Search your model; results in runs/mine/'],
      ['$0 search --config search.json --seed 1', 'Options from a JSON file, one overridden'],
    ])
    .epilogue('Exit codes: 0 done, 1 failure, 2 bad usage or input. Each command has its own --help with examples.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // yargs reports its own complaints (unknown option, missing value, bad choice) as YError: bad usage, not a bug.
      if (err && err.name !== 'YError') throw err;
      let text = (msg ?? err?.message ?? 'bad usage').replace(/\s*\n\s*/g, ' ');
      const suggestion = /^Did you mean (\S+)\?$/.exec(text);
      if (suggestion) text = `unknown command ${JSON.stringify(argv.find((a) => !a.startsWith('-')) ?? '')}; did you mean ${suggestion[1]}?`;
      throw new UsageError(text);
    }) as unknown as Argv<GlobalOptions>;
  for (const command of commands) parser = parser.command(command as CommandModule<GlobalOptions, any>);
  return parser;
}

/**
 * yargs reports a config file it cannot read as "Invalid JSON config file" whatever the cause; reading it here first
 * says which it is. Paths inside the file are taken as on the command line: relative to the current folder.
 */
function readConfig(path: string): Record<string, unknown> {
  if (!path) throw new UserError('--config needs a file: --config options.json');
  if (!existsSync(path) || !statSync(path).isFile()) throw new UserError(`config file ${path} does not exist; check the --config path`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`config file ${path} is not JSON (${(e as Error).message}); write options as {"model": "m.onnx", "calib-samples": 64}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UserError(`config file ${path} must hold one JSON object of options, e.g. {"model": "m.onnx"}`);
  }
  return parsed as Record<string, unknown>;
}

/** A problem yargs found with the command line itself. */
class UsageError extends Error {}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    const config = configPath(argv);
    if (config !== undefined) readConfig(config);
    await buildParser(argv).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof UsageError || isUserError(e)) {
      const hint = e instanceof UsageError ? `; ${helpHint(argv)}` : '';
      process.stderr.write(`trtmix: ${(e as Error).message}${hint}\n`);
      if (verbose) printStack(e as Error);
      return 2;
    }
    process.stderr.write(`trtmix: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (verbose) printStack(e as Error);
    else process.stderr.write('Run again with --verbose for the stack trace, and report it as a bug.\n');
    return 1;
  }
}

/** `--config FILE` or `--config=FILE`, as yargs would read it. */
function configPath(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === '--config') return argv[i + 1] ?? '';
    if (argv[i].startsWith('--config=')) return argv[i].slice('--config='.length);
  }
  return undefined;
}

/** Points at the help of the command that was named, if one was. */
function helpHint(argv: string[]): string {
  const first = argv.find((a) => !a.startsWith('-'));
  const named = commands.map((c) => String(c.command).split(' ')[0]).find((name) => name === first);
  return `trtmix ${named ? `${named} ` : ''}--help shows the options`;
}

/** The stack, then the stack of each cause (e.g. the line of a metric plugin that threw). */
function printStack(e: unknown): void {
  for (let err = e, depth = 0; err && depth < 5; err = (err as Error).cause, depth++) {
    const text = err instanceof Error ? err.stack ?? err.message : String(err);
    process.stderr.write(`${depth > 0 ? 'Caused by: ' : ''}${text}\n`);
  }
}
