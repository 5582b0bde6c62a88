#!/usr/bin/env node
// trtmix ships its TypeScript sources and runs them through tsx: no build step between a clone and a run.
import { register } from 'tsx/esm/api';

// `trtmix info | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// A producer on --queue ends here once its results are written; BullMQ/ioredis can leave a reconnecting socket
// behind after close() that would keep the process alive (the worker command ends on its own signal handling).
const argv = process.argv.slice(2);
if (argv.some((a) => a === '--queue' || a.startsWith('--queue=')) && argv[0] !== 'worker') process.exit(process.exitCode);
