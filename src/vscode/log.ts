import * as vscode from 'vscode';
import type { Logger } from '../core/log';

/** Adapts the engine's Logger to a LogOutputChannel (the user picks the level in the Output view). */
export function channelLogger(channel: vscode.LogOutputChannel): Logger {
  return {
    // Follows the level the user picks in the Output view, so debug lines cost nothing when hidden.
    get debugEnabled() {
      return channel.logLevel !== vscode.LogLevel.Off && channel.logLevel <= vscode.LogLevel.Debug;
    },
    debug: (m) => channel.debug(m),
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
  };
}
