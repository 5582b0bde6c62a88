import type { CommandModule } from 'yargs';
// One line per command module; keep alphabetical.
export const commands: CommandModule<any, any>[] = [];
