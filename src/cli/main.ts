/**
 * The trtmix command line. Each command is a yargs command module in ./commands/; this file wires them,
 * the global options, and the error contract: a UserError prints one line and exits 2 (stack only with
 * --verbose), anything else is a bug and exits 1.
 */
import yargs from 'yargs';
import type { Argv, CommandModule } from 'yargs';
import { isUserError } from '../errors.ts';
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
    .config('config', 'JSON file with options (keys as on the command line)')
    .strict()
    .demandCommand(1, 'Name a command: trtmix <command> --help shows each one.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    }) as unknown as Argv<GlobalOptions>;
  for (const command of commands) parser = parser.command(command as CommandModule<GlobalOptions, any>);
  return parser;
}

/** A problem yargs found with the command line itself. */
class UsageError extends Error {}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    await buildParser(argv).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof UsageError || isUserError(e)) {
      process.stderr.write(`trtmix: ${(e as Error).message}\n`);
      if (verbose && (e as Error).stack) process.stderr.write(`${(e as Error).stack}\n`);
      if (e instanceof UsageError) process.stderr.write('Run trtmix --help for usage.\n');
      return 2;
    }
    process.stderr.write(`trtmix: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (verbose) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    else process.stderr.write('Run again with --verbose for the stack trace, and report it as a bug.\n');
    return 1;
  }
}
