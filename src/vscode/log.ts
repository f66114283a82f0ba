import type * as vscode from 'vscode';
import type { Logger } from '../core/log';

/** Adapts the engine's Logger to a LogOutputChannel (the user picks the level in the Output view). */
export function channelLogger(channel: vscode.LogOutputChannel): Logger {
  return {
    debug: (m) => channel.debug(m),
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
  };
}
