/** The CLI's log: one line per message on stderr, from a minimum level. */
import type { Logger } from './core/log';

export const levels = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof levels)[number];

export function makeLogger(min: Level): Logger {
  const at = levels.indexOf(min);
  const line = (level: Level) => (message: string) => {
    if (levels.indexOf(level) < at) return;
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);
  };
  return { debugEnabled: at === 0, debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

