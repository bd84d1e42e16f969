// The table of `weft` subcommands; cli/commands.ts fills it, cli/main.ts dispatches from it.
export type Command = (argv: string[]) => Promise<number | void>;
export interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS = new Map<string, CommandEntry>();

export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  COMMANDS.set(name, { summary, load });
}
