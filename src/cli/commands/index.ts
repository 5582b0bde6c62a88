import type { CommandModule } from 'yargs';
import { analyzeCommand } from './analyze.ts';
import { compareCommand } from './compare.ts';
import { exportCommand } from './export.ts';
import { infoCommand } from './info.ts';
import { latencyCommand } from './latency.ts';
import { profileCommand } from './profile.ts';
import { replayCommand } from './replay.ts';
import { searchCommand } from './search.ts';
import { workerCommand } from './worker.ts';

// One line per command module.
export const commands: CommandModule<any, any>[] = [
  analyzeCommand,
  compareCommand,
  exportCommand,
  infoCommand,
  latencyCommand,
  profileCommand,
  replayCommand,
  searchCommand,
  workerCommand,
];
