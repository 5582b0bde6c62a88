import type { CommandModule } from 'yargs';
import { infoCommand } from './info.ts';

// One line per command module.
export const commands: CommandModule<any, any>[] = [
  infoCommand,
];
